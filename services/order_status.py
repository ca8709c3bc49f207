"""The order status machine: which moves exist and the one function that makes them.

`apply_transition` moves an order with a guarded UPDATE, only from the status it was
read in, so of several concurrent callers exactly one applies a change (and puts the
stock back); the others find the new status. Every status an order takes, its first
included, is recorded by `record_event`, and the `StatusChange` it returns says what
to publish once the transaction has committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from core import errors
from core.direct import Direct
from core.messages import ORDER_STATUS_CONFLICT
from schemas.events import Event, OrderStatusChanged
from services.inventory import stock_events
from store import discounts, orders, stock
from store.stock import StockLevel

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
    # Paying again, or a payment that succeeds late, takes the stock back (docs/api.md, Orders).
    PAYMENT_FAILED: frozenset({PENDING_PAYMENT, PAID, CANCELLED}),
    PROCESSING: frozenset({SHIPPED}),
    SHIPPED: frozenset({DELIVERED}),
}
# The statuses staff move an order through once it is paid.
FULFILMENT = frozenset({PROCESSING, SHIPPED, DELIVERED})
# Until it is processed an order's items are set aside; an order that ends before
# that (failed, cancelled, expired, refunded) puts them back in stock.
_HOLDS_STOCK = frozenset({PENDING_PAYMENT, PAID})
_ENDS_ORDER = frozenset({PAYMENT_FAILED, CANCELLED, EXPIRED, REFUNDED})
# A discount use counts while the order may still be paid for or kept; an order that
# is cancelled, expires or fails payment gives it back (a refunded one keeps it).
_GIVES_BACK_DISCOUNT = frozenset({PAYMENT_FAILED, CANCELLED, EXPIRED})
# Statuses that hold stock and the discount use again after a failed payment.
_RECOVERS_ORDER = frozenset({PENDING_PAYMENT, PAID})


@dataclass(frozen=True)
class StatusChange:
    """A status change made in a transaction, and what it did to stock."""

    order_id: int
    user_id: int
    previous: str | None  # None for a new order
    status: str
    event_id: int
    at: datetime
    levels: tuple[StockLevel, ...] = ()

    def events(self) -> list[Event]:
        """What to publish once the change has committed."""
        changed = OrderStatusChanged(
            event_id=self.event_id,
            order_id=self.order_id,
            user_id=self.user_id,
            status=self.status,
            at=self.at,
        )
        return [changed, *stock_events(self.levels, self.at)]


def events_of(changes: Iterable[StatusChange | None]) -> list[Event]:
    """The events of every change that happened (None: nothing changed)."""
    return [event for change in changes if change is not None for event in change.events()]


async def record_event(
    db: Direct,
    *,
    order_id: int,
    user_id: int,
    previous: str | None,
    status: str,
    now: datetime,
    levels: tuple[StockLevel, ...] = (),
) -> StatusChange:
    """Add the order's timeline row for `status` (the order's row already says it)."""
    event_id = await orders.add_event(db, order_id=order_id, status=status, now=now)
    return StatusChange(order_id, user_id, previous, status, event_id, now, levels)


async def apply_transition(
    db: Direct, *, order_id: int, target: str, now: datetime
) -> StatusChange | None:
    """Move the order to `target` inside the caller's transaction.

    Returns None when the order already is in `target` (a repeated call changes
    nothing). Raises NotFound for an unknown order and Conflict when the status machine
    forbids the move. Ending an order that holds stock puts its items back; cancelling,
    expiring or failing payment gives its discount use back. Leaving `payment_failed`
    for `pending_payment` or `paid` takes both again, or raises InsufficientStock (the
    caller's transaction must then roll back).
    """
    while True:  # ends: each pass finds a later status, and the machine has no cycles
        row = await orders.status_of(db, order_id=order_id)
        if row is None:
            raise errors.NotFound()
        current, user_id, discount_id = row
        if current == target:
            return None
        if target not in NEXT_STATUSES.get(current, frozenset()):
            raise errors.Conflict(
                ORDER_STATUS_CONFLICT, params={"current": current, "target": target}
            )
        if await orders.move_status(db, order_id=order_id, current=current, target=target, now=now):
            break
    levels: tuple[StockLevel, ...] = ()
    if current in _HOLDS_STOCK and target in _ENDS_ORDER:
        levels = await stock.put_back_stock(db, order_id=order_id, now=now)
    if discount_id is not None and current in _HOLDS_STOCK and target in _GIVES_BACK_DISCOUNT:
        await discounts.uncount_use(db, discount_id=discount_id, now=now)
    if current == PAYMENT_FAILED and target in _RECOVERS_ORDER:
        levels = await stock.retake_stock(db, order_id=order_id, now=now)
        if discount_id is not None:
            await discounts.count_use_past_limit(db, discount_id=discount_id, now=now)
    return await record_event(
        db,
        order_id=order_id,
        user_id=user_id,
        previous=current,
        status=target,
        now=now,
        levels=levels,
    )
