"""PAYMENTS_BACKEND=fake (DEBUG only): paying applies its outcome at once, through the
same path as Stripe's events."""

from __future__ import annotations

import pytest

from core.context import AppContext
from tests.client import ApiClient
from tests.order_factories import order_row, placed_order, stock_of, timeline

pytestmark = pytest.mark.settings(debug=True, payments_backend="fake")


async def test_a_fake_payment_succeeds_at_once_with_the_real_timeline(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx, 2, stock=5)
    response = await client.post("orders:pay", order["id"], token=buyer.token)
    assert response.status == 200, response.body
    assert response.json() == {
        "provider": "fake",
        "client_secret": f"fake_secret_{order['id']}",
        "payment_intent_id": f"fake_pi_{order['id']}",
    }
    assert (await order_row(ctx, order["id"])).status == "paid"
    assert await timeline(ctx, order["id"]) == ["pending_payment", "paid"]
    assert await stock_of(ctx, "brass-lamp") == 3


async def test_a_fake_failure_releases_the_stock_and_paying_again_recovers(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx, 2, stock=5)
    failed = await client.post(
        "orders:pay", order["id"], json={"outcome": "failed"}, token=buyer.token
    )
    assert failed.status == 200
    assert (await order_row(ctx, order["id"])).status == "payment_failed"
    assert await stock_of(ctx, "brass-lamp") == 5
    again = await client.post("orders:pay", order["id"], token=buyer.token)
    assert again.status == 200
    assert (await order_row(ctx, order["id"])).status == "paid"
    assert await stock_of(ctx, "brass-lamp") == 3


async def test_a_paid_fake_order_can_be_cancelled_and_an_unknown_outcome_is_refused(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx, 1, stock=5)
    refused = await client.post(
        "orders:pay", order["id"], json={"outcome": "maybe"}, token=buyer.token
    )
    assert (refused.status, refused.error_code) == (400, "validation_error")
    assert (await order_row(ctx, order["id"])).status == "pending_payment"
    await client.post("orders:pay", order["id"], token=buyer.token)
    cancelled = await client.post("orders:cancel", order["id"], token=buyer.token)
    assert (cancelled.status, cancelled.json()["status"]) == (200, "cancelled")
    assert await stock_of(ctx, "brass-lamp") == 5


async def test_the_document_says_the_pay_body_may_be_left_out_as_it_may(
    client: ApiClient, ctx: AppContext
) -> None:
    document = (await client.get("ops:openapi")).json()
    pay = document["paths"]["/api/v1/orders/{order_id}/pay"]["post"]
    assert pay["requestBody"]["required"] is False
    login = document["paths"]["/api/v1/auth/login"]["post"]
    assert login["requestBody"]["required"] is True
    buyer, order = await placed_order(client, ctx, 1, stock=5)
    assert (await client.post("orders:pay", order["id"], token=buyer.token)).status == 200
