"""Publish/subscribe hub for events that reach websockets (and other listeners).

Services publish only after their transaction commits. The in-process hub delivers
to subscribers in this process; a Redis-backed hub with the same interface fans out
across processes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

Message = dict[str, Any]
Subscriber = Callable[[Message], Awaitable[None]]

log = structlog.get_logger(__name__)


class Hub(Protocol):
    async def publish(self, channel: str, message: Message) -> None: ...

    def subscribe(self, channel: str, subscriber: Subscriber) -> Callable[[], None]:
        """Register `subscriber`; returns the function that unregisters it."""
        ...

    async def close(self) -> None: ...


class InProcessHub:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscriber]] = {}

    async def publish(self, channel: str, message: Message) -> None:
        # Iterate over a snapshot: a subscriber may unsubscribe while being called.
        for subscriber in list(self._subscribers.get(channel, ())):
            try:
                await subscriber(message)
            except Exception:  # one broken listener must not stop the others
                log.exception("event_subscriber_failed", channel=channel)

    def subscribe(self, channel: str, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.setdefault(channel, set()).add(subscriber)

        def unsubscribe() -> None:
            self._subscribers.get(channel, set()).discard(subscriber)

        return unsubscribe

    async def close(self) -> None:
        self._subscribers.clear()
