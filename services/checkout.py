"""Checkout: the user's cart becomes a `pending_payment` order in one transaction
(retried after a deadlock), announced after commit.

The hottest write of the shop, so it runs as a transaction of its own on the pool
(`Transactions`, core/direct/) rather than in a session: every statement is a direct
one (store/), and the order comes back as the rows written, not an ORM object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from core import errors
from core.after_commit import AfterCommit
from core.db import retry_on_deadlock
from core.direct import Direct, Transactions
from core.emails import ORDER_CONFIRMATION
from core.messages import CART_MIXED_CURRENCIES
from models.base import utcnow
from schemas.common import cents_to_str
from schemas.orders import OrderFields
from services.discounts import PricedLine, quote_discount, record_discount_use
from services.order_status import PENDING_PAYMENT, StatusChange, events_of, record_event
from store import carts, orders
from store.orders import OrderRow
from store.outbox import queue_mail
from store.stock import StockLine, take_stock
from store.users import Addressee, get_active_addressee


@dataclass(frozen=True)
class PlacedOrder:
    order: OrderFields
    created: bool  # False when the Idempotency-Key matched an earlier order


# --- checkout ------------------------------------------------------------------------


async def create_order_from_cart(
    transactions: Transactions,
    *,
    publisher: AfterCommit,
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
    await publisher.publish(events_of([change]))
    return PlacedOrder(order=order, created=change is not None)


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
    cart_id = await carts.lock_cart(db, user_id=user_id)
    earlier = await _order_by_key(db, user_id, idempotency_key)
    if earlier is not None:
        return earlier, None
    if cart_id is None:
        raise errors.CartEmpty()
    rows = await carts.priced_lines(db, cart_id=cart_id)
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
    discount: dict[str, Any] = {}
    if discount_code is not None:
        # Counted before the stock is taken: the discount row is always locked
        # before product rows, so two checkouts never wait on each other in a cycle.
        quote = await quote_discount(db, code=discount_code, lines=lines, now=now)
        await record_discount_use(db, discount_id=quote.discount.id, now=now)
        discount = {
            "discount_id": quote.discount.id,
            "discount_code": quote.discount.code,
            "discount_total_cents": quote.amount_cents,
        }
    levels = await take_stock(
        db, [StockLine(row.product_id, row.slug, row.quantity) for row in rows], now=now
    )
    order = await orders.add_order(
        db,
        {
            "user_id": user_id,
            "status": PENDING_PAYMENT,
            "subtotal_cents": subtotal,
            "discount_id": None,
            "discount_code": None,
            "discount_total_cents": 0,
            **discount,
            "total_cents": subtotal - discount.get("discount_total_cents", 0),
            "currency": currencies[0],
            "shipping_address": dict(shipping_address),
            "idempotency_key": idempotency_key,
            "payment_intent_id": None,
            "created_at": now,
            "updated_at": now,
        },
        [
            {
                "product_id": row.product_id,
                "product_slug": row.slug,
                "name": row.name,
                "unit_price_cents": row.price_cents,
                "quantity": row.quantity,
            }
            for row in rows
        ],
    )
    await carts.empty_cart(db, cart_id=cart_id, now=now)
    await _queue_confirmation(db, buyer, order, now)
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


async def _order_by_key(db: Direct, user_id: int, key: str | None) -> OrderRow | None:
    """The user's order placed with Idempotency-Key `key`, as it is now."""
    return None if key is None else await orders.order_by_key(db, user_id=user_id, key=key)


async def _queue_confirmation(
    db: Direct, buyer: Addressee, order: OrderFields, now: datetime
) -> None:
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
    await queue_mail(db, recipient=buyer.email, subject=subject, body=body, now=now)
