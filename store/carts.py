"""A cart's rows as checkout reads and empties them."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, delete, select, update

from core.direct import Direct, Statement
from models.base import table_of
from models.catalog import Product
from models.orders import Cart, CartItem

_CARTS = table_of(Cart)
_CART_ITEMS = table_of(CartItem)
_PRODUCTS = table_of(Product)

_LOCK_CART = Statement(
    select(_CARTS.c.id).where(_CARTS.c.user_id == bindparam("user_id")).with_for_update()
)
# The cart's lines with what an order snapshots, in product id order (the order stock
# rows are locked in).
_PRICED_LINES = Statement(
    select(
        _CART_ITEMS.c.product_id,
        _CART_ITEMS.c.quantity,
        _PRODUCTS.c.slug,
        _PRODUCTS.c.name,
        _PRODUCTS.c.price_cents,
        _PRODUCTS.c.currency,
        _PRODUCTS.c.category_id,
    )
    .join(_PRODUCTS, _PRODUCTS.c.id == _CART_ITEMS.c.product_id)
    .where(_CART_ITEMS.c.cart_id == bindparam("cart_id"))
    .order_by(_CART_ITEMS.c.product_id)
)
_EMPTY_CART = Statement(delete(_CART_ITEMS).where(_CART_ITEMS.c.cart_id == bindparam("cart_id")))
_TOUCH_CART = Statement(
    update(_CARTS).where(_CARTS.c.id == bindparam("cart_id")).values(updated_at=bindparam("now"))
)


class PricedLine(NamedTuple):
    """A cart line with its product's current name, price and category."""

    product_id: int
    quantity: int
    slug: str
    name: str
    price_cents: int
    currency: str
    category_id: int | None


async def lock_cart(db: Direct, *, user_id: int) -> int | None:
    """The id of the user's cart, its row locked until the transaction ends (so two
    checkouts of one cart run one after the other); None without a cart."""
    cart_id: int | None = await db.scalar(_LOCK_CART, {"user_id": user_id})
    return cart_id


async def priced_lines(db: Direct, *, cart_id: int) -> list[PricedLine]:
    """The cart's lines, in product id order."""
    return [PricedLine(*row) for row in await db.rows(_PRICED_LINES, {"cart_id": cart_id})]


async def empty_cart(db: Direct, *, cart_id: int, now: datetime) -> None:
    """Remove every line; the cart stays, touched at `now`."""
    await db.write(_EMPTY_CART, {"cart_id": cart_id})
    await db.write(_TOUCH_CART, {"cart_id": cart_id, "now": now})
