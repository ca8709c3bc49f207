"""A crash in the middle of a burst of checkouts loses nothing and invents nothing.

The service runs as a real process (`python -m app serve`) and is SIGKILLed while
concurrent checkouts are in flight, then started again. Whatever each transaction had
done is either all there or not there at all: stock and live orders add up to the
starting stock, every order a client was told about exists, and every cart is either
ordered (and emptied) or still whole.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from tornado.httpclient import AsyncHTTPClient
from tornado.ioloop import IOLoop
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from app.server import ShopApplication
from core.context import AppContext
from models.catalog import Product
from models.orders import Cart, CartItem, Order, OrderItem
from services.order_status import CANCELLED, EXPIRED, PAYMENT_FAILED, REFUNDED
from tests.client import Response
from tests.factories import LoggedIn
from tests.order_factories import add_product, fill_cart, place_order, shoppers
from tests.processes import ShopServer, logs_on_failure, server_settings, stop_all

BUYERS = 60
# Answers seen before the kill: enough to know the burst is under way, few enough that
# most checkouts are still in flight.
pytestmark = pytest.mark.subprocess
ANSWERS_BEFORE_KILL = 5
STARTING_STOCK = {"brass-lamp": 40, "desk-fan": 25, "wool-rug": 30}
# Three kinds of cart, some sharing products, so checkouts contend for the same rows.
CARTS = [{"brass-lamp": 1, "desk-fan": 1}, {"wool-rug": 2, "brass-lamp": 1}, {"desk-fan": 1}]
ENDED = (CANCELLED, EXPIRED, REFUNDED, PAYMENT_FAILED)


@pytest.fixture
def http(io_loop: IOLoop) -> Iterator[AsyncHTTPClient]:
    """Room for every checkout at once (the default client queues all but ten)."""
    client = SimpleAsyncHTTPClient(
        force_instance=True, max_clients=BUYERS + 10, defaults={"request_timeout": 30}
    )
    yield client
    client.close()


@pytest.fixture
def launched(ctx: AppContext) -> Iterator[list[ShopServer]]:
    """Servers the test starts; whatever still runs is stopped at teardown (before
    `ctx`, set up first, empties the tables)."""
    servers: list[ShopServer] = []
    yield servers
    stop_all(*servers)


async def test_a_crash_mid_burst_of_checkouts_leaves_stock_and_orders_consistent(
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
    launched: list[ShopServer],
    database_url: str,
    tmp_path: Any,
) -> None:
    for slug, stock in STARTING_STOCK.items():
        await add_product(ctx, slug, stock=stock)
    buyers = await shoppers(ctx, BUYERS)
    carts = {buyer.user.id: CARTS[number % len(CARTS)] for number, buyer in enumerate(buyers)}
    first = ShopServer("first", server_settings(database_url), tmp_path)
    launched.append(first)
    await first.start_and_wait(http)
    api = first.api(http, app)
    await asyncio.gather(*(fill_cart(api, b.token, carts[b.user.id]) for b in buyers))

    answered: list[Response] = []
    under_way = asyncio.Event()

    async def check_out(buyer: LoggedIn) -> None:
        response = await place_order(api, buyer.token)
        answered.append(response)
        if len(answered) == ANSWERS_BEFORE_KILL:
            first.kill()
            under_way.set()

    with logs_on_failure(first):
        burst = asyncio.gather(*(check_out(buyer) for buyer in buyers), return_exceptions=True)
        await asyncio.wait_for(under_way.wait(), 30)
        await burst
    assert len(answered) < BUYERS, "every checkout finished before the kill"

    second = ShopServer("second", server_settings(database_url), tmp_path)
    launched.append(second)
    await second.start_and_wait(http)

    await assert_stock_adds_up(ctx)
    orders = await orders_by_user(ctx)
    told = [response.json()["id"] for response in answered if response.status == 201]
    assert set(told) <= set(orders), "an order a client was told about is missing"
    await assert_every_cart_is_ordered_or_whole(ctx, carts)

    # The restarted service takes orders: every buyer without one tries again.
    again_api = second.api(http, app)
    unordered = [buyer for buyer in buyers if buyer.user.id not in set(orders.values())]
    retries = await asyncio.gather(*(place_order(again_api, b.token) for b in unordered))
    assert {response.status for response in retries} <= {201, 409}
    await assert_stock_adds_up(ctx)
    await assert_every_cart_is_ordered_or_whole(ctx, carts)


async def assert_stock_adds_up(ctx: AppContext) -> None:
    """For every product: stock + units held by orders still alive == starting stock."""
    async with ctx.sessionmaker() as session:
        stock = dict((await session.execute(select(Product.slug, Product.stock))).all())
        held = dict(
            (
                await session.execute(
                    select(OrderItem.product_slug, func.sum(OrderItem.quantity))
                    .join(Order)
                    .where(Order.status.not_in(ENDED))
                    .group_by(OrderItem.product_slug)
                )
            ).all()
        )
    for slug, starting in STARTING_STOCK.items():
        assert stock[slug] >= 0, f"{slug}: stock below zero"
        assert stock[slug] + int(held.get(slug, 0)) == starting, f"{slug} does not add up"


async def orders_by_user(ctx: AppContext) -> dict[int, int]:
    """Order id -> the user who placed it; no user has two."""
    async with ctx.sessionmaker() as session:
        rows = (await session.execute(select(Order.id, Order.user_id))).all()
    placed = Counter(user_id for _, user_id in rows)
    assert max(placed.values(), default=1) == 1, "a cart was ordered twice"
    return dict(rows)


async def assert_every_cart_is_ordered_or_whole(
    ctx: AppContext, carts: dict[int, dict[str, int]]
) -> None:
    async with ctx.sessionmaker() as session:
        ordered = set((await session.scalars(select(Order.user_id))).all())
        lines = (
            await session.execute(
                select(Cart.user_id, Product.slug, CartItem.quantity)
                .join(CartItem, CartItem.cart_id == Cart.id)
                .join(Product, Product.id == CartItem.product_id)
            )
        ).all()
    left: dict[int, dict[str, int]] = {}
    for user_id, slug, quantity in lines:
        left.setdefault(user_id, {})[slug] = quantity
    for user_id, cart in carts.items():
        expected = {} if user_id in ordered else cart
        assert left.get(user_id, {}) == expected, f"user {user_id}: cart half ordered"
