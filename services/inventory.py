"""Stock: the guarded SQL that takes and puts back an order's items, the levels it
leaves, and the `inventory.changed` events that announce them after commit.

Stock only ever changes through a guarded UPDATE (`stock >= quantity` to take, an
increment to put back), so its correctness never depends on a read-then-write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import errors
from core.sql import Direct, Statement, direct
from models.base import table_of
from models.catalog import Product
from models.orders import OrderItem
from schemas.events import StockChanged, StockLevelOut


@dataclass(frozen=True)
class StockLevel:
    slug: str
    stock: int


@dataclass(frozen=True)
class StockLine:
    """Units of one product to take (`product_id` None: the product was deleted)."""

    product_id: int | None
    slug: str
    quantity: int


# Built once, on the table rather than the mapped class, and sent straight to the
# driver (core/sql.py): checkout runs it for every line of every order.
_PRODUCTS = table_of(Product)
_TAKE_STOCK = Statement(
    update(_PRODUCTS)
    .where(
        _PRODUCTS.c.id == bindparam("product_id"),
        _PRODUCTS.c.is_active.is_(True),
        _PRODUCTS.c.stock >= bindparam("quantity"),
    )
    .values(stock=_PRODUCTS.c.stock - bindparam("quantity"), updated_at=bindparam("now"))
)


# One statement per number of products; orders rarely have more than a few dozen lines.
@lru_cache(maxsize=64)
def _stock_levels_of(count: int) -> Statement:
    """The slug and stock of `count` products (parameters id_0 ... id_<count-1>)."""
    return Statement(
        select(_PRODUCTS.c.slug, _PRODUCTS.c.stock)
        .where(_PRODUCTS.c.id.in_([bindparam(f"id_{number}") for number in range(count)]))
        .order_by(_PRODUCTS.c.id)
    )


def stock_events(levels: Iterable[StockLevel], at: datetime) -> list[StockChanged]:
    """One `inventory.changed` per level."""
    return [
        StockChanged(product=level.slug, stock=level.stock, in_stock=level.stock > 0, at=at)
        for level in levels
    ]


async def take_stock(
    db: Direct, lines: Sequence[StockLine], *, now: datetime
) -> tuple[StockLevel, ...]:
    """Decrement each product's stock unless it would go below zero (`lines` sorted by
    product id, so concurrent orders lock rows in one order); InsufficientStock naming
    every product short otherwise (the caller's transaction must then roll back)."""
    short = []
    for line in lines:
        taken = await db.write(
            _TAKE_STOCK, {"product_id": line.product_id, "quantity": line.quantity, "now": now}
        )
        if taken != 1:
            short.append(line.slug)
    if short:
        raise errors.InsufficientStock(short)
    return await stock_levels(db, [line.product_id for line in lines if line.product_id])


async def retake_stock(
    session: AsyncSession, order_id: int, *, now: datetime
) -> tuple[StockLevel, ...]:
    """Take an order's items again (after its stock went back); InsufficientStock when
    any of them is short or gone."""
    rows = await session.execute(
        select(OrderItem.product_id, OrderItem.product_slug, OrderItem.quantity)
        .where(OrderItem.order_id == order_id)
        .order_by(OrderItem.product_id)
    )
    return await take_stock(await direct(session), [StockLine(*row) for row in rows], now=now)


async def put_back_stock(session: AsyncSession, order_id: int) -> tuple[StockLevel, ...]:
    """Add the order's quantities back to their products; the new levels."""
    rows = await session.execute(
        select(OrderItem.product_id, OrderItem.quantity)
        .where(OrderItem.order_id == order_id)
        .order_by(OrderItem.product_id)
    )
    # A product deleted since the order has no stock to put back.
    items = [(product_id, quantity) for product_id, quantity in rows if product_id is not None]
    for product_id, quantity in items:
        await session.execute(
            update(Product)
            .where(Product.id == product_id)
            .values(stock=Product.stock + quantity)
            .execution_options(synchronize_session=False)
        )
    return await stock_levels(await direct(session), [product_id for product_id, _ in items])


async def stock_levels(db: Direct, product_ids: list[int]) -> tuple[StockLevel, ...]:
    """The products' stock as this transaction sees it (read from the rows, not a
    session's objects, which the guarded updates leave untouched)."""
    if not product_ids:
        return ()
    rows = await db.rows(
        _stock_levels_of(len(product_ids)),
        {f"id_{number}": product_id for number, product_id in enumerate(product_ids)},
    )
    return tuple(StockLevel(slug=slug, stock=stock) for slug, stock in rows)


async def stock_snapshot(session: AsyncSession, *, slugs: Sequence[str]) -> list[StockLevelOut]:
    """The stock of the active products among `slugs`, in the order asked; unknown and
    inactive slugs are left out."""
    async with session.begin():
        rows = await session.execute(
            select(Product.slug, Product.stock).where(
                Product.slug.in_(slugs), Product.is_active.is_(True)
            )
        )
        stock = {slug: level for slug, level in rows}
    return [
        StockLevelOut(product=slug, stock=stock[slug], in_stock=stock[slug] > 0)
        for slug in dict.fromkeys(slugs)
        if slug in stock
    ]
