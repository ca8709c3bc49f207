"""The Stripe webhook: signatures checked with the SDK, each event applied once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import stripe
import structlog

from core.context import AppContext
from models.orders import StripeEvent
from tests.client import ApiClient
from tests.factories import count_rows
from tests.order_factories import (
    order_row,
    placed_order,
    set_order_status,
    stock_of,
    timeline,
)

# Fixtures "stripe_api" (the stand-in) and "settings" (Stripe configured against it).
from tests.stripe_stub import (  # noqa: F401
    WEBHOOK_SECRET,
    StripeStub,
    deliver,
    event,
    payment_intent,
    signature,
    stripe_api_fixture,
    stripe_settings_fixture,
)


async def new_order(client: ApiClient, ctx: AppContext, quantity: int = 2) -> dict[str, Any]:
    _, order = await placed_order(client, ctx, quantity)
    return order


def test_the_sdk_accepts_the_signature_the_tests_build() -> None:
    payload = event("payment_intent.succeeded", payment_intent(1))
    verified = stripe.Webhook.construct_event(payload, signature(payload), WEBHOOK_SECRET)
    assert (verified.id, verified.type) == ("evt_test_1", "payment_intent.succeeded")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, signature(payload, "whsec_other"), WEBHOOK_SECRET)


async def test_a_signed_payment_success_marks_the_order_paid(
    client: ApiClient, ctx: AppContext
) -> None:
    order = await new_order(client, ctx)
    response = await deliver(client, event("payment_intent.succeeded", payment_intent(order["id"])))
    assert response.status == 200
    assert (await order_row(ctx, order["id"])).status == "paid"
    assert await timeline(ctx, order["id"]) == ["pending_payment", "paid"]
    assert await stock_of(ctx, "brass-lamp") == 8


@pytest.mark.parametrize(
    "sign",
    [
        lambda payload: "",
        lambda payload: "t=1,v1=deadbeef",
        lambda payload: signature("something else"),
        lambda payload: signature(payload, secret="whsec_someone_else"),
        lambda payload: signature(payload, timestamp=1_000_000_000),  # beyond the tolerance
    ],
    ids=["empty", "garbage", "other-payload", "other-secret", "stale"],
)
async def test_a_bad_signature_is_400_and_changes_nothing(
    client: ApiClient, ctx: AppContext, sign: Callable[[str], str]
) -> None:
    order = await new_order(client, ctx)
    payload = event("payment_intent.succeeded", payment_intent(order["id"]))
    response = await deliver(client, payload, sign(payload))
    assert response.status == 400
    assert response.json()["error"] == {
        "code": "validation_error",
        "message": "The Stripe signature is missing or invalid.",
    }
    assert (await order_row(ctx, order["id"])).status == "pending_payment"
    assert await count_rows(ctx, StripeEvent) == 0


async def test_a_request_without_the_signature_header_is_400(client: ApiClient) -> None:
    payload = event("payment_intent.succeeded", payment_intent(1))
    response = await client.post("payments:stripe-webhook", body=payload)
    assert response.status == 400


async def test_a_signed_body_that_is_not_json_is_400(client: ApiClient) -> None:
    assert (await deliver(client, "not json at all")).status == 400


async def test_a_replayed_event_is_a_no_op(client: ApiClient, ctx: AppContext) -> None:
    order = await new_order(client, ctx)
    payload = event("payment_intent.payment_failed", payment_intent(order["id"]), "evt_once")
    first = await deliver(client, payload)
    await set_order_status(ctx, order["id"], "pending_payment")  # so a second apply would show
    again = await deliver(client, payload)
    assert (first.status, again.status) == (200, 200)
    assert await timeline(ctx, order["id"]) == ["pending_payment", "payment_failed"]
    assert await stock_of(ctx, "brass-lamp") == 10  # released once, not twice
    assert await count_rows(ctx, StripeEvent) == 1


async def test_the_same_event_delivered_concurrently_applies_once(
    client: ApiClient, ctx: AppContext
) -> None:
    order = await new_order(client, ctx)
    payload = event("payment_intent.canceled", payment_intent(order["id"]), "evt_race")
    responses = await asyncio.gather(*(deliver(client, payload) for _ in range(5)))
    assert {response.status for response in responses} == {200}
    assert await timeline(ctx, order["id"]) == ["pending_payment", "payment_failed"]
    assert await stock_of(ctx, "brass-lamp") == 10


async def test_an_unhandled_event_type_is_logged_with_its_type_and_id_and_answered_200(
    client: ApiClient, ctx: AppContext
) -> None:
    payload = event("customer.created", {"id": "cus_1", "object": "customer"}, "evt_customer")
    with structlog.testing.capture_logs() as logs:
        response = await deliver(client, payload)
    assert response.status == 200
    [warning] = [entry for entry in logs if entry["event"] == "stripe_event_unhandled"]
    assert warning["log_level"] == "warning"
    assert (warning["event_type"], warning["event_id"]) == ("customer.created", "evt_customer")


@pytest.mark.parametrize("event_type", ["payment_intent.payment_failed", "payment_intent.canceled"])
async def test_a_failed_or_canceled_payment_releases_the_stock(
    client: ApiClient, ctx: AppContext, event_type: str
) -> None:
    order = await new_order(client, ctx, quantity=3)
    assert await stock_of(ctx, "brass-lamp") == 7
    response = await deliver(client, event(event_type, payment_intent(order["id"])))
    assert response.status == 200
    assert (await order_row(ctx, order["id"])).status == "payment_failed"
    assert await stock_of(ctx, "brass-lamp") == 10


async def test_a_full_refund_marks_a_paid_order_refunded_and_restocks(
    client: ApiClient, ctx: AppContext
) -> None:
    order = await new_order(client, ctx)
    await set_order_status(ctx, order["id"], "paid")
    charge = {
        "id": "ch_1",
        "object": "charge",
        "refunded": True,
        "metadata": {"order_id": str(order["id"])},
    }
    assert (await deliver(client, event("charge.refunded", charge))).status == 200
    assert (await order_row(ctx, order["id"])).status == "refunded"
    assert await stock_of(ctx, "brass-lamp") == 10


async def test_a_refunded_charge_without_metadata_is_matched_by_its_payment_intent(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx)
    payment = (await client.post("orders:pay", order["id"], token=buyer.token)).json()
    await set_order_status(ctx, order["id"], "paid")
    charge = {
        "id": "ch_2",
        "object": "charge",
        "refunded": True,
        "payment_intent": payment["payment_intent_id"],
        "metadata": {},
    }
    assert (await deliver(client, event("charge.refunded", charge))).status == 200
    assert (await order_row(ctx, order["id"])).status == "refunded"


async def test_a_partial_refund_leaves_the_order_as_it_is(
    client: ApiClient, ctx: AppContext
) -> None:
    order = await new_order(client, ctx)
    await set_order_status(ctx, order["id"], "paid")
    charge = {"id": "ch_3", "refunded": False, "metadata": {"order_id": str(order["id"])}}
    assert (await deliver(client, event("charge.refunded", charge))).status == 200
    assert (await order_row(ctx, order["id"])).status == "paid"


async def test_an_event_for_an_unknown_order_is_recorded_and_answered_200(
    client: ApiClient, ctx: AppContext
) -> None:
    response = await deliver(client, event("payment_intent.succeeded", payment_intent(424242)))
    assert response.status == 200
    assert await count_rows(ctx, StripeEvent) == 1


async def test_a_payment_for_an_expired_order_is_refunded(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    order = await new_order(client, ctx)
    await set_order_status(ctx, order["id"], "expired")
    payload = event("payment_intent.succeeded", payment_intent(order["id"], "pi_late"))
    response = await deliver(client, payload)
    assert response.status == 200
    assert (await order_row(ctx, order["id"])).status == "expired"
    [refund] = stripe_api.requests_to("/v1/refunds")
    assert refund.form == {"payment_intent": "pi_late"}


async def test_a_success_for_an_order_already_paid_is_not_refunded(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    order = await new_order(client, ctx)
    await set_order_status(ctx, order["id"], "paid")
    response = await deliver(client, event("payment_intent.succeeded", payment_intent(order["id"])))
    assert response.status == 200
    assert stripe_api.requests_to("/v1/refunds") == []


async def test_an_order_paid_only_through_the_webhook_is_refunded_when_cancelled(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    buyer, order = await placed_order(client, ctx, 2, stock=5)
    payload = event("payment_intent.succeeded", payment_intent(order["id"], "pi_elsewhere"))
    assert (await deliver(client, payload)).status == 200

    response = await client.post("orders:cancel", order["id"], token=buyer.token)

    assert (response.status, response.json()["status"]) == (200, "cancelled")
    [refund] = stripe_api.requests_to("/v1/refunds")
    assert refund.form == {"payment_intent": "pi_elsewhere"}
    assert await stock_of(ctx, "brass-lamp") == 5


async def test_a_success_keeps_the_payment_intent_the_order_already_has(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    buyer, order = await placed_order(client, ctx)
    assert (await client.post("orders:pay", order["id"], token=buyer.token)).status == 200
    payload = event("payment_intent.succeeded", payment_intent(order["id"], "pi_other"))
    assert (await deliver(client, payload)).status == 200
    row = await order_row(ctx, order["id"])
    assert (row.status, row.payment_intent_id) == ("paid", "pi_test_1")


@pytest.mark.settings(stripe_webhook_secret=None)
async def test_without_a_webhook_secret_the_webhook_is_503(
    client: ApiClient, ctx: AppContext
) -> None:
    order = await new_order(client, ctx)
    response = await deliver(client, event("payment_intent.succeeded", payment_intent(order["id"])))
    assert response.status == 503
    assert response.error_code == "payments_unavailable"
    assert (await order_row(ctx, order["id"])).status == "pending_payment"
