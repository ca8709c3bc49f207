"""The service as it is deployed: separate `python -m app serve` processes sharing the
test database and a private Redis, watched through real websocket clients.

Test data is made through `ctx` (the same database); everything else goes over HTTP
and websockets to the processes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any
from unittest.mock import ANY
from urllib.parse import parse_qsl

import pytest
import tornado.web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets
from websockets.asyncio.client import ClientConnection, connect

from app.server import ShopApplication
from core.context import AppContext
from core.websocket import NOT_AUTHENTICATED
from tests.client import ApiClient
from tests.factories import log_in
from tests.order_factories import add_product, ordered, shopper

# Fixtures "http", a client for the processes, and "redis_server", a private Redis the
# test may kill, freeze or restart.
from tests.processes import (  # noqa: F401
    EXIT_SECONDS,
    RedisServer,
    ShopServer,
    http_fixture,
    logs_on_failure,
    poll,
    redis_server_fixture,
    server_settings,
    stop_all,
)
from tests.stripe_stub import SECRET_KEY as STRIPE_SECRET_KEY
from tests.stripe_stub import StripeStub
from tests.ws import close_code

pytestmark = pytest.mark.subprocess
MESSAGE_SECONDS = 5.0
# Redis re-subscription backs off up to 5 s between attempts (core/redis_subscription.py).
RECOVERY_SECONDS = 20.0


@pytest.fixture
def servers(
    ctx: AppContext,  # set up first, so the processes stop before it empties the tables
    database_url: str,
    redis_server: RedisServer,
    http: AsyncHTTPClient,
    io_loop: IOLoop,
    tmp_path: Any,
) -> Iterator[tuple[ShopServer, ShopServer]]:
    """Processes A and B, sharing the database and the private Redis."""
    settings = server_settings(database_url, REDIS_URL=redis_server.url)
    a, b = ShopServer("a", settings, tmp_path), ShopServer("b", settings, tmp_path)
    try:
        io_loop.run_sync(lambda: asyncio.gather(a.start_and_wait(http), b.start_and_wait(http)))
        yield a, b
    finally:
        stop_all(a, b)


async def next_message(socket: ClientConnection) -> Any:
    """The socket's next message, decoded; AssertionError when none comes in time."""
    try:
        return json.loads(await asyncio.wait_for(socket.recv(), MESSAGE_SECONDS))
    except TimeoutError:
        raise AssertionError(f"no message within {MESSAGE_SECONDS:g} s") from None


async def watch_stock(
    stack: AsyncExitStack, server: ShopServer, app: ShopApplication, *products: str
) -> ClientConnection:
    """An inventory socket, past its snapshot: from here on it hears every change."""
    socket = await stack.enter_async_context(
        connect(server.ws_url(app, "ws:inventory", products=",".join(products)))
    )
    assert (await next_message(socket))["type"] == "inventory.snapshot"
    return socket


async def watch_orders(
    stack: AsyncExitStack,
    server: ShopServer,
    app: ShopApplication,
    token: str,
    earlier_order: dict[str, Any],
) -> ClientConnection:
    """An order socket, past the replay of `earlier_order`'s event: the server listens
    before it replays, so from here on the socket hears every live event."""
    url = server.ws_url(app, "ws:orders", token=token, since=earlier_order["last_event_id"] - 1)
    socket = await stack.enter_async_context(connect(url))
    assert (await next_message(socket))["event_id"] == earlier_order["last_event_id"]
    return socket


def order_event(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "order.status",
        "event_id": order["last_event_id"],
        "order_id": order["id"],
        "status": "pending_payment",
        "at": ANY,
    }


def stock_event(product: str, stock: int) -> dict[str, Any]:
    return {
        "type": "inventory.changed",
        "product": product,
        "stock": stock,
        "in_stock": stock > 0,
        "at": ANY,
    }


async def set_stock(api: ApiClient, token: str, product: str, stock: int) -> None:
    response = await api.patch("catalog:product", product, json={"stock": stock}, token=token)
    assert response.status == 200, response.body


async def test_an_order_placed_on_one_process_reaches_order_sockets_on_another(
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
    servers: tuple[ShopServer, ShopServer],
) -> None:
    a, b = servers
    await add_product(ctx, "brass-lamp", stock=10)
    buyer = await shopper(ctx)
    on_a = a.api(http, app)
    with logs_on_failure(a, b):
        first = await ordered(on_a, buyer.token, {"brass-lamp": 1})
        async with AsyncExitStack() as sockets:
            feed_on_b = await watch_orders(sockets, b, app, buyer.token, first)
            second = await ordered(on_a, buyer.token, {"brass-lamp": 2})
            assert await next_message(feed_on_b) == order_event(second)


