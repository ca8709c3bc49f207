"""A database that hangs or drops its connections: requests answer 503 within
DATABASE_TIMEOUT instead of hanging, and the service recovers by itself once the
database answers again.

A second instance of the service reaches the test database through a proxy
(tests/db_proxy.py) that can freeze or cut its connections; test data is made directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select, text
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets

from app.context import create_context
from app.server import ShopApplication, make_app
from core.context import AppContext
from core.db import DatabaseTimeout
from models.catalog import Product
from tasks.orders import expire_orders
from tests.client import ApiClient, Response
from tests.conftest import build_settings
from tests.db_proxy import DatabaseProxy
from tests.factories import DEFAULT_PASSWORD, LoggedIn, create_user
from tests.order_factories import add_product, fill_cart, place_order, shopper, stock_of
from tests.processes import ServerHTTP, poll

# The proxy stands between the service and a database server over TCP: SQLite has no
# connection to freeze, so these run on MariaDB/MySQL only.
pytestmark = pytest.mark.mariadb

DATABASE_TIMEOUT = 1.0
# What a request may take beyond DATABASE_TIMEOUT to answer.
MARGIN = 1.0
EMAIL = "frozen@example.com"


@dataclass
class ProxiedService:
    """The service whose database connections all pass through `proxy`."""

    ctx: AppContext
    api: ApiClient
    proxy: DatabaseProxy


@pytest.fixture
def proxy(io_loop: IOLoop, database_url: str) -> Iterator[DatabaseProxy]:
    proxy = DatabaseProxy.in_front_of(database_url)
    io_loop.run_sync(proxy.start)
    yield proxy
    io_loop.run_sync(proxy.close)


@pytest.fixture
def proxied(
    ctx: AppContext,  # set up first, so this instance stops before it empties the tables
    app: ShopApplication,
    proxy: DatabaseProxy,
    database_url: str,
    io_loop: IOLoop,
    request: pytest.FixtureRequest,
) -> Iterator[ProxiedService]:
    """With DATABASE_TIMEOUT=1 and no response cache (every read reaches the
    database), then the test's @pytest.mark.settings."""
    marker = request.node.get_closest_marker("settings")
    overrides = {"database_timeout": DATABASE_TIMEOUT, "cache_ttl": 0}
    overrides.update(marker.kwargs if marker else {})
    settings = build_settings(proxy.url(database_url), overrides)
    proxied_ctx = create_context(settings)
    io_loop.run_sync(proxied_ctx.start)
    [sock] = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(make_app(proxied_ctx))
    server.add_sockets([sock])
    http = AsyncHTTPClient(force_instance=True, defaults={"request_timeout": 15})
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    yield ProxiedService(proxied_ctx, ApiClient(ServerHTTP(http, base_url), app), proxy)
    proxy.thaw()
    http.close()
    server.stop()
    io_loop.run_sync(server.close_all_connections)
    io_loop.run_sync(proxied_ctx.close)


