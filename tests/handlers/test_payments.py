"""POST orders/{id}/pay against a local stand-in for Stripe, and refunds on cancellation."""

from __future__ import annotations

import pytest

from core.context import AppContext
from tests.client import ApiClient
from tests.order_factories import (
    add_product,
    order_row,
    ordered,
    placed_order,
    set_order_status,
    shoppers,
    stock_of,
)

# Fixtures "stripe_api" (the stand-in) and "settings" (Stripe configured against it).
from tests.stripe_stub import (  # noqa: F401 (fixtures)
    SECRET_KEY,
    StripeStub,
    stripe_api_fixture,
    stripe_settings_fixture,
)


async def test_paying_creates_a_payment_intent_for_the_order_total(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    buyer, order = await placed_order(client, ctx, 3, price_cents=1999)

    response = await client.post("orders:pay", order["id"], token=buyer.token)

    assert response.status == 200
    assert response.json() == {
        "provider": "stripe",
        "client_secret": "pi_test_1_secret_1",
        "payment_intent_id": "pi_test_1",
    }
    [request] = stripe_api.requests_to("/v1/payment_intents")
    assert request.form == {
        "amount": "5997",
        "currency": "usd",
        "metadata[order_id]": str(order["id"]),
    }
    assert request.headers["Idempotency-Key"].startswith(f"order-{order['id']}-")
    assert request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert (await order_row(ctx, order["id"])).payment_intent_id == "pi_test_1"


async def test_paying_again_reuses_the_idempotency_key_and_gets_the_same_intent(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    buyer, order = await placed_order(client, ctx)
    first = await client.post("orders:pay", order["id"], token=buyer.token)
    second = await client.post("orders:pay", order["id"], token=buyer.token)
    assert first.json() == second.json()
    keys = {r.headers["Idempotency-Key"] for r in stripe_api.requests_to("/v1/payment_intents")}
    assert len(keys) == 1


@pytest.mark.settings(stripe_secret_key=None)
async def test_without_a_stripe_key_paying_is_503_payments_unavailable(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    buyer, order = await placed_order(client, ctx)
    response = await client.post("orders:pay", order["id"], token=buyer.token)
    assert response.status == 503
    assert response.error_code == "payments_unavailable"
    assert stripe_api.requests == []


@pytest.mark.settings(stripe_secret_key=None)
async def test_without_a_backend_paying_someone_elses_or_no_order_is_still_404(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx)
    buyer, stranger = await shoppers(ctx, 2)
    order = await ordered(client, buyer.token, {"brass-lamp": 1})
    for token, order_id in [(stranger.token, order["id"]), (buyer.token, 987654)]:
        response = await client.post("orders:pay", order_id, token=token)
        assert (response.status, response.error_code) == (404, "not_found")
    assert (await order_row(ctx, order["id"])).status == "pending_payment"


@pytest.mark.settings(stripe_secret_key=None)
@pytest.mark.parametrize("status", ["paid", "cancelled", "expired"])
async def test_without_a_backend_an_order_not_awaiting_payment_is_still_409(
    client: ApiClient, ctx: AppContext, status: str
) -> None:
    buyer, order = await placed_order(client, ctx)
    await set_order_status(ctx, order["id"], status)
    response = await client.post("orders:pay", order["id"], token=buyer.token)
    assert (response.status, response.error_code) == (409, "conflict")
    assert (await order_row(ctx, order["id"])).status == status


@pytest.mark.settings(stripe_secret_key=None)
async def test_without_a_backend_paying_a_failed_order_again_is_503_and_changes_nothing(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx, 2, stock=5)
    await set_order_status(ctx, order["id"], "payment_failed")
    response = await client.post("orders:pay", order["id"], token=buyer.token)
    assert (response.status, response.error_code) == (503, "payments_unavailable")
    assert (await order_row(ctx, order["id"])).status == "payment_failed"
    assert await stock_of(ctx, "brass-lamp") == 3  # as set_order_status left it


async def test_when_stripe_fails_paying_is_503_and_the_order_waits(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    buyer, order = await placed_order(client, ctx)
    stripe_api.failing = True
    response = await client.post("orders:pay", order["id"], token=buyer.token)
    assert response.status == 503
    assert response.error_code == "payments_unavailable"
    row = await order_row(ctx, order["id"])
    assert (row.status, row.payment_intent_id) == ("pending_payment", None)


@pytest.mark.parametrize("status", ["paid", "cancelled", "expired"])
async def test_only_an_order_awaiting_payment_can_be_paid(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub, status: str
) -> None:
    buyer, order = await placed_order(client, ctx)
    await set_order_status(ctx, order["id"], status)
    response = await client.post("orders:pay", order["id"], token=buyer.token)
    assert response.status == 409
    assert response.json()["error"]["message"] == "Only an order awaiting payment can be paid."
    assert stripe_api.requests == []


async def test_nobody_pays_for_someone_elses_order(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    await add_product(ctx)
    buyer, stranger = await shoppers(ctx, 2)
    order = await ordered(client, buyer.token, {"brass-lamp": 1})
    response = await client.post("orders:pay", order["id"], token=stranger.token)
    assert response.status == 404
    assert (await client.post("orders:pay", 987654, token=buyer.token)).status == 404
    assert stripe_api.requests == []


async def test_cancelling_a_paid_order_requests_a_refund_once_and_restores_stock(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    buyer, order = await placed_order(client, ctx, 2, stock=5)
    await client.post("orders:pay", order["id"], token=buyer.token)
    await set_order_status(ctx, order["id"], "paid")  # as the webhook would

    first = await client.post("orders:cancel", order["id"], token=buyer.token)
    again = await client.post("orders:cancel", order["id"], token=buyer.token)

    assert (first.status, again.status) == (200, 200)
    [refund] = stripe_api.requests_to("/v1/refunds")
    assert refund.form == {"payment_intent": "pi_test_1"}
    assert refund.headers["Idempotency-Key"] == "refund-pi_test_1"
    assert await stock_of(ctx, "brass-lamp") == 5


async def test_cancelling_an_unpaid_order_requests_no_refund(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    buyer, order = await placed_order(client, ctx)
    await client.post("orders:pay", order["id"], token=buyer.token)
    assert (await client.post("orders:cancel", order["id"], token=buyer.token)).status == 200
    assert stripe_api.requests_to("/v1/refunds") == []


async def test_a_refund_stripe_refuses_leaves_the_order_cancelled(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    buyer, order = await placed_order(client, ctx, 2, stock=5)
    await client.post("orders:pay", order["id"], token=buyer.token)
    await set_order_status(ctx, order["id"], "paid")
    stripe_api.failing = True
    response = await client.post("orders:cancel", order["id"], token=buyer.token)
    assert response.status == 200
    assert response.json()["status"] == "cancelled"
    assert len(stripe_api.requests_to("/v1/refunds")) == 1
