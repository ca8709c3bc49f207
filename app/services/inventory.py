"""What every stock change announces once its transaction has committed.

Catalog edits, checkouts, cancellations and releases all end here, so the cached
catalog never shows stale stock and websocket listeners hear about every change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.cache import ResponseCache
from app.events import Hub
from app.schemas.common import to_utc_text
from models.base import utcnow

# Cache group of every catalog response (categories, product lists and details).
CATALOG_CACHE_GROUP = "catalog"
INVENTORY_CHANNEL = "inventory"
ORDERS_CHANNEL = "orders"


@dataclass(frozen=True)
class StockLevel:
    slug: str
    stock: int


async def announce_stock_changes(
    *, cache: ResponseCache, hub: Hub, levels: Iterable[StockLevel]
) -> None:
    """Invalidate cached catalog responses and publish one `inventory.changed` per product.

    Call after commit, never inside the transaction.
    """
    await cache.invalidate(CATALOG_CACHE_GROUP)
    at = to_utc_text(utcnow())
    for level in levels:
        await hub.publish(
            INVENTORY_CHANNEL,
            {
                "type": "inventory.changed",
                "product": level.slug,
                "stock": level.stock,
                "in_stock": level.stock > 0,
                "at": at,
            },
        )