async def test_a_deactivation_on_one_process_closes_the_users_socket_on_another(
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
    servers: tuple[ShopServer, ShopServer],
) -> None:
    a, b = servers
    await add_product(ctx, "brass-lamp", stock=10)
    buyer = await shopper(ctx)
    on_a = a.api(http, app)
    with logs_on_failure(a, b):
        staff = await log_in(on_a, ctx, "staff@example.com", staff=True)
        first = await ordered(on_a, buyer.token, {"brass-lamp": 1})
        async with AsyncExitStack() as sockets:
            feed_on_b = await watch_orders(sockets, b, app, buyer.token, first)
            response = await on_a.patch(
                "users:detail", buyer.user.id, json={"is_active": False}, token=staff.token
            )
            assert response.status == 200, response.body
            assert await close_code(feed_on_b, timeout=MESSAGE_SECONDS) == NOT_AUTHENTICATED


async def test_a_stock_edit_on_one_process_reaches_inventory_sockets_on_another(
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
    servers: tuple[ShopServer, ShopServer],
) -> None:
    a, b = servers
    await add_product(ctx, "brass-lamp", stock=10)
    await add_product(ctx, "desk-fan", stock=3)
    on_b = b.api(http, app)
    with logs_on_failure(a, b):
        staff = await log_in(on_b, ctx, "staff@example.com", staff=True)
        async with AsyncExitStack() as sockets:
            lamp_on_a = await watch_stock(sockets, a, app, "brass-lamp")
            both_on_a = await watch_stock(sockets, a, app, "desk-fan", "brass-lamp")
            await set_stock(on_b, staff.token, "brass-lamp", 42)
            assert await next_message(lamp_on_a) == stock_event("brass-lamp", 42)
            assert await next_message(both_on_a) == stock_event("brass-lamp", 42)


async def test_a_catalog_edit_on_one_process_shows_at_once_in_what_another_caches(
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
    redis_server: RedisServer,
    servers: tuple[ShopServer, ShopServer],
) -> None:
    a, b = servers
    await add_product(ctx, "brass-lamp", stock=10)
    on_a, on_b = a.api(http, app), b.api(http, app)

    async def price_on_b() -> str:
        for _ in range(2):  # the second answer is B's own copy
            response = await on_b.get("catalog:product", "brass-lamp")
            assert response.status == 200, response.body
        return str(response.json()["price"])

    with logs_on_failure(a, b):
        staff = await log_in(on_a, ctx, "staff@example.com", staff=True)
        before = await price_on_b()
        for price in ("12.00", "13.00"):
            changed = await on_a.patch(
                "catalog:product", "brass-lamp", json={"price": price}, token=staff.token
            )
            assert changed.status == 200, changed.body
            assert await price_on_b() == price != before
            # A restarted Redis starts its generations again: B's copies go with it.
            redis_server.kill()
            await redis_server.start_and_wait()


async def test_processes_keep_serving_without_redis_and_reconnect_when_it_returns(
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
    redis_server: RedisServer,
    servers: tuple[ShopServer, ShopServer],
) -> None:
    a, b = servers
    await add_product(ctx, "brass-lamp", stock=10)
    await add_product(ctx, "desk-fan", stock=3)
    buyer = await shopper(ctx)
    on_a, on_b = a.api(http, app), b.api(http, app)
    with logs_on_failure(a, b, redis_server):
        staff = await log_in(on_b, ctx, "staff@example.com", staff=True)
        first = await ordered(on_a, buyer.token, {"brass-lamp": 1})
        async with AsyncExitStack() as sockets:
            orders_on_a = await watch_orders(sockets, a, app, buyer.token, first)
            fan_on_a = await watch_stock(sockets, a, app, "desk-fan")

            redis_server.kill()
            # Both keep serving (catalog reads: see the test below), and local delivery
            # goes on.
            second = await ordered(on_a, buyer.token, {"brass-lamp": 1})
            assert await next_message(orders_on_a) == order_event(second)
            listing = await on_b.get("orders:list", token=buyer.token)
            assert listing.status == 200, listing.body
            assert listing.json()["count"] == 2
            await set_stock(on_b, staff.token, "desk-fan", 4)

            await redis_server.start_and_wait()
            # Each process re-subscribes on its own, with backoff: until both have, B's
            # changes miss A. A hears one of those made after the restart, never one from
            # the outage.
            stocks_set_since: list[int] = []

            async def change_on_b_reaches_a() -> bool:
                stocks_set_since.append(5 + len(stocks_set_since))
                await set_stock(on_b, staff.token, "desk-fan", stocks_set_since[-1])
                try:
                    heard = json.loads(await asyncio.wait_for(fan_on_a.recv(), 0.5))
                except TimeoutError:
                    return False
                assert heard == stock_event("desk-fan", heard["stock"])
                assert heard["stock"] in stocks_set_since
                return True

            await poll(
                change_on_b_reaches_a,
                timeout=RECOVERY_SECONDS,
                failure="cross-process delivery did not resume",
            )


