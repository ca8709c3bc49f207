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
from core.events import Event, StockChanged
from core.hub import Hub

log = structlog.get_logger(__name__)

# Cache group of every catalog response (categories, product lists and details).
CATALOG_CACHE_GROUP = "catalog"
_SESSION_KEY = "after_commit"


class AfterCommit:
    def __init__(self, cache: ResponseCache, hub: Hub[Event]) -> None:
        self.cache = cache
        self.hub = hub

    async def catalog_changed(self) -> None:
        """Make every cached catalog response stale."""
        try:
            await self.cache.invalidate(CATALOG_CACHE_GROUP)
        except Exception:
            log.exception("cache_invalidation_failed", group=CATALOG_CACHE_GROUP)

    async def publish(self, events: Iterable[Event]) -> None:
        """Publish `events` in order; a stock change also makes the catalog stale."""
        events = list(events)
        if any(isinstance(event, StockChanged) for event in events):
            await self.catalog_changed()
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
