"""Stock rows: the guarded SQL that takes and puts back an order's items, and the levels
it leaves.

Stock only ever changes through a guarded UPDATE (`stock >= quantity` to take, an
increment to put back), so its correctness never depends on a read-then-write. Rows are
always changed in ascending product id order, so two orders never wait on each other
in a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam, select, update

from core import errors
from core.direct import Direct, Statement
from models.base import table_of
from models.catalog import Product
from models.orders import OrderItem


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


_PRODUCTS = table_of(Product)
_ORDER_ITEMS = table_of(OrderItem)
_THIS_PRODUCT = _PRODUCTS.c.id == bindparam("product_id")
_TAKE = Statement(
    update(_PRODUCTS)
    .where(
        _THIS_PRODUCT, _PRODUCTS.c.is_active.is_(True), _PRODUCTS.c.stock >= bindparam("quantity")
    )
    .values(stock=_PRODUCTS.c.stock - bindparam("quantity"), updated_at=bindparam("now"))
)
_PUT_BACK = Statement(
    update(_PRODUCTS)
    .where(_THIS_PRODUCT)
    .values(stock=_PRODUCTS.c.stock + bindparam("quantity"), updated_at=bindparam("now"))
)
_LINES_OF_ORDER = Statement(
    select(_ORDER_ITEMS.c.product_id, _ORDER_ITEMS.c.product_slug, _ORDER_ITEMS.c.quantity)
    .where(_ORDER_ITEMS.c.order_id == bindparam("order_id"))
    .order_by(_ORDER_ITEMS.c.product_id)
)


# One statement per number of values; orders rarely have more than a few dozen lines.
@lru_cache(maxsize=64)
def _levels_by_id(count: int) -> Statement:
    """The slug and stock of `count` products (parameters id_0 ... id_<count-1>)."""
    return Statement(
        select(_PRODUCTS.c.slug, _PRODUCTS.c.stock)
        .where(_PRODUCTS.c.id.in_([bindparam(f"id_{number}") for number in range(count)]))
        .order_by(_PRODUCTS.c.id)
    )


@lru_cache(maxsize=128)
def _active_levels_by_slug(count: int) -> Statement:
    """The slug and stock of the active products among `count` slugs (slug_0 ...)."""
    return Statement(
        select(_PRODUCTS.c.slug, _PRODUCTS.c.stock).where(
            _PRODUCTS.c.slug.in_([bindparam(f"slug_{number}") for number in range(count)]),
            _PRODUCTS.c.is_active.is_(True),
        )
    )


async def take_stock(
    db: Direct, lines: Sequence[StockLine], *, now: datetime
) -> tuple[StockLevel, ...]:
    """Decrement each product's stock unless it would go below zero (`lines` sorted by
    product id); InsufficientStock naming every product short otherwise (the caller's
    transaction must then roll back). The new levels."""
    short = []
    for line in lines:
        taken = await db.write(
            _TAKE, {"product_id": line.product_id, "quantity": line.quantity, "now": now}
        )
        if taken != 1:
            short.append(line.slug)
    if short:
        raise errors.InsufficientStock(short)
    return await stock_levels(db, [line.product_id for line in lines if line.product_id])


async def order_lines(db: Direct, *, order_id: int) -> list[StockLine]:
    """The order's items as stock lines, in product id order."""
    return [StockLine(*row) for row in await db.rows(_LINES_OF_ORDER, {"order_id": order_id})]


async def retake_stock(db: Direct, *, order_id: int, now: datetime) -> tuple[StockLevel, ...]:
    """Take an order's items again (after its stock went back); InsufficientStock when
    any of them is short or gone."""
    return await take_stock(db, await order_lines(db, order_id=order_id), now=now)


async def put_back_stock(db: Direct, *, order_id: int, now: datetime) -> tuple[StockLevel, ...]:
    """Add the order's quantities back to their products; the new levels."""
    # A product deleted since the order has no stock to put back.
    lines = [line for line in await order_lines(db, order_id=order_id) if line.product_id]
    for line in lines:
        await db.write(
            _PUT_BACK, {"product_id": line.product_id, "quantity": line.quantity, "now": now}
        )
    return await stock_levels(db, [line.product_id for line in lines if line.product_id])


async def stock_levels(db: Direct, product_ids: list[int]) -> tuple[StockLevel, ...]:
    """The products' stock as this transaction sees it, in product id order."""
    if not product_ids:
        return ()
    rows = await db.rows(
        _levels_by_id(len(product_ids)),
        {f"id_{number}": product_id for number, product_id in enumerate(product_ids)},
    )
    return tuple(StockLevel(slug=slug, stock=stock) for slug, stock in rows)


async def active_stock_levels(db: Direct, *, slugs: Sequence[str]) -> dict[str, int]:
    """The stock of the active products among `slugs`, by slug (others left out)."""
    unique = list(dict.fromkeys(slugs))
    if not unique:
        return {}
    rows = await db.rows(
        _active_levels_by_slug(len(unique)),
        {f"slug_{number}": slug for number, slug in enumerate(unique)},
    )
    return {slug: stock for slug, stock in rows}
