"""What this process knows of Redis answering, shared by everything that uses it: the
response cache, the rate limiter and the events hub.

Redis is an accelerator, never a single point of failure (docs/api.md): when a call to it
fails, its user falls back (cache bypassed, limits counted in-process, events delivered
locally) and reports the failure here. Every call that failed or was skipped is counted
in `shop_redis_failures{use=...}`; one warning is logged when an outage begins and one
line when Redis answers again, not one per request.

A Redis that hangs costs a timeout per call, so after a failure Redis is skipped for a
short cool-down; then a single caller tries it again while the others go on skipping,
and the first call that gets an answer ends the outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, RedisError

from core.metrics import Metrics

log = structlog.get_logger(__name__)

# Longest wait for one Redis call: past it, the caller falls back.
REDIS_TIMEOUT_SECONDS = 1.0
# How long Redis is skipped after a failure before one caller tries it again.
COOL_DOWN_SECONDS = 2.0
# What a Redis that does not answer raises: redis-py's errors (refused, reset, timed
# out) and the OSError family, which holds asyncio's TimeoutError (aiocache's own bound).
REDIS_ERRORS = (RedisError, OSError)


def fail_fast_options() -> dict[str, Any]:
    """redis-py connection options: give up after REDIS_TIMEOUT_SECONDS, and retry a
    command once on a fresh connection after a connection error (pooled connections die
    with a Redis restart), never after a timeout (a hung Redis would cost it twice)."""
    return {
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
    }


class RedisHealth:
    """A small circuit breaker around one Redis server.

    Users ask `should_try(use)` before a call, then report `failed()` or `answered()`;
    `use` names the user in the metric ("cache", "limits", "events"). `outages` counts
    the outages begun in this process, so a user can tell whether one happened since it
    last looked.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        cool_down: float = COOL_DOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._cool_down = cool_down
        self._clock = clock
        self._down_since: float | None = None  # None while Redis answers
        self._next_try = 0.0
        self.outages = 0

    @property
    def available(self) -> bool:
        """Whether Redis answered the last call made to it (no outage under way)."""
        return self._down_since is None

    def should_try(self, use: str) -> bool:
        """Whether to call Redis now: always while it answers; during an outage, once per
        cool-down (the caller that gets True is the one that tries). A call skipped is
        counted as failed."""
        if self._down_since is None:
            return True
        now = self._clock()
        if now < self._next_try:
            self._metrics.redis_failures.labels(use=use).inc()
            return False
        self._next_try = now + self._cool_down
        return True

    def failed(self, use: str, error: BaseException) -> None:
        """Count a failed call and skip Redis for the cool-down; the first failure of an
        outage logs a warning."""
        self._metrics.redis_failures.labels(use=use).inc()
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
            self.outages += 1
            log.warning("redis_unavailable", use=use, error=str(error) or type(error).__name__)
        self._next_try = now + self._cool_down

    def answered(self, use: str) -> None:
        """Redis answered a call for `use`: an outage, if any, is over."""
        if self._down_since is not None:
            seconds = round(self._clock() - self._down_since, 1)
            self._down_since = None
            log.info("redis_recovered", use=use, outage_seconds=seconds)
