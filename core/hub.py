"""The hub: delivers published events to this process's listeners, and with Redis to
every process's.

Listeners are plain functions that must not block (a websocket listener only queues a
frame): publishing never waits on a socket. Nor does it wait for the listeners to be
called: each event is queued with the listeners subscribed when it was published, and
a dispatcher calls them from the next turn of the event loop on, DISPATCH_SLICE at a
time, so the request that published answers first and a fan-out to thousands of
sockets does not hold up other requests for its whole length. Events are dispatched in
the order they were published, each to all of its listeners before the next; a
listener that unsubscribes meanwhile is not called. The Redis hub delivers locally first and
then publishes once to Redis; each process holds a single pub/sub subscription and
fans out what other processes published to its own listeners. While Redis is away,
local delivery goes on, publishing to Redis is skipped while RedisHealth says so, the
subscription is retried with backoff, and cross-process delivery resumes by itself
(clients recover what they missed with `since`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable
from typing import Protocol

import structlog
from pydantic import ValidationError
from redis.asyncio import Redis

from core.events import CHANNELS, Event, decode_event, encode_event
from core.redis_health import REDIS_ERRORS, RedisHealth

log = structlog.get_logger(__name__)

Listener = Callable[[Event], None]
# Seconds between attempts to re-subscribe while Redis is away: doubling up to the cap.
_FIRST_RETRY, _MAX_RETRY = 0.1, 5.0
# How long one wait for a Redis message lasts before the loop looks again.
_POLL_SECONDS = 1.0
# Listeners called per turn of the event loop while an event is dispatched.
DISPATCH_SLICE = 250


class Hub(Protocol):
    def subscribe(self, channel: str, listener: Listener) -> Callable[[], None]:
        """Register `listener`; returns the function that unregisters it."""
        ...

    async def publish(self, event: Event) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class InProcessHub:
    """Delivery to the listeners of this process only (no REDIS_URL)."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = {}
        self._queue: deque[tuple[Event, list[Listener]]] = deque()
        self._dispatching: asyncio.Task[None] | None = None

    def subscribe(self, channel: str, listener: Listener) -> Callable[[], None]:
        self._listeners.setdefault(channel, set()).add(listener)

        def unsubscribe() -> None:
            self._listeners.get(channel, set()).discard(listener)

        return unsubscribe

    async def publish(self, event: Event) -> None:
        self.deliver(event)

    def deliver(self, event: Event) -> None:
        """Queue `event` for the local listeners of its channel (see above)."""
        listeners = list(self._listeners.get(event.channel, ()))
        if not listeners:
            return
        self._queue.append((event, listeners))
        if self._dispatching is None or self._dispatching.done():
            self._dispatching = asyncio.get_running_loop().create_task(self._dispatch())

    async def _dispatch(self) -> None:
        while self._queue:
            event, listeners = self._queue.popleft()
            # Listeners of the moment of publishing that are still subscribed.
            current = self._listeners.get(event.channel, set())
            for start in range(0, len(listeners), DISPATCH_SLICE):
                if start:
                    await asyncio.sleep(0)  # one turn of the loop for everything else
                for listener in listeners[start : start + DISPATCH_SLICE]:
                    if listener not in current:
                        continue
                    try:
                        listener(event)
                    except Exception:  # one broken listener must not stop the others
                        log.exception("event_listener_failed", channel=event.channel)

    async def start(self) -> None:
        """Nothing to connect in-process."""

    async def close(self) -> None:
        self._listeners.clear()
        self._queue.clear()
        if self._dispatching is not None:
            self._dispatching.cancel()
            await asyncio.gather(self._dispatching, return_exceptions=True)


class RedisHub(InProcessHub):
    """Local delivery plus Redis pub/sub between processes."""

    def __init__(
        self, redis: Redis, redis_health: RedisHealth, *, prefix: str = "shop:events:"
    ) -> None:
        super().__init__()
        self._redis = redis
        self._health = redis_health
        self._prefix = prefix
        # Marks this process's own messages, which it has delivered already.
        self._origin = uuid.uuid4().hex.encode()
        self._listening: asyncio.Task[None] | None = None
        self._redis_down = False
        self.subscribed = asyncio.Event()  # set while the Redis subscription is live

    async def publish(self, event: Event) -> None:
        self.deliver(event)
        if not self._health.should_try("events"):
            return
        try:
            await self._redis.publish(
                self._prefix + event.channel, self._origin + b" " + encode_event(event)
            )
        except REDIS_ERRORS as error:
            self._health.failed("events", error)
            self._outage("publish", error)
        else:
            self._health.answered("events")

    async def start(self) -> None:
        self._listening = asyncio.create_task(self._listen())

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            await asyncio.gather(self._listening, return_exceptions=True)
        await super().close()

    async def _listen(self) -> None:
        """Hold one subscription to every channel; re-subscribe after a failure."""
        retry = _FIRST_RETRY
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(*(self._prefix + channel for channel in CHANNELS))
                    self._recovered()
                    retry = _FIRST_RETRY
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=_POLL_SECONDS
                        )
                        if message is not None:
                            self._receive(message["data"])
            except REDIS_ERRORS as error:
                self.subscribed.clear()
                self._health.failed("events", error)
                self._outage("subscribe", error)
                await asyncio.sleep(retry)
                retry = min(retry * 2, _MAX_RETRY)

    def _receive(self, data: bytes) -> None:
        origin, _, payload = data.partition(b" ")
        if origin == self._origin:
            return
        try:
            event = decode_event(payload)
        except ValidationError:
            log.warning("event_undecodable", size=len(data))
            return
        self.deliver(event)

    def _outage(self, action: str, error: Exception) -> None:
        """One warning per outage, not one per event."""
        if not self._redis_down:
            self._redis_down = True
            log.warning("redis_events_unavailable", action=action, error=str(error))

    def _recovered(self) -> None:
        self.subscribed.set()
        self._health.answered("events")
        if self._redis_down:
            self._redis_down = False
            log.info("redis_events_resumed")


def make_hub(redis: Redis | None, redis_health: RedisHealth) -> Hub:
    """The Redis hub when REDIS_URL is set, else the in-process one."""
    if redis is None:
        return InProcessHub()
    # Pub/sub channels are shared by every database of a Redis server: the channel names
    # carry REDIS_URL's database, so shops on other databases of it are not heard.
    database = redis.connection_pool.connection_kwargs.get("db", 0)
    return RedisHub(redis, redis_health, prefix=f"shop:{database}:events:")
