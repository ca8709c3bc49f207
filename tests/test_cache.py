"""The response cache's rule after a Redis outage: what was cached before is never served
after it (the backend here is the memory one; tests/test_redis_faults.py runs the same
against a real Redis that is killed, frozen and restarted)."""

from __future__ import annotations

from redis.exceptions import ConnectionError

from core.cache import PAGES, PageEntry, ResponseCache, make_cache
from core.metrics import Metrics
from core.redis_health import RedisHealth


class Loader:
    """A `load()` that returns how many times it has been called."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> bytes:
        self.calls += 1
        return b"%d" % self.calls


async def test_an_invalidation_lost_in_an_outage_is_made_up_for_before_the_next_read() -> None:
    health = RedisHealth(Metrics())
    cache = ResponseCache(make_cache(None), 60, health)
    load = Loader()
    assert await cache.get_or_load("catalog", "lamp", load) == b"1"
    health.failed("limits", ConnectionError("refused"))
    await cache.invalidate("catalog")  # skipped: Redis is in its cool-down
    assert await cache.get_or_load("catalog", "lamp", load) == b"2", "served uncached"
    health.answered("limits")
    assert await cache.get_or_load("catalog", "lamp", load) == b"3"
    assert await cache.get_or_load("catalog", "lamp", load) == b"3"


async def test_after_an_outage_another_user_saw_every_group_used_goes_stale() -> None:
    health = RedisHealth(Metrics())
    cache = ResponseCache(make_cache(None), 60, health)
    load = Loader()
    assert await cache.get_or_load("catalog", "lamp", load) == b"1"
    # The hub lost its subscription and got it back; the cache made no call meanwhile,
    # but another process may have written then.
    health.failed("events", ConnectionError("refused"))
    health.answered("events")
    assert await cache.get_or_load("catalog", "lamp", load) == b"2"
    assert await cache.get_or_load("catalog", "lamp", load) == b"2"


async def test_a_page_entry_is_stored_encoded_and_a_hit_returns_it_as_kept() -> None:
    backend = make_cache(None)
    health = RedisHealth(Metrics())
    serving, other_process = ResponseCache(backend, 60, health), ResponseCache(backend, 60, health)
    loads: list[PageEntry] = []

    async def load() -> PageEntry:
        loads.append(PageEntry(count=41, results_json=b'[{"slug":"lamp"}]'))
        return loads[-1]

    first = await serving.get_or_load("catalog", "products", load, PAGES)
    assert await serving.get_or_load("catalog", "products", load, PAGES) is first, "not decoded"
    assert await other_process.get_or_load("catalog", "products", load, PAGES) == first
    assert len(loads) == 1
    assert PAGES.decode(PAGES.encode(first)) == first
    assert PAGES.encode(first) == b'41 [{"slug":"lamp"}]'
