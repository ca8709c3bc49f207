"""Response cache (aiocache): memory by default, Redis when REDIS_URL is set.

Invalidation is by generation: every cached key embeds the current generation of its
group, and a write bumps the generation, so all entries of the group go stale at once
in every process, with no key scan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiocache import BaseCache, Cache
from aiocache.serializers import JsonSerializer

from app.redis_health import REDIS_ERRORS, REDIS_TIMEOUT_SECONDS, RedisHealth, fail_fast_options

T = TypeVar("T")


def make_cache(redis_url: str | None, *, namespace: str = "shop") -> BaseCache:
    if not redis_url:
        return Cache(Cache.MEMORY, serializer=JsonSerializer(), namespace=namespace)
    parts = urlsplit(redis_url)
    db = int(parts.path.lstrip("/") or 0)
    # aiocache builds its own redis-py pool: it takes the connect timeout by its own name
    # and the other options as pool arguments; `timeout` bounds each whole operation.
    options = fail_fast_options()
    return Cache(
        Cache.REDIS,
        endpoint=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=db,
        password=parts.password,
        serializer=JsonSerializer(),
        namespace=namespace,
        timeout=REDIS_TIMEOUT_SECONDS,
        create_connection_timeout=options.pop("socket_connect_timeout"),
        connection_pool_kwargs=options,
    )


class _RedisSkipped(Exception):
    """Redis was not called (cool-down) or did not answer; the caller goes without it."""


class ResponseCache:
    """JSON-able values cached per group, with generation-based invalidation.

    When Redis does not answer (or RedisHealth says to skip it), a read is served from
    `load()` uncached and an invalidation is lost, while Redis may keep the entries
    cached before. So that none of them is served after a write made during the outage:
    once a call of this cache has failed or been skipped, and once any outage has begun
    in this process (whoever saw it), the next call that reaches Redis first bumps the
    generation of every group this cache has used. A process that saw no outage can
    serve such an entry until one that saw it makes its next cache call, and never
    longer than `ttl`.
    """

    def __init__(self, backend: BaseCache, ttl: int, redis_health: RedisHealth) -> None:
        self.backend = backend
        self.ttl = ttl
        self._health = redis_health
        self._groups: set[str] = set()
        self._bump_due = False
        self._outages_seen = 0

    async def get_or_load(self, group: str, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value, or `load()`'s result, cached (uncached when Redis is away).

        The entry is stored under the generation read *before* loading: when a write
        invalidates the group while `load()` runs, what it loaded (possibly from
        before the write) is never served afterwards.
        """
        if self.ttl == 0:
            return await load()
        self._groups.add(group)
        try:
            generation = await self._call(lambda: self._generation(group))
            entry = f"{group}:{generation}:{key}"
            value = await self._call(lambda: self.backend.get(entry))
        except _RedisSkipped:
            return await load()
        if value is None:
            value = await load()
            with suppress(_RedisSkipped):  # then it is served uncached
                await self._call(lambda: self.backend.set(entry, value, ttl=self.ttl))
        return value

    async def invalidate(self, group: str) -> None:
        """Make every entry of `group` stale (call after the write has committed). Never
        raises for Redis: a lost invalidation is made up for as the class says."""
        self._groups.add(group)
        with suppress(_RedisSkipped):
            await self._call(lambda: self.backend.increment(f"gen:{group}"))

    async def close(self) -> None:
        await self.backend.close()

    async def _generation(self, group: str) -> int:
        # increment() stores the counter raw, not through the JSON serializer (the
        # memory backend keeps an int), so it is read back raw as well.
        value = await self.backend.get(f"gen:{group}", loads_fn=_raw_counter)
        return int(value)

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation()`'s result, after any bump that is due; _RedisSkipped instead
        when Redis is in its cool-down or does not answer."""
        if self._health.outages != self._outages_seen:
            self._outages_seen = self._health.outages
            self._bump_due = True
        if not self._health.should_try("cache"):
            self._bump_due = True
            raise _RedisSkipped
        try:
            if self._bump_due:
                # Cleared first: a call skipped while the bumps run asks for new ones.
                self._bump_due = False
                for group in list(self._groups):
                    await self.backend.increment(f"gen:{group}")
            result = await operation()
        except REDIS_ERRORS as error:
            self._bump_due = True
            self._health.failed("cache", error)
            raise _RedisSkipped from error
        self._health.answered("cache")
        return result


def _raw_counter(raw: Any) -> int:
    return int(raw or 0)
