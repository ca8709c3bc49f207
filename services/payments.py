"""Stripe payments: PaymentIntents for orders, refunds, and the webhook that moves orders.

The SDK's async client (httpx) is built once per process; no Stripe call ever runs
inside a database transaction. A webhook event is recorded (its id is the primary key
of `stripe_events`) in the same transaction as the change it causes, so a redelivery,
even one racing the first, applies nothing twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import stripe
import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import errors
from core.after_commit import AfterCommit
from core.config import Settings
from core.db import retry_on_deadlock
from core.direct import direct
from core.messages import ORDER_NOT_PAYABLE, STRIPE_SIGNATURE_INVALID
from core.payments import FakeGateway, PaymentFor, PaymentGateway, PaymentStart
from models.accounts import User
from models.base import utcnow
from models.orders import Order, StripeEvent
from schemas.orders import StripeEventDataIn, StripeEventIn, StripeObjectIn
from services import order_status
from services.orders import request_refund

log = structlog.get_logger(__name__)

# An order can be paid while it awaits payment, and again after a payment failed.
_PAYABLE = frozenset({order_status.PENDING_PAYMENT, order_status.PAYMENT_FAILED})
# Webhook event type -> the order status it leads to.
EVENT_STATUSES = {
    "payment_intent.succeeded": order_status.PAID,
    "payment_intent.payment_failed": order_status.PAYMENT_FAILED,
    "payment_intent.canceled": order_status.PAYMENT_FAILED,
    "charge.refunded": order_status.REFUNDED,
}


# The outcome a fake payment is told to have -> the Stripe event it stands for.
FAKE_OUTCOMES = {
    "succeeded": "payment_intent.succeeded",
    "failed": "payment_intent.payment_failed",
}


async def start_payment(
    session: AsyncSession,
    *,
    publisher: AfterCommit,
    order_id: int,
    user: User,
    gateway: PaymentGateway | None,
    fake_outcome: str = "succeeded",
) -> PaymentStart:
    """Create (or fetch again) the PaymentIntent of the user's own pending order. An
    order whose payment failed is paying again: it first takes its stock (and discount
    use) back and returns to `pending_payment`. With the fake gateway, `fake_outcome`
    (a key of FAKE_OUTCOMES) is then applied as its Stripe event would be.

    Raises, in this order: NotFound (not the user's order), Conflict (the order is not
    awaiting payment), PaymentsUnavailable (no gateway: nothing changes),
    InsufficientStock (paying again, and the stock is gone: nothing changes),
    PaymentsUnavailable (Stripe failing).
    """

    async def attempt() -> tuple[Order, order_status.StatusChange | None]:
        async with session.begin():
            order = await session.get(Order, order_id, populate_existing=True)
            if order is None or order.user_id != user.id:
                raise errors.NotFound()
            if order.status not in _PAYABLE:
                raise errors.Conflict(ORDER_NOT_PAYABLE)
            # Decided after the order, so no backend never hides a 404 or a 409, and
            # before the move, so a failed order keeps its stock released.
            if gateway is None:
                raise errors.PaymentsUnavailable()
            change = await order_status.apply_transition(
                await direct(session),
                order_id=order_id,
                target=order_status.PENDING_PAYMENT,
                now=utcnow(),
            )
            return order, change

    order, change = await retry_on_deadlock(attempt)
    # attempt() raised PaymentsUnavailable otherwise.
    assert gateway is not None  # nosec B101
    await publisher.publish(order_status.events_of([change]))
    payment = await gateway.create_payment_intent(
        PaymentFor(order.id, order.total_cents, order.currency, order.created_at)
    )
    async with session.begin():
        await session.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(payment_intent_id=payment.payment_intent_id)
            .execution_options(synchronize_session=False)
        )
    if isinstance(gateway, FakeGateway):
        paid = StripeObjectIn(id=payment.payment_intent_id, metadata={"order_id": str(order_id)})
        event = StripeEventIn(
            id=f"fake_evt_{uuid.uuid4().hex}",
            type=FAKE_OUTCOMES[fake_outcome],
            data=StripeEventDataIn(object=paid),
        )
        await apply_webhook_event(session, event=event, gateway=gateway, publisher=publisher)
    return payment


def verify_webhook_signature(*, payload: bytes, signature: str | None, settings: Settings) -> None:
    """Check a webhook delivery's Stripe-Signature before anything is read from its body.

    Raises PaymentsUnavailable without STRIPE_WEBHOOK_SECRET and ValidationFailed for
    a missing, bad or stale signature.
    """
    if settings.stripe_webhook_secret is None:
        raise errors.PaymentsUnavailable()
    try:
        stripe.WebhookSignature.verify_header(
            payload,
            signature,
            settings.stripe_webhook_secret.get_secret_value(),
            tolerance=stripe.Webhook.DEFAULT_TOLERANCE,
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as error:
        raise errors.ValidationFailed(STRIPE_SIGNATURE_INVALID) from error


async def apply_webhook_event(
    session: AsyncSession,
    *,
    publisher: AfterCommit,
    event: StripeEventIn,
    gateway: PaymentGateway | None,
    now: datetime | None = None,
) -> None:
    """Apply a verified webhook event once (see `verify_webhook_signature`).

    Unhandled event types, replays and events that no longer apply are logged and
    accepted.
    """
    event_id, event_type = event.id, event.type
    target = EVENT_STATUSES.get(event_type)
    if target is None:
        log.warning("stripe_event_unhandled", event_type=event_type, event_id=event_id)
        return
    payment = event.data.object
    if event_type == "charge.refunded" and not payment.refunded:
        log.info("stripe_partial_refund_ignored", event_id=event_id)
        return
    now = now or utcnow()

    async def apply() -> tuple[order_status.StatusChange | None, bool]:
        """(the change, whether the order is past the point this event could move it)"""
        async with session.begin():
            session.add(StripeEvent(id=event_id, type=event_type, received_at=now))
            await session.flush()  # a replayed event id fails here, before any change
            order_id = await _order_id(session, payment)
            try:
                # A savepoint: a late success whose stock is gone changes nothing but
                # still records the event (and its refund is asked for once).
                async with session.begin_nested():
                    change = await order_status.apply_transition(
                        await direct(session), order_id=order_id, target=target, now=now
                    )
            except errors.InsufficientStock:
                log.warning("stripe_payment_stock_gone", event_id=event_id, order_id=order_id)
                return None, True
            except errors.NotFound:
                log.warning("stripe_event_without_order", event_id=event_id, event_type=event_type)
                return None, False
            except errors.Conflict:
                log.warning(
                    "stripe_event_too_late",
                    event_id=event_id,
                    event_type=event_type,
                    order_id=order_id,
                )
                return None, True
            if target == order_status.PAID and payment.id is not None:
                await _keep_payment_intent(session, order_id, payment.id)
            return change, False

    try:
        change, too_late = await retry_on_deadlock(apply)
    except IntegrityError:  # the event id is the only unique key `apply` inserts
        log.info("stripe_event_replayed", event_id=event_id, event_type=event_type)
        return
    await publisher.publish(order_status.events_of([change]))
    if too_late and target == order_status.PAID:
        # The money arrived for an order that can no longer be fulfilled (expired or
        # cancelled, or failed and its stock sold since): the payment goes back.
        await request_refund(gateway, payment_intent_id=payment.id, event_id=event_id)


async def _keep_payment_intent(session: AsyncSession, order_id: int, intent_id: str) -> None:
    """Record the PaymentIntent of a paid order that has none yet (one paid without
    `pay` creating it here): cancelling the order later refunds it by that id."""
    await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.payment_intent_id.is_(None))
        .values(payment_intent_id=intent_id)
        .execution_options(synchronize_session=False)
    )


async def _order_id(session: AsyncSession, payment: StripeObjectIn) -> int:
    """From `metadata.order_id`; a charge without it is matched by its PaymentIntent.
    0 (no such order) when neither leads anywhere."""
    order_id = payment.metadata.get("order_id", "")
    # At most 18 digits, like every id the API takes: longer ones name no order.
    if order_id.isascii() and order_id.isdigit() and len(order_id) <= 18:
        return int(order_id)
    if payment.payment_intent is None:
        return 0
    found = await session.scalar(
        select(Order.id).where(Order.payment_intent_id == payment.payment_intent)
    )
    return found or 0