async def timed(request: Awaitable[Response]) -> tuple[Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def open_shop(ctx: AppContext, client: ApiClient) -> LoggedIn:
    """Ten "brass-lamp" in stock, a user who can log in (EMAIL), and the shopper
    returned, one lamp in their cart."""
    await add_product(ctx, "brass-lamp", stock=10)
    await create_user(ctx, EMAIL)
    buyer = await shopper(ctx)
    await fill_cart(client, buyer.token, {"brass-lamp": 1})
    return buyer


def the_four_requests(api: ApiClient, buyer: LoggedIn) -> list[Awaitable[Response]]:
    """A catalog read, a checkout, a login and the health probe."""
    return [
        api.get("catalog:product", "brass-lamp"),
        place_order(api, buyer.token),
        api.post("auth:login", json={"email": EMAIL, "password": DEFAULT_PASSWORD}),
        api.get("ops:health"),
    ]


def assert_unavailable(response: Response, elapsed: float) -> None:
    assert response.status == 503, response.body
    assert response.headers.get("Retry-After"), "no Retry-After"
    body = response.json()
    if "error" in body:
        assert body["error"]["code"] == "service_unavailable"
    else:  # the health probe
        assert body["status"] == "unavailable" and body["database"] == "unavailable"
    assert elapsed <= DATABASE_TIMEOUT + MARGIN, f"answered after {elapsed:.2f} s"


async def test_a_hung_database_gives_503_within_the_timeout_and_the_service_recovers(
    ctx: AppContext, client: ApiClient, proxied: ProxiedService
) -> None:
    buyer = await open_shop(ctx, client)
    assert (await proxied.api.get("ops:health")).status == 200  # the pool holds connections

    proxied.proxy.freeze()
    answers = await asyncio.gather(*map(timed, the_four_requests(proxied.api, buyer)))
    for response, elapsed in answers:
        assert_unavailable(response, elapsed)

    proxied.proxy.thaw()
    catalog, checkout, login, health = await asyncio.gather(*the_four_requests(proxied.api, buyer))
    assert catalog.status == 200 and catalog.json()["slug"] == "brass-lamp"
    assert checkout.status == 201, checkout.body
    assert login.status == 200, login.body
    assert health.status == 200 and health.json()["database"] == "ok"
    assert await stock_of(ctx, "brass-lamp") == 9


@pytest.mark.slow
async def test_connections_cancelled_mid_query_never_answer_a_later_query(
    ctx: AppContext, client: ApiClient, proxied: ProxiedService
) -> None:
    """The responses held while frozen arrive after the thaw; a connection that had
    given up on one and went back to the pool would hand it to the next query."""
    for number in range(6):
        await add_product(ctx, f"lamp-{number}", stock=number)
    slugs = [f"lamp-{number}" for number in range(6)]

    async def read_all() -> list[Response]:
        reads = [proxied.api.get("catalog:product", slug) for slug in slugs * 3]
        return await asyncio.gather(*reads)

    assert {response.status for response in await read_all()} == {200}
    proxied.proxy.freeze()
    assert {response.status for response in await read_all()} == {503}
    proxied.proxy.thaw()
    for _ in range(3):
        responses = await read_all()
        assert [r.status for r in responses] == [200] * len(responses)
        assert [r.json()["slug"] for r in responses] == slugs * 3


async def checkout_struck_mid_statement(
    ctx: AppContext, proxied: ProxiedService, buyer: LoggedIn, fault: Callable[[], None]
) -> tuple[Response, float]:
    """A checkout through the proxy, held mid-transaction on its stock update (the
    product's row is locked meanwhile), when `fault` strikes the proxy; its answer and
    how long it took."""
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(select(Product).where(Product.slug == "brass-lamp").with_for_update())
        checkout = asyncio.create_task(timed(place_order(proxied.api, buyer.token)))
        await poll(lambda: taking_stock(ctx), timeout=5, failure="the checkout never waited")
        fault()
        return await checkout


async def assert_the_next_checkout_succeeds(
    ctx: AppContext, proxied: ProxiedService, buyer: LoggedIn, *, stock: int = 9
) -> None:
    """The buyer's cart ordered through the proxy, leaving `stock` lamps."""
    retried = await place_order(proxied.api, buyer.token)
    assert retried.status == 201, retried.body
    assert await stock_of(ctx, "brass-lamp") == stock


@pytest.mark.settings(database_timeout=5)
async def test_a_connection_cut_mid_statement_gives_503_at_once_and_the_next_succeeds(
    ctx: AppContext, client: ApiClient, proxied: ProxiedService
) -> None:
    buyer = await open_shop(ctx, client)
    response, elapsed = await checkout_struck_mid_statement(ctx, proxied, buyer, proxied.proxy.cut)
    assert response.status == 503, response.body
    assert response.error_code == "service_unavailable"
    assert elapsed < 5, "it waited for the timeout, not for the cut"
    assert await stock_of(ctx, "brass-lamp") == 10  # the cut transaction rolled back
    await assert_the_next_checkout_succeeds(ctx, proxied, buyer)


async def test_a_checkout_whose_database_hangs_mid_transaction_gives_503_and_takes_nothing(
    ctx: AppContext, client: ApiClient, proxied: ProxiedService
) -> None:
    buyer = await open_shop(ctx, client)
    response, elapsed = await checkout_struck_mid_statement(
        ctx, proxied, buyer, proxied.proxy.freeze
    )
    assert_unavailable(response, elapsed)
    assert await stock_of(ctx, "brass-lamp") == 10
    proxied.proxy.thaw()
    await assert_the_next_checkout_succeeds(ctx, proxied, buyer)


async def taking_stock(ctx: AppContext) -> bool:
    """Whether a checkout's stock update is running (here: waiting for the row)."""
    async with ctx.engine.connect() as connection:
        running = await connection.scalar(
            text(
                "SELECT COUNT(*) FROM information_schema.processlist"
                " WHERE info LIKE 'UPDATE products SET stock%'"
            )
        )
    return bool(running)


async def test_idle_connections_cut_are_replaced_without_an_error(
    ctx: AppContext, client: ApiClient, proxied: ProxiedService
) -> None:
    await add_product(ctx, "brass-lamp")
    assert (await proxied.api.get("catalog:product", "brass-lamp")).status == 200
    proxied.proxy.cut()
    await asyncio.sleep(0.2)  # within the ping window: the socket has seen its end
    assert (await proxied.api.get("catalog:product", "brass-lamp")).status == 200


async def test_idle_connections_past_the_ping_window_are_pinged_and_replaced(
    ctx: AppContext, client: ApiClient, proxied: ProxiedService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.db.PING_AFTER_IDLE_SECONDS", 0.1)
    # The ping alone must find them: the socket's end is not looked at here.
    monkeypatch.setattr("core.db.closed_by_peer", lambda _connection: False)
    await add_product(ctx, "brass-lamp")
    assert (await proxied.api.get("catalog:product", "brass-lamp")).status == 200
    proxied.proxy.cut()
    await asyncio.sleep(0.2)  # idle past the window: pinged, found cut, replaced
    assert (await proxied.api.get("catalog:product", "brass-lamp")).status == 200


async def test_checkout_connections_cut_while_idle_are_replaced_without_an_error(
    ctx: AppContext, client: ApiClient, proxied: ProxiedService
) -> None:
    buyer = await open_shop(ctx, client)
    first = await place_order(proxied.api, buyer.token)
    assert first.status == 201, first.body
    proxied.proxy.cut()  # the checkout's pooled connection among them
    # The end reaches the idle socket over loopback at once; were it late, the next
    # checkout would meet a dead connection and fail, so this cannot pass vacuously.
    await asyncio.sleep(0.2)
    await fill_cart(client, buyer.token, {"brass-lamp": 1})
    await assert_the_next_checkout_succeeds(ctx, proxied, buyer, stock=8)


async def test_a_periodic_task_gives_up_on_a_hung_database_and_runs_again_after(
    proxied: ProxiedService,
) -> None:
    assert await expire_orders(proxied.ctx) == {"expired": 0}
    proxied.proxy.freeze()
    started = time.monotonic()
    with pytest.raises(DatabaseTimeout):
        await expire_orders(proxied.ctx)
    assert time.monotonic() - started <= DATABASE_TIMEOUT + MARGIN
    proxied.proxy.thaw()
    assert await expire_orders(proxied.ctx) == {"expired": 0}
