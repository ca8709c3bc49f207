"""Payment gateways: the Stripe adapter (the official SDK's async client) and the fake
one for local use. They speak to the provider only; what a payment does to an order is
services/payments.py's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import stripe
import structlog

from core import errors
from core.config import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PaymentFor:
    """What a PaymentIntent is asked for: an order's id, amount and creation time."""

    order_id: int
    amount_cents: int
    currency: str
    created_at: datetime


@dataclass(frozen=True)
class PaymentStart:
    provider: str
    client_secret: str
    payment_intent_id: str


class StripeGateway:
    """The process's Stripe client. Stripe errors surface as PaymentsUnavailable."""

    provider = "stripe"

    def __init__(self, secret_key: str, api_base: str | None = None) -> None:
        self._http = stripe.HTTPXClient()
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else {},
            http_client=self._http,
        )

    async def create_payment_intent(self, order: PaymentFor) -> PaymentStart:
        """A PaymentIntent for the order's total. Asking again for the same order
        returns the same intent (Stripe keeps idempotency keys for a day)."""
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params={
                    "amount": order.amount_cents,
                    "currency": order.currency.lower(),
                    "metadata": {"order_id": str(order.order_id)},
                },
                # The creation time keeps keys unique across databases that reuse ids.
                options={
                    "idempotency_key": f"order-{order.order_id}-{order.created_at:%Y%m%d%H%M%S%f}"
                },
            )
        except stripe.StripeError as error:
            log.error("stripe_request_failed", action="payment_intent", error=str(error))
            raise errors.PaymentsUnavailable() from error
        if intent.client_secret is None:
            raise errors.PaymentsUnavailable()
        return PaymentStart(
            provider=self.provider,
            client_secret=intent.client_secret,
            payment_intent_id=intent.id,
        )

    async def refund(self, *, payment_intent_id: str) -> None:
        """Refund the whole payment; asking twice refunds once."""
        try:
            await self._client.v1.refunds.create_async(
                params={"payment_intent": payment_intent_id},
                options={"idempotency_key": f"refund-{payment_intent_id}"},
            )
        except stripe.StripeError as error:
            log.error("stripe_request_failed", action="refund", error=str(error))
            raise errors.PaymentsUnavailable() from error

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK


class FakeGateway:
    """PAYMENTS_BACKEND=fake, for trying the whole order lifecycle locally (DEBUG only):
    no money moves, and paying applies its outcome at once, as the matching Stripe
    event would (`start_payment`), so timelines, mails and websocket events are real."""

    provider = "fake"

    async def create_payment_intent(self, order: PaymentFor) -> PaymentStart:
        return PaymentStart(
            provider=self.provider,
            client_secret=f"fake_secret_{order.order_id}",
            payment_intent_id=f"fake_pi_{order.order_id}",
        )

    async def refund(self, *, payment_intent_id: str) -> None:
        log.info("fake_refund", payment_intent=payment_intent_id)

    async def close(self) -> None:
        """Nothing to close."""


PaymentGateway = StripeGateway | FakeGateway


def make_payment_gateway(settings: Settings) -> PaymentGateway | None:
    """The PAYMENTS_BACKEND's gateway, or None when payments are not configured."""
    if settings.payments_backend == "fake":
        return FakeGateway()
    if settings.payments_backend == "stripe" and settings.stripe_secret_key is not None:
        key = settings.stripe_secret_key.get_secret_value()
        return StripeGateway(key, settings.stripe_api_base)
    return None
