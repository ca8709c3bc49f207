"""Errors reach Sentry, and nothing private goes with them.

A real `python -m app serve` process has SENTRY_DSN pointing at a local HTTP server that
stands in for Sentry's ingestion endpoint and keeps every envelope it is sent. The
service runs on a SQLite database of the test's own, where a trigger makes a genuine
unhandled error out of an ordinary checkout.
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import tornado.web
from sqlalchemy.engine import make_url
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets

from app.server import ShopApplication
from core.context import AppContext
from tests.order_factories import (
    ADDRESS,
    add_product,
    fill_cart,
    ordered,
    set_order_status,
    shopper,
    stock_of,
)

# Fixture "http": a client for the server process.
from tests.processes import (  # noqa: F401 (fixtures)
    ShopServer,
    http_fixture,  # noqa: F401
    logs_on_failure,
    poll,
    server_settings,
    stop_all,
)

pytestmark = pytest.mark.subprocess
EVENT_SECONDS = 10.0
COOKIE = "session=cookie-that-must-stay-home"


@dataclass
class Envelope:
    raw: bytes  # as received, decompressed
    items: list[tuple[dict[str, Any], Any]]  # (item header, payload)


class SentryStandIn:
    """Sentry's envelope endpoint on loopback; `events` are the error events received."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.port = 0
        self._server: HTTPServer | None = None

    async def start(self) -> None:
        """Listen, on the running loop."""
        [sock] = bind_sockets(0, "127.0.0.1")
        self.port = sock.getsockname()[1]
        app = tornado.web.Application([(r"/api/\d+/envelope/", _EnvelopeHandler, {"sink": self})])
        self._server = HTTPServer(app)
        self._server.add_sockets([sock])

    @property
    def dsn(self) -> str:
        return f"http://public-key@127.0.0.1:{self.port}/1"

    @property
    def events(self) -> list[dict[str, Any]]:
        return [
            payload
            for envelope in self.envelopes
            for header, payload in envelope.items
            if header.get("type") == "event"
        ]

    def received(self) -> bytes:
        return b"\n".join(envelope.raw for envelope in self.envelopes)

    async def event_where(self, matches: Any) -> dict[str, Any]:
        """The first event `matches(event)` accepts, once it has arrived."""

        async def arrived() -> bool:
            return any(matches(event) for event in self.events)

        await poll(arrived, timeout=EVENT_SECONDS, failure="Sentry received no such event")
        return next(event for event in self.events if matches(event))

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


class _EnvelopeHandler(tornado.web.RequestHandler):
    def initialize(self, sink: SentryStandIn) -> None:
        self.sink = sink

    def post(self) -> None:
        raw = self.request.body
        if self.request.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        self.sink.envelopes.append(Envelope(raw, _items(raw)))
        self.finish({"id": "0" * 32})


def _items(raw: bytes) -> list[tuple[dict[str, Any], Any]]:
    """The items of an envelope: a header line, then per item a header line and its
    payload (JSON for the item types this service sends)."""
    lines = raw.split(b"\n")[1:]
    items = []
    while len(lines) >= 2 and lines[0]:
        header = json.loads(lines[0])
        items.append((header, json.loads(lines[1])))
        lines = lines[2:]
    return items


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    """A SQLite database of the test's own (the trigger below needs SQLite's syntax),
    migrated the way a deployment does it."""
    url = f"sqlite+aiosqlite:///{tmp_path}/sentry.db"
    command = [sys.executable, "-m", "app", "migrate"]
    subprocess.run(command, env=server_settings(url, PATH=os.environ["PATH"]), check=True)
    return url


@pytest.fixture
def sentry(io_loop: IOLoop) -> Iterator[SentryStandIn]:
    stand_in = SentryStandIn()
    io_loop.run_sync(stand_in.start)
    yield stand_in
    stand_in.stop()


@pytest.fixture
def server(
    ctx: AppContext,  # set up first, so the process stops before it is closed
    database_url: str,
    sentry: SentryStandIn,
    http: AsyncHTTPClient,
    io_loop: IOLoop,
    tmp_path: Any,
) -> Iterator[ShopServer]:
    # Deprecation warnings are printed, so a deprecated Sentry option would show in the log.
    settings = server_settings(
        database_url, SENTRY_DSN=sentry.dsn, PYTHONWARNINGS="always::DeprecationWarning"
    )
    process = ShopServer("sentry", settings, tmp_path)
    try:
        io_loop.run_sync(lambda: process.start_and_wait(http))
        with logs_on_failure(process):
            yield process
    finally:
        stop_all(process)


def freeze_order_history(database_url: str) -> None:
    """A fault the code does not expect: recording an order event fails."""
    path = make_url(database_url).database
    assert path is not None
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TRIGGER frozen BEFORE INSERT ON order_events "
            "BEGIN SELECT RAISE(ABORT, 'order history is frozen'); END"
        )


async def test_an_unhandled_error_reaches_sentry_without_body_token_or_cookie(
    server: ShopServer,
    sentry: SentryStandIn,
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
    database_url: str,
) -> None:
    api = server.api(http, app)
    buyer = await shopper(ctx)
    await add_product(ctx, "brass-lamp", stock=5)
    await fill_cart(api, buyer.token, {"brass-lamp": 2})
    freeze_order_history(database_url)

    response = await api.post(
        "orders:list",
        json={"shipping_address": ADDRESS},
        token=buyer.token,
        headers={"Cookie": COOKIE},
    )

    assert response.status == 500
    assert response.error_code == "internal_error"
    assert await stock_of(ctx, "brass-lamp") == 5  # the failed order took nothing
    event = await sentry.event_where(lambda event: "exception" in event)
    raised = event["exception"]["values"][-1]  # the last is the one raised, its causes before
    assert raised["type"] == "IntegrityError"
    assert event["level"] == "error"
    assert event["request"]["method"] == "POST"
    assert event["request"]["url"] == f"{server.url}/api/v1/orders"
    assert "data" not in event["request"]
    assert "cookies" not in event["request"]
    received = sentry.received().decode()
    for private in (buyer.token, "cookie-that-must-stay-home", ADDRESS["name"], ADDRESS["line1"]):
        assert private not in received
    assert "DeprecationWarning" not in server.log_path.read_text()  # no deprecated option


async def test_an_error_level_log_line_reaches_sentry(
    server: ShopServer,
    sentry: SentryStandIn,
    ctx: AppContext,
    app: ShopApplication,
    http: AsyncHTTPClient,
) -> None:
    api = server.api(http, app)
    buyer = await shopper(ctx)
    await add_product(ctx, "brass-lamp")
    order = await ordered(api, buyer.token, {"brass-lamp": 1})
    # Paid, and no payments backend to refund through: a person must settle it.
    await set_order_status(ctx, order["id"], "paid")

    response = await api.post("orders:cancel", order["id"], token=buyer.token)

    assert response.status == 200
    event = await sentry.event_where(lambda event: event.get("message") == "refund_not_requested")
    assert event["level"] == "error"
    assert event["contexts"]["structlog"]["order_id"] == order["id"]
    assert event["request"]["url"] == f"{server.url}/api/v1/orders/{order['id']}/cancel"
    assert buyer.token not in sentry.received().decode()
