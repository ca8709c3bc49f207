"""Rate limits with the `limits` library: memory storage, or Redis when configured."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis

from core.errors import RateLimited
from core.redis_health import RedisHealth

# How a limit is applied in one storage: count a request, or only look.
_Use = Callable[[MovingWindowRateLimiter, RateLimitItem, str, str], Awaitable[int | None]]


def make_storage(redis: Redis | None) -> Storage:
    """Memory storage, or Redis sharing the app's connection pool (closed with it).

    Redis errors come out wrapped in limits' StorageError, whatever the client raised.
    """
    if redis is None:
        return MemoryStorage()
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        key_prefix="shop-limits",
        wrap_exceptions=True,
        # limits passes this on to redis-py, though its annotation only names scalars.
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]
    )


class RateLimiter:
    """Moving-window limits counted in `storage`, shared by every process with Redis.

    While Redis does not answer (see RedisHealth), requests are counted in this process
    instead, so each process allows up to the limit on its own; counting goes back to
    Redis as soon as it answers, and what was counted in-process meanwhile is dropped.
    """

    def __init__(self, storage: Storage, redis_health: RedisHealth) -> None:
        self._health = redis_health
        self._shared = MovingWindowRateLimiter(storage)
        self._in_process = MovingWindowRateLimiter(MemoryStorage())

    async def hit(self, rate: str, scope: str, identity: str) -> None:
        """Count one request of `identity` in `scope`; raise RateLimited over `rate`."""
        await self._apply(_count_in, rate, scope, identity)

    async def check(self, rate: str, scope: str, identity: str) -> None:
        """Raise RateLimited when `identity` has used up `rate` in `scope`, counting
        nothing (for limits on failures only: check first, `hit` on failure)."""
        await self._apply(_check_in, rate, scope, identity)

    async def _apply(self, use: _Use, rate: str, scope: str, identity: str) -> None:
        limit = parse(rate)
        retry_after: int | None = None
        if self._health.should_try("limits"):
            try:
                retry_after = await use(self._shared, limit, scope, identity)
            except StorageError as error:
                self._health.failed("limits", error.storage_error)
                retry_after = await use(self._in_process, limit, scope, identity)
            else:
                self._health.answered("limits")
        else:
            retry_after = await use(self._in_process, limit, scope, identity)
        if retry_after is not None:
            raise RateLimited(retry_after=retry_after)


async def _count_in(
    limiter: MovingWindowRateLimiter, limit: RateLimitItem, scope: str, identity: str
) -> int | None:
    """Seconds until `identity` may try again when over `limit`, else None (counted)."""
    if await limiter.hit(limit, scope, identity):
        return None
    return await _retry_after(limiter, limit, scope, identity)


async def _check_in(
    limiter: MovingWindowRateLimiter, limit: RateLimitItem, scope: str, identity: str
) -> int | None:
    """Seconds until `identity` may try again when at `limit`, else None (not counted)."""
    if await limiter.test(limit, scope, identity):
        return None
    return await _retry_after(limiter, limit, scope, identity)


async def _retry_after(
    limiter: MovingWindowRateLimiter, limit: RateLimitItem, scope: str, identity: str
) -> int:
    stats = await limiter.get_window_stats(limit, scope, identity)
    return max(1, math.ceil(stats.reset_time - time.time()))
