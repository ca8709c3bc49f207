"""Rate limits with the `limits` library: memory storage, or Redis when configured."""

from __future__ import annotations

import math
import time

from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from app.errors import RateLimited


def make_storage(redis_url: str | None) -> Storage:
    if redis_url:
        uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
        return RedisStorage(uri, implementation="redispy", key_prefix="shop-limits")
    return MemoryStorage()


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
