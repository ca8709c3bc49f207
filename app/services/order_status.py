"""The order status machine: which moves exist, the one function that makes them,
the stock an order holds, and every path that moves an order after checkout
(cancellation, staff updates, expiry; the Stripe webhook in app/services/payments.py).

`apply_transition` moves an order with a guarded UPDATE, only from the status it was
read in, so of several concurrent callers exactly one applies a change (and puts the
stock back); the others find the new status. `announce` publishes what changed, after
the transaction has committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app import errors
from app.cache import ResponseCache
from app.db import retry_on_deadlock
from app.events import Hub
from app.messages import ORDER_STATUS_CONFLICT
from app.schemas.common import to_utc_text
from app.services.inventory import ORDERS_CHANNEL, StockLevel, announce_stock_changes
from models.accounts import User
from models.base import utcnow
from models.catalog import Product
from models.orders import CartItem, Order, OrderEvent, OrderItem

log = structlog.get_logger(__name__)

PENDING_PAYMENT = "pending_payment"
PAID = "paid"
PROCESSING = "processing"
SHIPPED = "shipped"
DELIVERED = "delivered"
PAYMENT_FAILED = "payment_failed"
CANCELLED = "cancelled"
EXPIRED = "expired"
REFUNDED = "refunded"

NEXT_STATUSES: Mapping[str, frozenset[str]] = {
    PENDING_PAYMENT: frozenset({PAID, PAYMENT_FAILED, CANCELLED, EXPIRED}),
    PAID: frozenset({PROCESSING, CANCELLED, REFUNDED}),
    PAYMENT_FAILED: frozenset({CANCELLED}),  # its stock went back when payment failed
    PROCESSING: frozenset({SHIPPED}),
    SHIPPED: frozenset({DELIVERED}),
}
# The statuses staff move an order through once it is paid.
FULFILMENT = frozenset({PROCESSING, SHIPPED, DELIVERED})
# Until it is processed an order's items are set aside; an order that ends before
# that (failed, cancelled, expired, refunded) puts them back in stock.
_HOLDS_STOCK = frozenset({PENDING_PAYMENT, PAID})
_ENDS_ORDER = frozenset({PAYMENT_FAILED, CANCELLED, EXPIRED, REFUNDED})


@dataclass(frozen=True)
class StatusChange:
    """A committed (or about to be) status change, and what it did to stock."""

    order_id: int
    user_id: int
    previous: str | None  # None for a new order
    status: str
    event_id: int
    at: datetime
    levels: tuple[StockLevel, ...] = ()


async def apply_transition(
    session: AsyncSession, *, order_id: int, target: str, now: datetime
) -> StatusChange | None:
    """Move the order to `target` inside the caller's transaction.

    Returns None when the order already is in `target` (a repeated call changes
    nothing). Raises NotFound for an unknown order and Conflict when the status machine
    forbids the move. Ending an order that holds stock puts its items back.
    """
    while True:  # ends: each pass finds a later status, and the machine has no cycles
        row = (
            await session.execute(select(Order.status, Order.user_id).where(Order.id == order_id))
        ).one_or_none()
        if row is None:
            raise errors.NotFound()
        current, user_id = row
        if current == target:
            return None
        if target not in NEXT_STATUSES.get(current, frozenset()):
            raise errors.Conflict(
                ORDER_STATUS_CONFLICT, params={"current": current, "target": target}
            )
        moved = await session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == current)
            .values(status=target, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            break
    event = OrderEvent(order_id=order_id, status=target, created_at=now)
    session.add(event)
    await session.flush()
    levels: tuple[StockLevel, ...] = ()
    if current in _HOLDS_STOCK and target in _ENDS_ORDER:
        levels = await put_back_stock(session, order_id)
    return StatusChange(order_id, user_id, current, target, event.id, now, levels)


async def announce(
    changes: Iterable[StatusChange | None], *, hub: Hub, cache: ResponseCache
) -> None:
    """Publish `order.status` (and stock changes) for committed changes; call after commit."""
    for change in changes:
        if change is None:
            continue
        await hub.publish(
            ORDERS_CHANNEL,
            {
                "type": "order.status",
                "event_id": change.event_id,
                "order_id": change.order_id,
                "user_id": change.user_id,
                "status": change.status,
                "at": to_utc_text(change.at),
            },
        )
        if change.levels:
            await announce_stock_changes(cache=cache, hub=hub, levels=change.levels)


async def take_stock(session: AsyncSession, items: Sequence[CartItem]) -> tuple[StockLevel, ...]:
    """Decrement each product's stock unless it would go below zero (`items` sorted by
    product id, so concurrent orders lock rows in one order); InsufficientStock otherwise."""
    short = []
    for item in items:
        taken = await session.execute(
            update(Product)
            .where(
                Product.id == item.product_id,
                Product.is_active.is_(True),
                Product.stock >= item.quantity,
            )
            .values(stock=Product.stock - item.quantity)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            short.append(item.product.slug)
    if short:
        raise errors.InsufficientStock(short)
    return await stock_levels(session, [item.product_id for item in items])


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
    return await stock_levels(session, [product_id for product_id, _ in items])


async def stock_levels(session: AsyncSession, product_ids: list[int]) -> tuple[StockLevel, ...]:
    """The products' stock as this transaction sees it (read from the rows, not the
    session's objects, which the guarded updates leave untouched)."""
    rows = await session.execute(
        select(Product.slug, Product.stock).where(Product.id.in_(product_ids)).order_by(Product.id)
    )
    return tuple(StockLevel(slug=slug, stock=stock) for slug, stock in rows)


