"""The one path for what follows a committed write: invalidate cached catalog responses
and publish events.

Each context builds one `AfterCommit` (`ctx.after_commit`); a service that writes takes
it as its `publisher` argument and hands it what it changed once its transaction has
committed. A failure here is logged and never raised: the write stands, and the
response must show it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import structlog

from core.cache import ResponseCache
from core.hub import Hub, Routed

log = structlog.get_logger(__name__)

# Cache group of every catalog response (categories, product lists and details).
CATALOG_CACHE_GROUP = "catalog"


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
        await self._invalidate(CATALOG_CACHE_GROUP)

    async def publish(self, events: Iterable[Published]) -> None:
        """Publish `events` in order, first making stale the cache groups they name (a
        stock change: the catalog)."""
        events = list(events)
        for group in dict.fromkeys(group for event in events for group in event.stale_cache_groups):
            await self._invalidate(group)
        for event in events:
            try:
                await self.hub.publish(event)
            except Exception:
                log.exception("event_publish_failed", channel=event.channel)

    async def _invalidate(self, group: str) -> None:
        try:
            await self.cache.invalidate(group)
        except Exception:
            log.exception("cache_invalidation_failed", group=group)
