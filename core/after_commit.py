"""The one path for what follows a committed write: invalidate cached catalog responses
and publish events.

Each context builds one `AfterCommit` (`ctx.after_commit`); a service that writes takes
it as its `publisher` argument and hands it what it changed once its transaction has
committed. A failure here is logged and never raised: the write stands, and the
response must show it.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from core.cache import ResponseCache
from core.events import Event, StockChanged
from core.hub import Hub

log = structlog.get_logger(__name__)

# Cache group of every catalog response (categories, product lists and details).
CATALOG_CACHE_GROUP = "catalog"


class AfterCommit:
    def __init__(self, cache: ResponseCache, hub: Hub) -> None:
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
