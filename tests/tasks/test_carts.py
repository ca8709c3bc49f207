"""The inactive-cart purge task (also `python -m app purge-carts`)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from core.context import AppContext
from models.orders import Cart, CartItem
from services.cart import purge_inactive_carts
from tasks.carts import purge_carts
from tests.client import ApiClient
from tests.factories import count_rows
from tests.order_factories import add_product, ago, fill_cart, shopper, shoppers
from tests.test_cli import run_cli


async def make_stale(ctx: AppContext, user_id: int, days: float) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Cart).where(Cart.user_id == user_id).values(updated_at=ago(days=days))
        )


async def test_carts_untouched_past_the_limit_go_with_their_items(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx)
    stale, fresh = await shoppers(ctx, 2)
    await fill_cart(client, stale.token, {"brass-lamp": 2})
    await fill_cart(client, fresh.token, {"brass-lamp": 1})
    await make_stale(ctx, stale.user.id, ctx.settings.cart_inactive_days + 1)
    await make_stale(ctx, fresh.user.id, ctx.settings.cart_inactive_days - 1)

    assert await purge_carts(ctx) == {"deleted": 1}

    assert (await client.get("cart:detail", token=stale.token)).json()["items"] == []
    assert len((await client.get("cart:detail", token=fresh.token)).json()["items"]) == 1
    assert await count_rows(ctx, CartItem) == 1
    assert await purge_carts(ctx) == {"deleted": 0}


async def test_changing_a_cart_keeps_it_alive(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx)
    buyer = await shopper(ctx)
    await fill_cart(client, buyer.token, {"brass-lamp": 1})
    await make_stale(ctx, buyer.user.id, ctx.settings.cart_inactive_days + 5)
    await client.patch("cart:item", "brass-lamp", json={"quantity": 3}, token=buyer.token)
    assert await purge_carts(ctx) == {"deleted": 0}


async def test_two_purges_at_once_delete_each_cart_once(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx)
    buyers = await shoppers(ctx, 5)
    for buyer in buyers:
        await fill_cart(client, buyer.token, {"brass-lamp": 1})
        await make_stale(ctx, buyer.user.id, 90)

    async def run() -> int:
        async with ctx.sessionmaker() as session:
            return await purge_inactive_carts(session, inactive_days=30)

    assert sum(await asyncio.gather(run(), run())) == 5
    assert await count_rows(ctx, Cart) == 0
    assert await count_rows(ctx, CartItem) == 0


@pytest.mark.subprocess
async def test_purge_carts_runs_from_the_command_line(client: ApiClient, ctx: AppContext) -> None:
    await add_product(ctx)
    buyer = await shopper(ctx)
    await fill_cart(client, buyer.token, {"brass-lamp": 1})
    await make_stale(ctx, buyer.user.id, 365)
    result = run_cli(ctx, "purge-carts")
    assert result.returncode == 0, result.stderr
    assert "'deleted': 1" in result.stdout
    assert await count_rows(ctx, Cart) == 0
