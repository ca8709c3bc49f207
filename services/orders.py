"""Orders after checkout: reading them, their timeline and the events a reconnecting
websocket missed, cancellation, staff fulfilment updates and unpaid-order expiry.

Each move is one unit of work (retried after a deadlock) that goes through
`order_status.apply_transition`, and is published after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

import structlog
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core import errors
from core.after_commit import AfterCommit
from core.db import retry_on_deadlock
from core.direct import direct
from core.messages import ORDER_STATUS_CONFLICT
from models.accounts import User
from models.base import utcnow
from models.orders import Order, OrderEvent
from schemas.common import Pagination
from schemas.events import OrderStatusChanged
from schemas.orders import OrderQuery
from services.order_status import (
    CANCELLED,
    EXPIRED,
    FULFILMENT,
    PAID,
    PENDING_PAYMENT,
    StatusChange,
    apply_transition,
    events_of,
)

log = structlog.get_logger(__name__)


# --- reading ---------------------------------------------------------------------------


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


async def get_order(session: AsyncSession, *, order_id: int, user: User) -> Order:
    """An order of `user` (staff: any order) with its items; NotFound otherwise."""
    async with session.begin():
        return await require_order(session, order_id, user)


async def get_order_events(session: AsyncSession, *, order_id: int, user: User) -> list[OrderEvent]:
    """The order's status timeline, oldest first; NotFound as for get_order."""
    async with session.begin():
        await require_order(session, order_id, user)
        events = await session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        )
        return list(events.all())


async def list_orders(
    session: AsyncSession, *, viewer: User, filters: OrderQuery, page: Pagination
) -> tuple[list[Order], int]:
    """One page of orders, newest first, and how many match: a shopper's own, every
    order for staff. Raises PermissionDenied when a shopper filters by `user`."""
    conditions: list[ColumnElement[bool]] = []
    if not viewer.is_staff:
        if filters.user is not None:
            raise errors.PermissionDenied()
        conditions.append(Order.user_id == viewer.id)
    elif filters.user is not None:
        conditions.append(Order.user_id == filters.user)
    if filters.status:
        conditions.append(Order.status.in_(filters.status))
    if filters.placed_after is not None:
        conditions.append(Order.created_at >= filters.placed_after)
    if filters.placed_before is not None:
        conditions.append(Order.created_at < filters.placed_before)
    async with session.begin():
        count = await session.scalar(select(func.count()).select_from(Order).where(*conditions))
        orders = await session.scalars(
            select(Order)
            .where(*conditions)
            .options(selectinload(Order.items))
            .order_by(Order.id.desc())
            .offset(page.offset)
            .limit(page.page_size)
        )
        return list(orders.all()), int(count or 0)


@dataclass(frozen=True)
class Missed:
    """The events a reconnecting listener missed, or `too_many` when they exceed the limit."""

    events: list[OrderStatusChanged]
    too_many: bool


async def events_since(
    session: AsyncSession, *, viewer: User, since: int, order_id: int | None, limit: int
) -> Missed:
    """The stored status events after event `since` that `viewer` may see (own orders,
    staff every order; only `order_id` when given), oldest first, at most `limit`."""
    query = (
        select(OrderEvent, Order.user_id)
        .join(Order, Order.id == OrderEvent.order_id)
        .where(OrderEvent.id > since)
        .order_by(OrderEvent.id)
        .limit(limit + 1)
    )
    if not viewer.is_staff:
        query = query.where(Order.user_id == viewer.id)
    if order_id is not None:
        query = query.where(OrderEvent.order_id == order_id)
    async with session.begin():
        rows = (await session.execute(query)).all()
    if len(rows) > limit:
        return Missed(events=[], too_many=True)
    events = [
        OrderStatusChanged(
            event_id=event.id,
            order_id=event.order_id,
            user_id=user_id,
            status=event.status,
            at=event.created_at,
        )
        for event, user_id in rows
    ]
    return Missed(events=events, too_many=False)


async def may_watch_order(session: AsyncSession, *, viewer: User, order_id: int) -> bool:
    """True when the order exists and `viewer` may see it."""
    async with session.begin():
        owner = await session.scalar(select(Order.user_id).where(Order.id == order_id))
    return owner is not None and (viewer.is_staff or owner == viewer.id)


# --- moving an order after checkout ----------------------------------------------


class Refunds(Protocol):
    """What cancelling a paid order needs from the payment provider."""

    async def refund(self, *, payment_intent_id: str) -> None: ...


async def cancel_order(
    session: AsyncSession,
    *,
    publisher: AfterCommit,
    order_id: int,
    user: User,
    refunds: Refunds | None,
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
            change = await apply_transition(
                await direct(session), order_id=order_id, target=CANCELLED, now=now
            )
            return await require_order(session, order_id, user), change

    order, change = await retry_on_deadlock(attempt)
    await publisher.publish(events_of([change]))
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
    publisher: AfterCommit,
    order_id: int,
    status: str,
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
            change = await apply_transition(
                await direct(session), order_id=order_id, target=status, now=now
            )
            return await require_order(session, order_id, None), change

    order, change = await retry_on_deadlock(attempt)
    await publisher.publish(events_of([change]))
    return order


async def expire_unpaid_orders(
    session: AsyncSession,
    *,
    publisher: AfterCommit,
    timeout_seconds: int,
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
        await publisher.publish(events_of([change]))
        expired += change is not None
    return expired


async def _expire(session: AsyncSession, order_id: int, now: datetime) -> StatusChange | None:
    async with session.begin():
        try:
            return await apply_transition(
                await direct(session), order_id=order_id, target=EXPIRED, now=now
            )
        except errors.Conflict:  # paid or cancelled since it was found
            return None