async def test_the_first_event_after_redis_returns_reaches_the_other_process(
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
    redis_server: RedisServer,
    servers: tuple[ShopServer, ShopServer],
) -> None:
    a, b = servers
    await add_product(ctx, "desk-fan", stock=3)
    on_b = b.api(http, app)
    with logs_on_failure(a, b, redis_server):
        staff = await log_in(on_b, ctx, "staff@example.com", staff=True)
        async with AsyncExitStack() as sockets:
            fan_on_a = await watch_stock(sockets, a, app, "desk-fan")
            await set_stock(on_b, staff.token, "desk-fan", 4)
            assert await next_message(fan_on_a) == stock_event("desk-fan", 4)

            redis_server.kill()
            await redis_server.start_and_wait()

            async def both_resubscribed() -> bool:
                return all(server.logged("redis_events_resumed") for server in servers)

            await poll(both_resubscribed, timeout=RECOVERY_SECONDS, failure="no re-subscription")
            await set_stock(on_b, staff.token, "desk-fan", 5)
            assert await next_message(fan_on_a) == stock_event("desk-fan", 5)
        for server in servers:
            assert server.logged("redis_events_unavailable") == 1, f"{server.name}: one outage"


async def test_catalog_reads_answer_while_redis_is_down(
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
    redis_server: RedisServer,
    servers: tuple[ShopServer, ShopServer],
) -> None:
    await add_product(ctx, "brass-lamp", stock=10)
    redis_server.kill()
    for server in servers:
        response = await server.api(http, app).get("catalog:products")
        assert response.status == 200, response.body


class HeldStripeHandler(tornado.web.RequestHandler):
    """Stripe's API, answering only once the test releases it: a request to the shop
    that calls Stripe stays in flight for as long as the test wants."""

    def initialize(self, stub: StripeStub, called: asyncio.Event, release: asyncio.Event) -> None:
        self.stub = stub
        self.called = called
        self.release = release

    async def post(self, path: str) -> None:
        form = dict(parse_qsl(self.request.body.decode()))
        self.called.set()
        await self.release.wait()
        self.set_header("Content-Type", "application/json")
        self.finish(self.stub.answer(path, form, self.request.headers.get("Idempotency-Key")))


class HeldStripe:
    """A server for HeldStripeHandler on a free port; `called` is set when the shop calls,
    and the answer goes out once `release` is set."""

    def __init__(self) -> None:
        self.called = asyncio.Event()
        self.release = asyncio.Event()
        [sock] = bind_sockets(0, "127.0.0.1")
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        handler_args = {"stub": StripeStub(), "called": self.called, "release": self.release}
        app = tornado.web.Application([(r"(/v1/.*)", HeldStripeHandler, handler_args)])
        self.server = HTTPServer(app)
        self.server.add_sockets([sock])

    async def stop(self) -> None:
        self.release.set()
        self.server.stop()
        await self.server.close_all_connections()


@pytest.fixture
def held_stripe(io_loop: IOLoop) -> Iterator[HeldStripe]:
    stripe = HeldStripe()
    yield stripe
    io_loop.run_sync(stripe.stop)


@pytest.fixture
def lone_server(
    ctx: AppContext,  # set up first, so the process stops before it empties the tables
    database_url: str,
    held_stripe: HeldStripe,
    http: AsyncHTTPClient,
    io_loop: IOLoop,
    tmp_path: Any,
) -> Iterator[ShopServer]:
    """One process without Redis, paying through the held Stripe."""
    settings = server_settings(
        database_url, STRIPE_SECRET_KEY=STRIPE_SECRET_KEY, STRIPE_API_BASE=held_stripe.url
    )
    server = ShopServer("lone", settings, tmp_path)
    try:
        io_loop.run_sync(lambda: server.start_and_wait(http))
        yield server
    finally:
        stop_all(server)


async def test_sigterm_closes_sockets_with_1001_finishes_requests_in_flight_and_exits(
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
    held_stripe: HeldStripe,
    lone_server: ShopServer,
) -> None:
    await add_product(ctx, "brass-lamp", stock=10)
    buyer = await shopper(ctx)
    api = lone_server.api(http, app)
    with logs_on_failure(lone_server):
        order = await ordered(api, buyer.token, {"brass-lamp": 1})
        async with connect(lone_server.ws_url(app, "ws:orders", token=buyer.token)) as socket:
            paying = asyncio.create_task(api.post("orders:pay", order["id"], token=buyer.token))
            # The shop now waits on Stripe: its request is in flight.
            await asyncio.wait_for(held_stripe.called.wait(), MESSAGE_SECONDS)
            lone_server.terminate()
            signalled_at = time.monotonic()
            await asyncio.wait_for(socket.wait_closed(), EXIT_SECONDS)
            assert socket.close_code == 1001
        held_stripe.release.set()
        payment = await asyncio.wait_for(paying, EXIT_SECONDS)
        assert payment.status == 200, payment.body
        assert payment.json()["client_secret"]
        exit_code = await lone_server.wait_exit(EXIT_SECONDS - (time.monotonic() - signalled_at))
        assert exit_code == 0
