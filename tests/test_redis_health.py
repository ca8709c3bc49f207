"""The breaker shared by the users of Redis: when to skip it, what is logged and counted."""

from __future__ import annotations

from redis.exceptions import ConnectionError
from structlog.testing import capture_logs

from core.metrics import Metrics
from core.redis_health import RedisHealth


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def failures(metrics: Metrics, use: str) -> float:
    value = metrics.registry.get_sample_value("shop_redis_failures_total", {"use": use})
    return value or 0.0


def test_after_a_failure_redis_is_skipped_for_the_cool_down_then_tried_by_one_caller() -> None:
    clock = Clock()
    health = RedisHealth(Metrics(), cool_down=2.0, clock=clock)
    assert health.should_try("cache")
    health.failed("cache", ConnectionError("refused"))
    assert not health.should_try("cache")
    clock.now += 1.9
    assert not health.should_try("limits")
    clock.now += 0.1
    assert health.should_try("limits")
    assert not health.should_try("cache"), "one caller tries; the others wait for it"
    health.answered("limits")
    assert health.should_try("cache")


def test_a_try_that_fails_again_starts_a_new_cool_down() -> None:
    clock = Clock()
    health = RedisHealth(Metrics(), cool_down=2.0, clock=clock)
    health.failed("cache", ConnectionError("refused"))
    clock.now += 2.0
    assert health.should_try("cache")
    clock.now += 1.0  # the try waited for a timeout
    health.failed("cache", TimeoutError())
    clock.now += 1.9
    assert not health.should_try("cache")


def test_an_outage_logs_one_warning_one_recovery_and_counts_each_call_without_redis() -> None:
    clock = Clock()
    metrics = Metrics()
    health = RedisHealth(metrics, cool_down=2.0, clock=clock)
    with capture_logs() as logs:
        health.failed("events", ConnectionError("refused"))
        for _ in range(3):
            assert not health.should_try("cache")
            health.failed("limits", ConnectionError("refused"))
        clock.now += 5.0
        health.answered("cache")
        health.answered("events")
    assert logs == [
        {"event": "redis_unavailable", "use": "events", "error": "refused", "log_level": "warning"},
        {"event": "redis_recovered", "use": "cache", "outage_seconds": 5.0, "log_level": "info"},
    ]
    assert (failures(metrics, "events"), failures(metrics, "cache")) == (1, 3)
    assert failures(metrics, "limits") == 3
    assert health.outages == 1


def test_each_outage_is_counted() -> None:
    health = RedisHealth(Metrics())
    for _ in range(2):
        health.failed("cache", ConnectionError("refused"))
        health.answered("cache")
    assert health.outages == 2
