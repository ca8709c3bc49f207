"""Response cache (aiocache): memory by default, Redis when REDIS_URL is set.

Invalidation is by generation: every cached key embeds the current generation of its
group, and a write bumps the generation, so all entries of the group go stale at once
in every process, with no key scan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiocache import BaseCache, Cache
from aiocache.serializers import JsonSerializer


def make_cache(redis_url: str | None, *, namespace: str = "shop") -> BaseCache:
    if not redis_url:
        return Cache(Cache.MEMORY, serializer=JsonSerializer(), namespace=namespace)
    parts = urlsplit(redis_url)
    db = int(parts.path.lstrip("/") or 0)
    return Cache(
        Cache.REDIS,
        endpoint=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=db,
        password=parts.password,
        serializer=JsonSerializer(),
        namespace=namespace,
    )


class ResponseCache:
    """JSON-able values cached per group, with generation-based invalidation."""

    def __init__(self, backend: BaseCache, ttl: int) -> None:
        self.backend = backend
        self.ttl = ttl

    async def _generation(self, group: str) -> int:
        # increment() stores the counter raw, not through the JSON serializer (the
        # memory backend keeps an int), so it is read back raw as well.
        value = await self.backend.get(f"gen:{group}", loads_fn=_raw_counter)
        return int(value)

    async def get_or_load(self, group: str, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value, or `load()`'s result, cached.

        The entry is stored under the generation read *before* loading: when a write
        invalidates the group while `load()` runs, what it loaded (possibly from
        before the write) is never served afterwards.
        """
        if self.ttl == 0:
            return await load()
        entry = f"{group}:{await self._generation(group)}:{key}"
        value = await self.backend.get(entry)
        if value is None:
            value = await load()
            await self.backend.set(entry, value, ttl=self.ttl)
        return value

    async def invalidate(self, group: str) -> None:
        """Make every entry of `group` stale (call after the write has committed)."""
        await self.backend.increment(f"gen:{group}")

    async def close(self) -> None:
        await self.backend.close()


def _raw_counter(raw: Any) -> int:
    return int(raw or 0)
