"""Response cache (aiocache): encoded response bodies and typed entries (a list's page,
`PageEntry`), in memory by default, in Redis when REDIS_URL is set. A read goes through
it (`get_or_load`): an entry's codec says how it is stored, and a hit returns it
as it was kept, with nothing decoded or encoded again.

Invalidation is by generation: every cached key embeds the current generation of its
group, and a write bumps the generation, so all entries of the group go stale at once
in every process, with no key scan.

A hit needs no round trip: each process keeps a copy of its groups' generations and of
the last RECENT_ENTRIES entries it served (each for at most `ttl`). In memory that copy
is all there is. With Redis, every bump is also published on the cache's channel, and
a process trusts its copies only while it holds its subscription to that channel (the
loop shared by every Redis subscriber, core/redis_subscription.py): it drops them on
hearing a bump, and whenever the subscription is lost or re-made, redis-py's own
reconnection included (a message may have been missed), and then reads the generation
from Redis again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, overload
from urllib.parse import urlsplit

import structlog
from aiocache import BaseCache, Cache
from aiocache.serializers import NullSerializer
from redis.asyncio import Redis

from core.redis_health import REDIS_ERRORS, REDIS_TIMEOUT_SECONDS, RedisHealth, fail_fast_options
from core.redis_subscription import RedisSubscription, shared_channel

log = structlog.get_logger(__name__)

T = TypeVar("T")
V = TypeVar("V")
# Entries kept in-process: enough for the catalog's hot pages, small enough to not matter.
RECENT_ENTRIES = 512


class EntryCodec(Protocol[V]):
    """How a typed entry is stored: as bytes in the backend, as itself in the process."""

    def encode(self, value: V) -> bytes: ...

    def decode(self, data: bytes) -> V: ...


class _Bodies:
    """A response body, stored as it is."""

    def encode(self, value: bytes) -> bytes:
        return value

    def decode(self, data: bytes) -> bytes:
        return data


@dataclass(frozen=True, slots=True)
class PageEntry:
    """One page of a list: how many items the whole list has, and the page's items as a
    JSON array, encoded once. The envelope around them (links, page numbers) is the
    handler's: it depends on the request's URL."""

    count: int
    results_json: bytes


class _Pages:
    """A page entry as one stored value: the count, a space, the array."""

    def encode(self, value: PageEntry) -> bytes:
        return b"%d %s" % (value.count, value.results_json)

    def decode(self, data: bytes) -> PageEntry:
        count, _, results_json = data.partition(b" ")
        return PageEntry(count=int(count), results_json=results_json)


BODIES: EntryCodec[bytes] = _Bodies()
PAGES: EntryCodec[PageEntry] = _Pages()


def make_cache(redis_url: str | None, *, namespace: str = "shop") -> BaseCache:
    # Values are bytes, stored and returned as they are (no encoding on either side).
    serializer = NullSerializer(encoding=None)
    if not redis_url:
        # timeout=None: nothing in memory waits, and aiocache's default bounds each call
        # with asyncio.wait_for, a task per call (every checkout bumps a generation).
        return Cache(Cache.MEMORY, serializer=serializer, namespace=namespace, timeout=None)
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
        serializer=serializer,
        namespace=namespace,
        timeout=REDIS_TIMEOUT_SECONDS,
        create_connection_timeout=options.pop("socket_connect_timeout"),
        connection_pool_kwargs=options,
    )


class _RedisSkipped(Exception):
    """Redis was not called (cool-down) or did not answer; the caller goes without it."""


class ResponseCache:
    """Entries cached per group, with generation-based invalidation.

    When Redis does not answer (or RedisHealth says to skip it), a read is served from
    `load()` uncached and an invalidation is lost, while Redis may keep the entries
    cached before. So that none of them is served after a write made during the outage:
    once a call of this cache has failed or been skipped, and once any outage has begun
    in this process (whoever saw it), the next call that reaches Redis first bumps the
    generation of every group this cache has used. A process that saw no outage can
    serve such an entry until one that saw it makes its next cache call, and never
    longer than `ttl`.
    """

    def __init__(
        self,
        backend: BaseCache,
        ttl: int,
        redis_health: RedisHealth,
        *,
        redis: Redis | None = None,
    ) -> None:
        self.backend = backend
        self.ttl = ttl
        self._health = redis_health
        self._redis = redis
        self._groups: set[str] = set()
        self._bump_due = False
        self._outages_seen = 0
        # In memory, every bump is made here, so the copies are always current.
        self._trusted = redis is None
        self._generations: dict[str, int] = {}
        self._recent: dict[str, tuple[float, Any]] = {}  # entry -> (expiry, body or entry)
        # Counts what made the copies stale: a generation read from the backend across a
        # change must not be kept (it may be the one before the change).
        self._changes = 0
        self._channel: str | None = None
        self._subscription: RedisSubscription | None = None
        if redis is not None:
            self._channel = shared_channel(redis, "cache")
            # A bump may go unheard while redis-py reconnects: the copies are dropped then.
            self._subscription = RedisSubscription(
                redis,
                [self._channel],
                self._heard,
                on_subscribed=self._subscribed,
                on_lost=self._unsubscribed,
                on_reconnected=self._forget,
            )

    @overload
    async def get_or_load(
        self, group: str, key: str, load: Callable[[], Awaitable[bytes]]
    ) -> bytes: ...

    @overload
    async def get_or_load(
        self, group: str, key: str, load: Callable[[], Awaitable[V]], codec: EntryCodec[V]
    ) -> V: ...

    async def get_or_load(
        self,
        group: str,
        key: str,
        load: Callable[[], Awaitable[Any]],
        codec: EntryCodec[Any] = BODIES,
    ) -> Any:
        """The cached entry, or `load()`'s, cached (uncached when Redis is away): a
        body, or with `codec` a typed entry, stored encoded by it and kept here as it
        is, so that a hit decodes nothing. A key is always read with the same codec.

        The entry is stored under the generation read *before* loading: when a write
        invalidates the group while `load()` runs, what it loaded (possibly from
        before the write) is never served afterwards.
        """
        if self.ttl == 0:
            return await load()
        generation = self._generations.get(group) if self._copies_current() else None
        if generation is not None:
            value = self._recent_value(f"{group}:{generation}:{key}")
            if value is not None:
                return value
        self._groups.add(group)
        try:
            if generation is None:
                generation = await self._call(lambda: self._generation(group))
            entry = f"{group}:{generation}:{key}"
            value = self._recent_value(entry)
            if value is None:
                stored = await self._call(lambda: self.backend.get(entry))
                if stored is not None:
                    value = codec.decode(stored)
        except _RedisSkipped:
            return await load()
        if value is None:
            value = await load()
            try:
                encoded = codec.encode(value)
                await self._call(lambda: self.backend.set(entry, encoded, ttl=self.ttl))
            except _RedisSkipped:
                return value  # served uncached
        self._remember(entry, value)
        return value

    async def invalidate(self, group: str) -> None:
        """Make every entry of `group` stale (call after the write has committed). Never
        raises for Redis: a lost invalidation is made up for as the class says."""
        self._groups.add(group)
        with suppress(_RedisSkipped):
            await self._call(lambda: self._bump(group))

    async def start(self) -> None:
        """With Redis, subscribe to the bumps of other processes (copies are not trusted
        until then)."""
        if self._subscription is not None:
            self._subscription.start()

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.close()
        await self.backend.close()

    def _copies_current(self) -> bool:
        return (
            self._trusted
            and not self._bump_due
            and self._health.available
            and self._health.outages == self._outages_seen
        )

    def _recent_value(self, entry: str) -> Any:
        kept = self._recent.get(entry)
        if kept is None or kept[0] < time.monotonic():
            return None
        return kept[1]

    def _remember(self, entry: str, value: object) -> None:
        if len(self._recent) >= RECENT_ENTRIES:
            del self._recent[next(iter(self._recent))]  # the oldest kept
        self._recent[entry] = (time.monotonic() + self.ttl, value)

    def _forget(self) -> None:
        """Drop every copy: a generation has changed, or may have unseen."""
        self._changes += 1
        self._generations.clear()
        self._recent.clear()

    async def _generation(self, group: str) -> int:
        changes = self._changes
        # increment() stores the counter raw, and it is read back raw as well.
        value = int(await self.backend.get(f"gen:{group}", loads_fn=_raw_counter))
        if self._trusted and changes == self._changes:
            self._generations[group] = value
        return value

    async def _bump(self, group: str) -> None:
        self._forget()  # first: a read under way must not keep the old generation
        await self.backend.increment(f"gen:{group}")
        if self._redis is not None and self._channel is not None:
            await self._redis.publish(self._channel, group)

    def _subscribed(self) -> None:
        """Trust the copies from now on, dropping what was kept before."""
        self._forget()
        self._trusted = True

    def _unsubscribed(self, error: Exception | None) -> None:
        if error is not None:
            log.debug("cache_subscription_lost", error=str(error))
        self._trusted = False
        self._forget()

    def _heard(self, _group: bytes) -> None:
        self._forget()

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
                    await self._bump(group)
            result = await operation()
        except REDIS_ERRORS as error:
            self._bump_due = True
            self._health.failed("cache", error)
            raise _RedisSkipped from error
        self._health.answered("cache")
        return result


def _raw_counter(raw: Any) -> int:
    return int(raw or 0)
