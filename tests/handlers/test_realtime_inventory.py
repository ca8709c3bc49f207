"""/ws/inventory with real websocket clients: the snapshot, then every kind of stock change."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.context import AppContext
from models.base import utcnow
from services.orders import expire_unpaid_orders
from tests.client import ApiClient
from tests.factories import log_in
from tests.order_factories import add_product, ordered, shopper

# Fixtures "stripe_api" (the stand-in) and "settings" (Stripe configured against it).
from tests.stripe_stub import (  # noqa: F401
    deliver,
    event,
    payment_intent,
    stripe_api_fixture,
    stripe_settings_fixture,
)
from tests.ws import close_code, open_socket, receive

INVENTORY = "/ws/inventory"


@pytest.mark.parametrize(
    "products",
    [None, "", "Brass Lamp", "brass-lamp,,desk", "a" * 121, ",".join(f"p{n}" for n in range(101))],
    ids=["missing", "empty", "not-a-slug", "empty-item", "too-long", "101-slugs"],
)
async def test_bad_product_lists_close_with_4400(client: ApiClient, products: str | None) -> None:
    async with open_socket(client, INVENTORY, products=products) as socket:
        assert await close_code(socket) == 4400


async def test_the_snapshot_lists_the_products_asked_for_in_order(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, "brass-lamp", stock=3)
    await add_product(ctx, "desk-fan", stock=0)
    await add_product(ctx, "hidden-lamp", stock=9, is_active=False)
    products = "desk-fan,brass-lamp,no-such-thing,hidden-lamp,desk-fan"
    async with open_socket(client, INVENTORY, products=products) as socket:
        snapshot = await receive(socket)
    assert snapshot == {
        "type": "inventory.snapshot",
        "products": [
            {"product": "desk-fan", "stock": 0, "in_stock": False},
            {"product": "brass-lamp", "stock": 3, "in_stock": True},
        ],
    }


async def test_a_hundred_products_may_be_watched(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, "brass-lamp", stock=3)
    products = ",".join(["brass-lamp", *(f"p{n}" for n in range(99))])
    async with open_socket(client, INVENTORY, products=products) as socket:
        assert (await receive(socket))["products"] == [
            {"product": "brass-lamp", "stock": 3, "in_stock": True}
        ]


async def test_every_kind_of_stock_change_is_pushed(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, "brass-lamp", stock=10)
    await add_product(ctx, "desk-fan", stock=10)
    buyer = await shopper(ctx)
    staff = await log_in(client, ctx, "staff@example.com", staff=True)

    async with open_socket(client, INVENTORY, products="brass-lamp") as socket:
        assert (await receive(socket))["type"] == "inventory.snapshot"

        async def next_stock() -> tuple[str, int, bool]:
            message = await receive(socket)
            assert message["type"] == "inventory.changed" and message["at"].endswith("Z")
            return message["product"], message["stock"], message["in_stock"]

        # An order takes stock; a cancellation puts it back.
        first = await ordered(client, buyer.token, {"brass-lamp": 4, "desk-fan": 1})
        assert await next_stock() == ("brass-lamp", 6, True)
        await client.post("orders:cancel", first["id"], token=buyer.token)
        assert await next_stock() == ("brass-lamp", 10, True)

        # A failed payment releases it.
        failed = await ordered(client, buyer.token, {"brass-lamp": 3})
        assert await next_stock() == ("brass-lamp", 7, True)
        payload = event("payment_intent.payment_failed", payment_intent(failed["id"]))
        assert (await deliver(client, payload)).status == 200
        assert await next_stock() == ("brass-lamp", 10, True)

        # An unpaid order that expires releases it.
        await ordered(client, buyer.token, {"brass-lamp": 2})
        assert await next_stock() == ("brass-lamp", 8, True)
        async with ctx.sessionmaker() as session:
            later = utcnow() + timedelta(hours=2)
            assert (
                await expire_unpaid_orders(
                    session, publisher=ctx.after_commit, timeout_seconds=60, now=later
                )
                == 1
            )
        assert await next_stock() == ("brass-lamp", 10, True)

        # Staff set it by hand.
        response = await client.patch(
            "catalog:product", "brass-lamp", json={"stock": 0}, token=staff.token
        )
        assert response.status == 200
        assert await next_stock() == ("brass-lamp", 0, False)

        # A product edit that leaves stock alone, and changes to unwatched products, say nothing.
        await client.patch(
            "catalog:product", "brass-lamp", json={"name": "Lamp"}, token=staff.token
        )
        await client.patch("catalog:product", "desk-fan", json={"stock": 1}, token=staff.token)
        # The next change of brass-lamp is the next message: nothing came in between.
        await client.patch("catalog:product", "brass-lamp", json={"stock": 1}, token=staff.token)
        assert await next_stock() == ("brass-lamp", 1, True)
