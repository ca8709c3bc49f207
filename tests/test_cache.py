"""The response cache's rule after a Redis outage: what was cached before is never served
after it (the backend here is the memory one; tests/test_redis_faults.py runs the same
against a real Redis that is killed, frozen and restarted)."""

from __future__ import annotations

from redis.exceptions import ConnectionError

from core.cache import ResponseCache, make_cache
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
