"""/api/v1/payments/stripe/webhook: Stripe's notifications about payments."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.endpoints import RequestHeader, endpoint
from schemas.orders import StripeEventIn
from services import payments

STRIPE_SIGNATURE = RequestHeader(
    "Stripe-Signature",
    "Stripe's signature of the body, made with STRIPE_WEBHOOK_SECRET.",
    required=True,
)


class StripeWebhookHandler(BaseHandler):
    @endpoint(
        "Stripe webhook (signed with STRIPE_WEBHOOK_SECRET)",
        body=StripeEventIn,
        status=200,
        errors=(400, 503),
        headers=(STRIPE_SIGNATURE,),
    )
    async def post(self) -> None:
        payments.verify_webhook_signature(
            payload=self.request.body,
            signature=self.request.headers.get(STRIPE_SIGNATURE.name),
            settings=self.ctx.settings,
        )
        event = self.parse_body(StripeEventIn)  # only once the signature holds
        async with self.ctx.sessionmaker() as session:
            await payments.apply_webhook_event(
                session, publisher=self.ctx.after_commit, event=event, gateway=self.ctx.payments
            )
        self.write_json({"received": True})


routes = [
    (r"/api/v1/payments/stripe/webhook", StripeWebhookHandler, "payments:stripe-webhook"),
]
