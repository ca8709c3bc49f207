"""The hub: delivers published events to this process's listeners (the local node), and
through an optional broker (core/broker.py) to every process's.

The hub deals with any event that names its `channel`; the event types themselves
(schemas/events.py) and their encoding are given by the composition root
(app/context.py), so that this layer needs none of them.

Listeners are plain functions that must not block (a websocket listener only queues a
frame): publishing never waits on a socket. Nor does it wait for the listeners to be
called: each event is queued with the listeners subscribed when it was published, and
a dispatcher calls them from the next turn of the event loop on, DISPATCH_SLICE at a
time, so the request that published answers first and a fan-out to thousands of
sockets does not hold up other requests for its whole length. Events are dispatched in
the order they were published, each to all of its listeners before the next; a
listener that unsubscribes meanwhile is not called. With a broker, an event is
delivered locally first and then handed to the broker once, encoded; what the broker
receives from other processes is decoded and delivered the same way. Local delivery
never depends on the broker: it goes on while Redis is away.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import structlog

from core.broker import Broker

log = structlog.get_logger(__name__)

# Listeners called per turn of the event loop while an event is dispatched.
DISPATCH_SLICE = 250


class Routed(Protocol):
    """What the hub needs of an event: the channel it is published on."""

    @property
    def channel(self) -> str: ...


E = TypeVar("E", bound=Routed)


@dataclass(frozen=True)
class Codec(Generic[E]):
    """How events travel through the broker: `decode` raises ValueError (pydantic's
    ValidationError is one) for bytes that are no event."""

    encode: Callable[[E], bytes]
    decode: Callable[[bytes], E]


class Hub(Generic[E]):
    """Delivery to this process's listeners, and with a `broker` (and the `codec` its
    payloads need) to every process's."""

    def __init__(self, broker: Broker | None = None, codec: Codec[E] | None = None) -> None:
        if broker is not None and codec is None:
            raise TypeError("a hub with a broker needs a codec")
        self.broker = broker
        self._codec = codec
        self._listeners: dict[str, set[Callable[[E], None]]] = {}
        self._queue: deque[tuple[E, list[Callable[[E], None]]]] = deque()
        self._dispatching: asyncio.Task[None] | None = None

    def subscribe(self, channel: str, listener: Callable[[E], None]) -> Callable[[], None]:
        """Register `listener`; returns the function that unregisters it."""
        self._listeners.setdefault(channel, set()).add(listener)

        def unsubscribe() -> None:
            self._listeners.get(channel, set()).discard(listener)

        return unsubscribe

    async def publish(self, event: E) -> None:
        """Deliver `event` here, then hand it to the broker for the other processes."""
        self.deliver(event)
        if self.broker is not None and self._codec is not None:
            await self.broker.publish(event.channel, self._codec.encode(event))

    def deliver(self, event: E) -> None:
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

    def _received(self, payload: bytes) -> None:
        """An event another process published, from the broker."""
        # Only the broker calls this, and only a hub with a codec starts one.
        assert self._codec is not None  # nosec B101
        try:
            event = self._codec.decode(payload)
        except ValueError:
            log.warning("event_undecodable", size=len(payload))
            return
        self.deliver(event)

    async def start(self) -> None:
        """Start receiving from the broker, if any."""
        if self.broker is not None:
            await self.broker.start(self._received)

    async def close(self) -> None:
        if self.broker is not None:
            await self.broker.close()
        self._listeners.clear()
        self._queue.clear()
        if self._dispatching is not None:
            self._dispatching.cancel()
            await asyncio.gather(self._dispatching, return_exceptions=True)
