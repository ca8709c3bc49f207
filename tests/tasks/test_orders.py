"""The unpaid-order expiry task (also `python -m app expire-orders`)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from core.context import AppContext
from models.orders import Order
from schemas.events import INVENTORY_CHANNEL, ORDERS_CHANNEL
from services.orders import expire_unpaid_orders
from tasks.orders import expire_orders
from tests.client import ApiClient
from tests.events import hear
from tests.order_factories import (
    add_product,
    ago,
    order_row,
    ordered,
    placed_order,
    set_order_status,
    shoppers,
    stock_of,
    timeline,
)
from tests.test_cli import run_cli


async def age(ctx: AppContext, order_id: int, **delta: float) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Order).where(Order.id == order_id).values(created_at=ago(**delta))
        )


async def test_an_order_unpaid_past_the_timeout_expires_and_releases_its_stock(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx, 4, stock=10)
    await age(ctx, order["id"], seconds=ctx.settings.order_payment_timeout + 5)

    assert await expire_orders(ctx) == {"expired": 1}

    assert (await order_row(ctx, order["id"])).status == "expired"
    assert await timeline(ctx, order["id"]) == ["pending_payment", "expired"]
    assert await stock_of(ctx, "brass-lamp") == 10
    assert await expire_orders(ctx) == {"expired": 0}


async def test_recent_and_paid_orders_are_left_alone(client: ApiClient, ctx: AppContext) -> None:
    buyer, recent = await placed_order(client, ctx, 1, stock=10)
    paid = await ordered(client, buyer.token, {"brass-lamp": 2})
    await age(ctx, recent["id"], seconds=ctx.settings.order_payment_timeout - 60)
    await age(ctx, paid["id"], hours=5)
    await set_order_status(ctx, paid["id"], "paid")

    assert await expire_orders(ctx) == {"expired": 0}
    assert (await order_row(ctx, recent["id"])).status == "pending_payment"
    assert (await order_row(ctx, paid["id"])).status == "paid"
    assert await stock_of(ctx, "brass-lamp") == 7


async def test_expiry_announces_the_status_and_the_stock(
    client: ApiClient, ctx: AppContext
) -> None:
    buyer, order = await placed_order(client, ctx, 3, stock=3)
    await age(ctx, order["id"], hours=1)
    heard = hear(ctx, ORDERS_CHANNEL, INVENTORY_CHANNEL)
    await expire_orders(ctx)
    assert [(m["type"], m.get("status"), m.get("stock")) for m in heard] == [
        ("order.status", "expired", None),
        ("inventory.changed", None, 3),
    ]


async def test_two_runs_at_once_expire_each_order_once(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx, stock=50)
    buyers = await shoppers(ctx, 6)
    orders = [await ordered(client, buyer.token, {"brass-lamp": 5}) for buyer in buyers]
    for order in orders:
        await age(ctx, order["id"], hours=2)
    assert await stock_of(ctx, "brass-lamp") == 20

    async def run() -> int:
        async with ctx.sessionmaker() as session:
            return await expire_unpaid_orders(
                session, publisher=ctx.after_commit, timeout_seconds=60
            )

    results = await asyncio.gather(run(), run())

    assert sum(results) == 6
    assert await stock_of(ctx, "brass-lamp") == 50
    for order in orders:
        assert await timeline(ctx, order["id"]) == ["pending_payment", "expired"]


@pytest.mark.subprocess
async def test_expire_orders_runs_from_the_command_line(client: ApiClient, ctx: AppContext) -> None:
    buyer, order = await placed_order(client, ctx, 1, stock=10)
    await age(ctx, order["id"], days=1)
    result = run_cli(ctx, "expire-orders")
    assert result.returncode == 0, result.stderr
    assert "'expired': 1" in result.stdout
    assert (await order_row(ctx, order["id"])).status == "expired"
