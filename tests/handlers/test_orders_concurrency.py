"""Real concurrent HTTP requests against the running app: stock never oversold, never
restored twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from app.server import ShopApplication
from core.context import AppContext
from models.orders import Order
from tests.client import ApiClient
from tests.factories import count_rows
from tests.order_factories import (
    add_product,
    fill_cart,
    ordered,
    place_order,
    shopper,
    shoppers,
    stock_of,
    timeline,
)

BUYERS = 50


class _WideClient:
    """Fetches from the test server with room for every request at once (the default
    client queues all but ten)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = SimpleAsyncHTTPClient(force_instance=True, max_clients=BUYERS + 10)

    async def fetch(self, path: str, **kwargs: Any) -> HTTPResponse:
        return await self.http.fetch(self.base_url + path, request_timeout=60, **kwargs)


@pytest.fixture
def crowd(http_server_client: Any, app: ShopApplication) -> Iterator[ApiClient]:
    wide = _WideClient(http_server_client.get_url(""))
    yield ApiClient(wide, app)
    wide.http.close()


async def test_fifty_buyers_racing_for_ten_items_make_exactly_ten_orders(
    crowd: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=10)
    buyers = await shoppers(ctx, BUYERS)
    for buyer in buyers:
        await fill_cart(crowd, buyer.token, {"brass-lamp": 1})

    responses = await asyncio.gather(*(place_order(crowd, buyer.token) for buyer in buyers))

    statuses = Counter(response.status for response in responses)
    assert statuses == {201: 10, 409: BUYERS - 10}
    assert {r.error_code for r in responses if r.status == 409} == {"insufficient_stock"}
    assert await stock_of(ctx, "brass-lamp") == 0
    assert await count_rows(ctx, Order) == 10


@pytest.mark.slow
async def test_buyers_of_overlapping_carts_never_deadlock_or_oversell(
    crowd: ApiClient, ctx: AppContext
) -> None:
    for slug in ("lamp", "desk", "rug"):
        await add_product(ctx, slug, stock=12)
    buyers = await shoppers(ctx, 30)
    carts = [{"lamp": 1, "desk": 1}, {"rug": 1, "lamp": 1}, {"desk": 1, "rug": 1, "lamp": 1}]
    for number, buyer in enumerate(buyers):
        await fill_cart(crowd, buyer.token, carts[number % 3])

    responses = await asyncio.gather(*(place_order(crowd, buyer.token) for buyer in buyers))

    assert {response.status for response in responses} <= {201, 409}
    placed = [r.json() for r in responses if r.status == 201]
    taken = Counter(item["product"] for order in placed for item in order["items"])
    for slug in ("lamp", "desk", "rug"):
        assert await stock_of(ctx, slug) == 12 - taken[slug] >= 0


async def test_fifty_concurrent_cancels_restore_the_stock_once(
    crowd: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    order = await ordered(crowd, buyer.token, {"brass-lamp": 4})

    responses = await asyncio.gather(
        *(crowd.post("orders:cancel", order["id"], token=buyer.token) for _ in range(BUYERS))
    )

    assert {response.status for response in responses} == {200}
    assert await stock_of(ctx, "brass-lamp") == 10
    assert await timeline(ctx, order["id"]) == ["pending_payment", "cancelled"]


async def test_concurrent_retries_with_one_idempotency_key_make_one_order(
    crowd: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    await fill_cart(crowd, buyer.token, {"brass-lamp": 2})
    key = {"Idempotency-Key": "double-click"}

    responses = await asyncio.gather(
        *(place_order(crowd, buyer.token, headers=key) for _ in range(10))
    )

    assert sorted(response.status for response in responses) == [200] * 9 + [201]
    assert len({response.json()["id"] for response in responses}) == 1
    assert await stock_of(ctx, "brass-lamp") == 8


async def test_concurrent_checkouts_of_one_cart_without_a_key_order_it_once(
    crowd: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, stock=10)
    buyer = await shopper(ctx)
    await fill_cart(crowd, buyer.token, {"brass-lamp": 2})

    responses = await asyncio.gather(*(place_order(crowd, buyer.token) for _ in range(10)))

    assert sorted(response.status for response in responses) == [201] + [400] * 9
    assert await stock_of(ctx, "brass-lamp") == 8
