"""Checkout: the user's cart becomes a `pending_payment` order in one transaction
(retried after a deadlock), announced after commit.

The hottest write of the shop, so it runs as a transaction of its own on the pool
(`Transactions`, core/direct/) rather than in a session: every statement goes straight to
the driver, and the order comes back as the rows written (`OrderRow`), not an ORM
object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from core import errors
from core.after_commit import after_commit
from core.db import retry_on_deadlock
from core.emails import ORDER_CONFIRMATION
from core.messages import CART_MIXED_CURRENCIES
from core.direct import Direct, Statement, Transactions
from models.base import table_of, utcnow
from models.catalog import Product
from models.orders import Cart, CartItem, Order, OrderEvent, OrderItem
from schemas.common import cents_to_str
from services.accounts import Addressee, get_active_addressee
from services.discounts import PricedLine, quote_discount, record_discount_use
from services.inventory import StockLine, take_stock
from services.order_status import PENDING_PAYMENT, StatusChange, events_of, record_event
from services.outbox import queue_mail


@dataclass(frozen=True, slots=True)
class OrderItemRow:
    product_id: int | None  # None once the product is deleted
    product_slug: str
    name: str
    unit_price_cents: int
    quantity: int


@dataclass(slots=True)
class OrderRow:
    """An order as checkout wrote it (or found it by its Idempotency-Key): the
    values of its rows, as an Order would hold them."""

    user_id: int
    status: str
    subtotal_cents: int
    discount_id: int | None
    discount_code: str | None
    discount_total_cents: int
    total_cents: int
    currency: str
    shipping_address: dict[str, Any]
    idempotency_key: str | None
    payment_intent_id: str | None
    created_at: datetime
    updated_at: datetime
    items: list[OrderItemRow]
    id: int = 0  # given by the database
    last_event_id: int | None = None


@dataclass(frozen=True)
class PlacedOrder:
    order: OrderRow
    created: bool  # False when the Idempotency-Key matched an earlier order


# --- checkout ------------------------------------------------------------------------


async def create_order_from_cart(
    transactions: Transactions,
    *,
    user_id: int,
    shipping_address: Mapping[str, Any],
    discount_code: str | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> PlacedOrder:
    """Turn the user's cart into a `pending_payment` order, in one transaction.

    The user is read in that transaction too: an HTTP request's authentication leaves
    that to checkout (see handlers/base.py), which saves a transaction per order. Takes
    the stock (guarded decrements, in ascending product id order), applies and
    counts the discount, snapshots prices, clears the cart, queues the confirmation
    mail and records the first event. With an `idempotency_key` already used by this
    user, returns that earlier order (created=False) and changes nothing.

    Raises CartEmpty, ValidationFailed (mixed currencies, `fields.discount_code`)
    or InsufficientStock naming every product short (nothing is taken then), and
    NotAuthenticated when the user is unknown or deactivated.
    """
    now = now or utcnow()

    async def attempt() -> tuple[OrderRow, StatusChange | None]:
        try:
            async with transactions() as db:
                return await _place(
                    db, user_id, shipping_address, discount_code, idempotency_key, now
                )
        except IntegrityError:
            # A request with the same key committed first: the unique index decided.
            async with transactions() as db:
                earlier = await _order_by_key(db, user_id, idempotency_key)
            if earlier is None:
                raise
            return earlier, None

    order, change = await retry_on_deadlock(attempt)
    await after_commit(transactions).publish(events_of([change]))
    return PlacedOrder(order=order, created=change is not None)


_CARTS = table_of(Cart)
_CART_ITEMS = table_of(CartItem)
_PRODUCTS = table_of(Product)
_ORDERS = table_of(Order)
_ORDER_ITEMS = table_of(OrderItem)
_ORDER_EVENTS = table_of(OrderEvent)

_LOCK_CART = Statement(
    select(_CARTS.c.id).where(_CARTS.c.user_id == bindparam("user_id")).with_for_update()
)
# The cart's lines with what the order snapshots, in product id order (the order stock
# rows are locked in).
_CART_LINES = Statement(
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
# Values are passed at execution: the columns are the names given.
_ADD_ORDER = Statement(insert(_ORDERS))
_ADD_ORDER_ITEMS = Statement(insert(_ORDER_ITEMS))
_EMPTY_CART = Statement(delete(_CART_ITEMS).where(_CART_ITEMS.c.cart_id == bindparam("cart_id")))
_TOUCH_CART = Statement(
    update(_CARTS)
    .where(_CARTS.c.id == bindparam("cart_id"))
    .values(updated_at=bindparam("touched_at"))
)


class _CartLine(NamedTuple):
    product_id: int
    quantity: int
    slug: str
    name: str
    price_cents: int
    currency: str
    category_id: int | None


async def _place(
    db: Direct,
    user_id: int,
    shipping_address: Mapping[str, Any],
    discount_code: str | None,
    idempotency_key: str | None,
    now: datetime,
) -> tuple[OrderRow, StatusChange | None]:
    buyer = await get_active_addressee(db, user_id=user_id)
    if buyer is None:
        raise errors.NotAuthenticated()
    # The cart row lock makes two checkouts of one cart run one after the other, so a
    # retry finds the order its first attempt committed (and not an emptied cart).
    cart_id = await db.scalar(_LOCK_CART, {"user_id": user_id})
    earlier = await _order_by_key(db, user_id, idempotency_key)
    if earlier is not None:
        return earlier, None
    rows = (
        []
        if cart_id is None
        else [_CartLine(*row) for row in await db.rows(_CART_LINES, {"cart_id": cart_id})]
    )
    if not rows:
        raise errors.CartEmpty()
    currencies = sorted({row.currency for row in rows})
    if len(currencies) > 1:
        raise errors.ValidationFailed(
            CART_MIXED_CURRENCIES, params={"currencies": ", ".join(currencies)}
        )
    lines = [
        PricedLine(
            product_id=row.product_id,
            category_id=row.category_id,
            unit_price_cents=row.price_cents,
            quantity=row.quantity,
        )
        for row in rows
    ]
    subtotal = sum(line.total_cents for line in lines)
    order = OrderRow(
        user_id=user_id,
        status=PENDING_PAYMENT,
        subtotal_cents=subtotal,
        discount_id=None,
        discount_code=None,
        discount_total_cents=0,
        total_cents=subtotal,
        currency=currencies[0],
        shipping_address=dict(shipping_address),
        idempotency_key=idempotency_key,
        payment_intent_id=None,
        created_at=now,
        updated_at=now,
        items=[
            OrderItemRow(row.product_id, row.slug, row.name, row.price_cents, row.quantity)
            for row in rows
        ],
    )
    if discount_code is not None:
        # Counted before the stock is taken: the discount row is always locked
        # before product rows, so two checkouts never wait on each other in a cycle.
        quote = await quote_discount(db, code=discount_code, lines=lines, now=now)
        await record_discount_use(db, discount_id=quote.discount.id, now=now)
        order.discount_id = quote.discount.id
        order.discount_code = quote.discount.code
        order.discount_total_cents = quote.amount_cents
        order.total_cents = subtotal - quote.amount_cents
    levels = await take_stock(
        db, [StockLine(row.product_id, row.slug, row.quantity) for row in rows], now=now
    )
    # A reused Idempotency-Key fails here, on the unique index.
    order.id = await db.insert(
        _ADD_ORDER, {column: getattr(order, column) for column in _ORDER_COLUMNS}
    )
    await db.write_many(
        _ADD_ORDER_ITEMS,
        [
            {"order_id": order.id, **{column: getattr(item, column) for column in _ITEM_COLUMNS}}
            for item in order.items
        ],
    )
    await db.write(_EMPTY_CART, {"cart_id": cart_id})
    await db.write(_TOUCH_CART, {"cart_id": cart_id, "touched_at": now})
    await _queue_confirmation(db, buyer, order)
    change = await record_event(
        db,
        order_id=order.id,
        user_id=user_id,
        previous=None,
        status=PENDING_PAYMENT,
        now=now,
        levels=levels,
    )
    order.last_event_id = change.event_id  # the event just recorded is the newest
    return order, change


_ORDER_COLUMNS = (
    "user_id",
    "status",
    "subtotal_cents",
    "discount_id",
    "discount_code",
    "discount_total_cents",
    "total_cents",
    "currency",
    "shipping_address",
    "idempotency_key",
    "payment_intent_id",
    "created_at",
    "updated_at",
)
_ITEM_COLUMNS = ("product_id", "product_slug", "name", "unit_price_cents", "quantity")
_LAST_EVENT_ID = (
    select(func.max(_ORDER_EVENTS.c.id))
    .where(_ORDER_EVENTS.c.order_id == _ORDERS.c.id)
    .scalar_subquery()
)
_ORDER_BY_KEY = Statement(
    select(*(_ORDERS.c[column] for column in _ORDER_COLUMNS), _ORDERS.c.id, _LAST_EVENT_ID).where(
        _ORDERS.c.user_id == bindparam("user_id"),
        _ORDERS.c.idempotency_key == bindparam("key"),
    )
)
_ITEMS_OF_ORDER = Statement(
    select(*(_ORDER_ITEMS.c[column] for column in _ITEM_COLUMNS))
    .where(_ORDER_ITEMS.c.order_id == bindparam("order_id"))
    .order_by(_ORDER_ITEMS.c.id)
)


async def _order_by_key(db: Direct, user_id: int, key: str | None) -> OrderRow | None:
    """The user's order placed with Idempotency-Key `key`, as it is now."""
    if key is None:
        return None
    rows = await db.rows(_ORDER_BY_KEY, {"user_id": user_id, "key": key})
    if not rows:
        return None
    *values, order_id, last_event_id = rows[0]
    items = await db.rows(_ITEMS_OF_ORDER, {"order_id": order_id})
    return OrderRow(
        **dict(zip(_ORDER_COLUMNS, values, strict=True)),
        id=order_id,
        items=[OrderItemRow(*item) for item in items],
        last_event_id=last_event_id,
    )


async def _queue_confirmation(db: Direct, buyer: Addressee, order: OrderRow) -> None:
    def money(cents: int) -> str:
        return f"{cents_to_str(cents)} {order.currency}"

    address = order.shipping_address
    subject, body = ORDER_CONFIRMATION.render(
        buyer.language,
        name=buyer.full_name or buyer.email,
        order_id=order.id,
        items="\n".join(
            f"{item.quantity} x {item.name}: {money(item.unit_price_cents * item.quantity)}"
            for item in order.items
        ),
        subtotal=money(order.subtotal_cents),
        discount=money(order.discount_total_cents),
        total=money(order.total_cents),
        address="\n".join(
            part
            for part in (
                address["name"],
                address["line1"],
                address.get("line2"),
                f"{address['postal_code']} {address['city']}",
                address["country"],
            )
            if part
        ),
    )
    await queue_mail(db, recipient=buyer.email, subject=subject, body=body)
