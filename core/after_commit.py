"""The one path for what follows a committed write: invalidate cached catalog responses
and publish events.

Each context builds one `AfterCommit` and its sessionmaker (and Transactions) carry it,
so a service reaches it from its session (`after_commit(session)`) and hands it what it
changed once its transaction has committed. A failure here is logged and never raised:
the write stands, and the response must show it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import structlog

from core.cache import ResponseCache
from core.hub import Hub, Routed

log = structlog.get_logger(__name__)

# Cache group of every catalog response (categories, product lists and details).
CATALOG_CACHE_GROUP = "catalog"
_SESSION_KEY = "after_commit"


class Published(Routed, Protocol):
    """What the publisher needs of an event (schemas/events.py): its channel, and the
    cache groups whose responses show what it announces."""

    @property
    def stale_cache_groups(self) -> tuple[str, ...]: ...


class AfterCommit:
    # Any: the hub carries schemas/events.py's events, which this layer cannot name.
    def __init__(self, cache: ResponseCache, hub: Hub[Any]) -> None:
        self.cache = cache
        self.hub = hub

    async def catalog_changed(self) -> None:
        """Make every cached catalog response stale."""
        try:
            await self.cache.invalidate(CATALOG_CACHE_GROUP)
        except Exception:
            log.exception("cache_invalidation_failed", group=CATALOG_CACHE_GROUP)

    async def publish(self, events: Iterable[Published]) -> None:
        """Publish `events` in order, first making stale the cache groups they name (a
        stock change: the catalog)."""
        events = list(events)
        for group in dict.fromkeys(group for event in events for group in event.stale_cache_groups):
            try:
                await self.cache.invalidate(group)
            except Exception:
                log.exception("cache_invalidation_failed", group=group)
        for event in events:
            try:
                await self.hub.publish(event)
            except Exception:
                log.exception("event_publish_failed", channel=event.channel)

    def session_info(self) -> dict[str, object]:
        """What a sessionmaker puts in every session's `info` (and Transactions in theirs)
        for `after_commit()`."""
        return {_SESSION_KEY: self}


class _Carrier(Protocol):
    @property
    def info(self) -> Mapping[str, Any]: ...


def after_commit(carrier: _Carrier) -> AfterCommit:
    """The publisher of the context that made `carrier` (a session, or Transactions)."""
    publisher = carrier.info[_SESSION_KEY]
    # make_sessionmaker or Transactions put it there; the assert only narrows the type.
    assert isinstance(publisher, AfterCommit)  # nosec B101
    return publisher
