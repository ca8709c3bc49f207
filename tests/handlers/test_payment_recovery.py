"""A failed payment is not a lost sale: paying again, and a success that arrives late,
take the stock back; only a payment whose stock is gone is refunded."""

from __future__ import annotations

import asyncio
from typing import Any

from core.context import AppContext
from models.catalog import Discount
from tests.client import ApiClient
from tests.factories import log_in
from tests.order_factories import (
    add_discount,
    add_product,
    fill_cart,
    order_row,
    place_order,
    shopper,
    stock_of,
    timeline,
)

# Fixtures "stripe_api" (the stand-in) and "settings" (Stripe configured against it).
from tests.stripe_stub import (  # noqa: F401
    StripeStub,
    deliver,
    event,
    payment_intent,
    stripe_api_fixture,
    stripe_settings_fixture,
)


async def declined_order(
    client: ApiClient, ctx: AppContext, quantity: int = 2, stock: int = 5, code: str | None = None
) -> tuple[str, dict[str, Any]]:
    """A shopper's order whose card was declined (its stock went back)."""
    await add_product(ctx, stock=stock)
    buyer = await shopper(ctx)
    await fill_cart(client, buyer.token, {"brass-lamp": quantity})
    response = await place_order(client, buyer.token, discount_code=code)
    assert response.status == 201, response.body
    order: dict[str, Any] = response.json()
    declined = event("payment_intent.payment_failed", payment_intent(order["id"]), "evt_declined")
    assert (await deliver(client, declined)).status == 200
    assert await stock_of(ctx, "brass-lamp") == stock
    return buyer.token, order


async def sell_out(client: ApiClient, ctx: AppContext) -> None:
    staff = await log_in(client, ctx, "staff@example.com", staff=True)
    response = await client.patch(
        "catalog:product", "brass-lamp", json={"stock": 0}, token=staff.token
    )
    assert response.status == 200


async def test_paying_again_after_a_decline_takes_the_stock_back_and_a_success_pays(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    token, order = await declined_order(client, ctx)
    response = await client.post("orders:pay", order["id"], token=token)
    assert response.status == 200
    assert (await order_row(ctx, order["id"])).status == "pending_payment"
    assert await stock_of(ctx, "brass-lamp") == 3

    paid = event("payment_intent.succeeded", payment_intent(order["id"]), "evt_paid")
    assert (await deliver(client, paid)).status == 200
    assert (await order_row(ctx, order["id"])).status == "paid"
    assert await stock_of(ctx, "brass-lamp") == 3
    assert await timeline(ctx, order["id"]) == [
        "pending_payment",
        "payment_failed",
        "pending_payment",
        "paid",
    ]
    assert stripe_api.requests_to("/v1/refunds") == []


async def test_paying_again_when_the_stock_is_gone_is_409_and_changes_nothing(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    token, order = await declined_order(client, ctx)
    await sell_out(client, ctx)
    response = await client.post("orders:pay", order["id"], token=token)
    assert (response.status, response.error_code) == (409, "insufficient_stock")
    assert (await order_row(ctx, order["id"])).status == "payment_failed"
    assert await stock_of(ctx, "brass-lamp") == 0
    assert stripe_api.requests_to("/v1/payment_intents") == []


async def test_a_success_arriving_after_the_decline_takes_the_stock_and_pays(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    token, order = await declined_order(client, ctx)
    late = event("payment_intent.succeeded", payment_intent(order["id"]), "evt_late")
    assert (await deliver(client, late)).status == 200
    assert (await order_row(ctx, order["id"])).status == "paid"
    assert await stock_of(ctx, "brass-lamp") == 3
    assert stripe_api.requests_to("/v1/refunds") == []


async def test_a_late_success_whose_stock_is_gone_is_refunded_once(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    token, order = await declined_order(client, ctx)
    await sell_out(client, ctx)
    late = event("payment_intent.succeeded", payment_intent(order["id"], "pi_late"), "evt_late")
    for _ in range(2):  # a redelivery changes nothing more
        assert (await deliver(client, late)).status == 200
    assert (await order_row(ctx, order["id"])).status == "payment_failed"
    assert await stock_of(ctx, "brass-lamp") == 0
    [refund] = stripe_api.requests_to("/v1/refunds")
    assert refund.form == {"payment_intent": "pi_late"}


async def test_a_retry_racing_a_late_success_takes_the_stock_once(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    token, order = await declined_order(client, ctx, quantity=2, stock=5)
    late = event("payment_intent.succeeded", payment_intent(order["id"]), "evt_late")
    retried, delivered = await asyncio.gather(
        client.post("orders:pay", order["id"], token=token), deliver(client, late)
    )
    assert delivered.status == 200
    assert retried.status in (200, 409)  # 409 when the success came first: already paid
    assert (await order_row(ctx, order["id"])).status == "paid"
    assert await stock_of(ctx, "brass-lamp") == 3
    assert stripe_api.requests_to("/v1/refunds") == []


async def test_the_discount_use_comes_back_with_the_order(
    client: ApiClient, ctx: AppContext, stripe_api: StripeStub
) -> None:
    discount = await add_discount(ctx, "ONCE", max_uses=1)
    token, order = await declined_order(client, ctx, code="ONCE")
    assert await used(ctx, discount.id) == 0
    assert (await client.post("orders:pay", order["id"], token=token)).status == 200
    assert await used(ctx, discount.id) == 1


async def used(ctx: AppContext, discount_id: int) -> int:
    async with ctx.sessionmaker() as session:
        return (await session.get_one(Discount, discount_id, populate_existing=True)).used_count
