"""Rate limits with the `limits` library: memory storage, or Redis when configured."""

from __future__ import annotations

import math
import time

from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from app.errors import RateLimited


def make_storage(redis: Redis | None) -> Storage:
    """Memory storage, or Redis sharing the app's connection pool (closed with it)."""
    if redis is None:
        return MemoryStorage()
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        key_prefix="shop-limits",
        # limits passes this on to redis-py, though its annotation only names scalars.
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]
    )


class RateLimiter:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, rate: str, scope: str, identity: str) -> None:
        """Count one request of `identity` in `scope`; raise RateLimited over `rate`."""
        limit = parse(rate)
        if await self._limiter.hit(limit, scope, identity):
            return
        stats = await self._limiter.get_window_stats(limit, scope, identity)
        raise RateLimited(retry_after=math.ceil(stats.reset_time - time.time()))

    async def reset(self) -> None:
        await self.storage.reset()
