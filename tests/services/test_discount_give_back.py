"""A discount use is given back, once, when its order is cancelled, expires or fails
payment; a refunded order keeps it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core.context import AppContext
from models.base import utcnow
from models.catalog import Discount
from services.orders import expire_unpaid_orders
from tests.client import ApiClient
from tests.order_factories import add_discount, add_product, fill_cart, place_order, shoppers

# Fixtures "stripe_api" (the stand-in) and "settings" (Stripe configured against it).
from tests.stripe_stub import (  # noqa: F401
    deliver,
    event,
    payment_intent,
    stripe_api_fixture,
    stripe_settings_fixture,
)


async def uses(ctx: AppContext, code: str = "ONCE") -> int:
    async with ctx.sessionmaker() as session:
        used = await session.scalar(select(Discount.used_count).where(Discount.code == code))
    assert used is not None
    return int(used)


async def order_with_code(client: ApiClient, token: str, code: str = "ONCE") -> dict[str, int]:
    await fill_cart(client, token, {"brass-lamp": 1})
    response = await place_order(client, token, discount_code=code)
    assert response.status == 201, response.body
    order: dict[str, int] = response.json()
    return order


async def test_a_cancelled_order_gives_its_single_use_back_once(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=10)
    await add_discount(ctx, "ONCE", max_uses=1)
    first, second = await shoppers(ctx, 2)
    order = await order_with_code(client, first.token)
    assert await uses(ctx) == 1
    await fill_cart(client, second.token, {"brass-lamp": 1})
    refused = await place_order(client, second.token, discount_code="ONCE")
    assert (refused.status, list(refused.json()["error"]["fields"])) == (400, ["discount_code"])

    for _ in range(2):  # cancelling twice gives it back once
        assert (await client.post("orders:cancel", order["id"], token=first.token)).status == 200
    assert await uses(ctx) == 0
    assert (await place_order(client, second.token, discount_code="ONCE")).status == 201
    assert await uses(ctx) == 1


async def test_an_expired_order_gives_its_use_back(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, stock=10)
    await add_discount(ctx, "ONCE", max_uses=5, used_count=2)
    [buyer] = await shoppers(ctx, 1)
    await order_with_code(client, buyer.token)
    assert await uses(ctx) == 3
    async with ctx.sessionmaker() as session:
        later = utcnow() + timedelta(hours=2)
        assert (
            await expire_unpaid_orders(
                session, publisher=ctx.after_commit, timeout_seconds=60, now=later
            )
            == 1
        )
    assert await uses(ctx) == 2


async def test_a_failed_payment_gives_it_back_and_a_later_cancel_does_not_again(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=10)
    await add_discount(ctx, "ONCE", max_uses=5, used_count=2)
    [buyer] = await shoppers(ctx, 1)
    order = await order_with_code(client, buyer.token)
    failed = event("payment_intent.payment_failed", payment_intent(order["id"]))
    assert (await deliver(client, failed)).status == 200
    assert await uses(ctx) == 2
    assert (await client.post("orders:cancel", order["id"], token=buyer.token)).status == 200
    assert await uses(ctx) == 2


async def test_a_refunded_order_keeps_its_use(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, stock=10)
    await add_discount(ctx, "ONCE", max_uses=5)
    [buyer] = await shoppers(ctx, 1)
    order = await order_with_code(client, buyer.token)
    paid = event("payment_intent.succeeded", payment_intent(order["id"]), event_id="evt_paid")
    assert (await deliver(client, paid)).status == 200
    refund = {
        "id": "ch_1",
        "object": "charge",
        "refunded": True,
        "payment_intent": "pi_test_1",
        "metadata": {"order_id": str(order["id"])},
    }
    refunded = event("charge.refunded", refund, event_id="evt_refund")
    assert (await deliver(client, refunded)).status == 200
    assert await uses(ctx) == 1