# --- moving an order after checkout ----------------------------------------------


class Refunds(Protocol):
    """What cancelling a paid order needs from the payment provider."""

    async def refund(self, *, payment_intent_id: str) -> None: ...


async def cancel_order(
    session: AsyncSession,
    *,
    order_id: int,
    user: User,
    refunds: Refunds | None,
    hub: Hub,
    cache: ResponseCache,
    now: datetime | None = None,
) -> Order:
    """Cancel an order of `user` (staff: any order) and return it.

    Idempotent: only the call that moves the order puts its stock back; cancelling a
    cancelled order changes nothing. A paid order's payment is refunded through
    `refunds` after commit (logged when payments are not configured or the request
    fails: the cancellation stands). Raises NotFound or Conflict (processing, shipped...).
    """
    now = now or utcnow()

    async def attempt() -> tuple[Order, StatusChange | None]:
        async with session.begin():
            await require_order(session, order_id, user)
            change = await apply_transition(session, order_id=order_id, target=CANCELLED, now=now)
            return await require_order(session, order_id, user), change

    order, change = await retry_on_deadlock(attempt)
    await announce([change], hub=hub, cache=cache)
    if change is not None and change.previous == PAID:
        await request_refund(refunds, payment_intent_id=order.payment_intent_id, order_id=order.id)
    return order


async def request_refund(
    refunds: Refunds | None, *, payment_intent_id: str | None, **context: Any
) -> None:
    """Ask the payment provider for a full refund; call after commit. Never raises: a
    refund that cannot be requested is logged as an error, to be settled by hand."""
    if refunds is not None and payment_intent_id is not None:
        try:
            await refunds.refund(payment_intent_id=payment_intent_id)
            return
        except errors.PaymentsUnavailable:
            pass
    log.error("refund_not_requested", payment_intent=payment_intent_id, **context)


async def update_status(
    session: AsyncSession,
    *,
    order_id: int,
    status: str,
    hub: Hub,
    cache: ResponseCache,
    now: datetime | None = None,
) -> Order:
    """Staff move a paid order along processing -> shipped -> delivered.

    Setting the current status again changes nothing. Raises NotFound, or Conflict for
    any other move (payment and cancellation have their own endpoints).
    """
    now = now or utcnow()

    async def attempt() -> tuple[Order, StatusChange | None]:
        async with session.begin():
            order = await require_order(session, order_id, None)
            if status not in FULFILMENT and status != order.status:
                raise errors.Conflict(
                    ORDER_STATUS_CONFLICT, params={"current": order.status, "target": status}
                )
            change = await apply_transition(session, order_id=order_id, target=status, now=now)
            return await require_order(session, order_id, None), change

    order, change = await retry_on_deadlock(attempt)
    await announce([change], hub=hub, cache=cache)
    return order


async def expire_unpaid_orders(
    session: AsyncSession,
    *,
    timeout_seconds: int,
    hub: Hub,
    cache: ResponseCache,
    now: datetime | None = None,
) -> int:
    """Expire `pending_payment` orders older than `timeout_seconds`, putting their stock
    back; returns how many this call expired. Safe from several processes at once:
    each order is moved by one of them, and one paid meanwhile is left alone."""
    now = now or utcnow()
    async with session.begin():
        due = (
            await session.scalars(
                select(Order.id)
                .where(
                    Order.status == PENDING_PAYMENT,
                    Order.created_at < now - timedelta(seconds=timeout_seconds),
                )
                .order_by(Order.id)
            )
        ).all()
    expired = 0
    for order_id in due:
        change = await retry_on_deadlock(partial(_expire, session, order_id, now))
        await announce([change], hub=hub, cache=cache)
        expired += change is not None
    return expired


async def _expire(session: AsyncSession, order_id: int, now: datetime) -> StatusChange | None:
    async with session.begin():
        try:
            return await apply_transition(session, order_id=order_id, target=EXPIRED, now=now)
        except errors.Conflict:  # paid or cancelled since it was found
            return None


def can_view_order(user: User, order: Order) -> bool:
    return user.is_staff or order.user_id == user.id


async def require_order(session: AsyncSession, order_id: int, user: User | None) -> Order:
    """The order with its items (read afresh); NotFound when it does not exist or
    `user` may not see it (None: no restriction, for staff-only paths)."""
    order = await session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.items))
        .execution_options(populate_existing=True)
    )
    if order is None or (user is not None and not can_view_order(user, order)):
        raise errors.NotFound()
    return order
