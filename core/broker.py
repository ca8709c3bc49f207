"""The events broker: carries encoded events between the processes of one shop over
Redis pub/sub, for the hub (core/hub.py) of each to fan them out to its own listeners.

It knows nothing of listeners, sockets or event types: it publishes bytes on a channel
and hands back the bytes other processes published. Each process holds a single
subscription to every channel (core/redis_subscription.py) and skips its own messages,
which its hub has delivered already. While Redis is away, publishing is skipped while
RedisHealth says so, the subscription is retried with backoff, and one warning is logged
per outage (`redis_events_unavailable`, then `redis_events_resumed`); clients recover
what they missed with `since`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from typing import Protocol

import structlog
from redis.asyncio import Redis

from core.redis_health import REDIS_ERRORS, RedisHealth
from core.redis_subscription import RedisSubscription, shared_channel

log = structlog.get_logger(__name__)

Receiver = Callable[[bytes], None]


class Broker(Protocol):
    """Moves encoded events between processes."""

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send `payload` to the other processes' receivers; never raises for the
        transport (a lost message is the clients' to recover)."""
        ...

    async def start(self, receive: Receiver) -> None:
        """Hand every payload another process publishes to `receive`."""
        ...

    async def close(self) -> None: ...


class RedisBroker:
    """Redis pub/sub between the processes using one Redis database."""

    def __init__(self, redis: Redis, redis_health: RedisHealth, *, channels: Iterable[str]) -> None:
        self._redis = redis
        self._health = redis_health
        self._prefix = shared_channel(redis, "events:")
        # Marks this process's own messages, which its hub has delivered already.
        self._origin = uuid.uuid4().hex.encode()
        self._receive: Receiver | None = None
        self._redis_down = False
        self._subscription = RedisSubscription(
            redis,
            [self._prefix + channel for channel in channels],
            self._heard,
            on_subscribed=self._recovered,
            on_lost=self._lost,
        )

    @property
    def subscribed(self) -> asyncio.Event:
        """Set while the subscription is live."""
        return self._subscription.subscribed

    async def publish(self, channel: str, payload: bytes) -> None:
        if not self._health.should_try("events"):
            return
        try:
            await self._redis.publish(self._prefix + channel, self._origin + b" " + payload)
        except REDIS_ERRORS as error:
            self._health.failed("events", error)
            self._outage("publish", error)
        else:
            self._health.answered("events")

    async def start(self, receive: Receiver) -> None:
        self._receive = receive
        self._subscription.start()

    async def close(self) -> None:
        await self._subscription.close()

    def _heard(self, data: bytes) -> None:
        origin, _, payload = data.partition(b" ")
        if origin != self._origin and self._receive is not None:
            self._receive(payload)

    def _lost(self, error: Exception | None) -> None:
        if error is not None:
            self._health.failed("events", error)
            self._outage("subscribe", error)

    def _outage(self, action: str, error: Exception) -> None:
        """One warning per outage, not one per event."""
        if not self._redis_down:
            self._redis_down = True
            log.warning("redis_events_unavailable", action=action, error=str(error))

    def _recovered(self) -> None:
        self._health.answered("events")
        if self._redis_down:
            self._redis_down = False
            log.info("redis_events_resumed")
