"""Stock as shoppers see it: the `inventory.changed` events that announce new levels
after commit, and the snapshot a new /ws/inventory socket starts from. The stock rows
themselves change only through store/stock.py."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.direct import direct
from schemas.events import StockChanged, StockLevelOut
from store.stock import StockLevel, active_stock_levels


def stock_events(levels: Iterable[StockLevel], at: datetime) -> list[StockChanged]:
    """One `inventory.changed` per level."""
    return [
        StockChanged(product=level.slug, stock=level.stock, in_stock=level.stock > 0, at=at)
        for level in levels
    ]


async def stock_snapshot(session: AsyncSession, *, slugs: Sequence[str]) -> list[StockLevelOut]:
    """The stock of the active products among `slugs`, in the order asked; unknown and
    inactive slugs are left out."""
    async with session.begin():
        stock = await active_stock_levels(await direct(session), slugs=slugs)
    return [
        StockLevelOut(product=slug, stock=stock[slug], in_stock=stock[slug] > 0)
        for slug in dict.fromkeys(slugs)
        if slug in stock
    ]
