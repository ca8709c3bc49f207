"""What every channel shares: slow consumers, keepalive, shutdown and metrics."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.client import connect

from core.context import AppContext
from handlers.realtime import EventSocketHandler
from models.base import utcnow
from schemas.events import StockChanged
from tests.client import ApiClient
from tests.order_factories import add_product
from tests.processes import poll
from tests.ws import WAIT, close_code, open_socket, receive, socket_url

INVENTORY = "/ws/inventory"
SLUG = "brass-lamp-" + "x" * 60  # long, so that a few thousand frames fill buffers


@asynccontextmanager
async def never_reading(client: ApiClient, path: str) -> AsyncIterator[None]:
    """A client that completes the handshake and then reads nothing more, through a
    small receive buffer."""
    loop = asyncio.get_running_loop()
    port = client.http.get_http_port()
    with socket.socket() as raw:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.setblocking(False)
        await loop.sock_connect(raw, ("127.0.0.1", port))
        await loop.sock_sendall(raw, handshake(port, path))
        response = b""
        while b"\r\n\r\n" not in response:
            response += await loop.sock_recv(raw, 1)  # byte by byte: not a frame more
        assert response.startswith(b"HTTP/1.1 101"), response
        yield


def handshake(port: int, path: str) -> bytes:
    """A websocket upgrade request, written by hand."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def metric(ctx: AppContext, name: str, channel: str = "inventory") -> float:
    """The current value of one of the websocket metrics, as /metrics shows it."""
    value: float = ctx.metrics.registry.get_sample_value(name, {"channel": channel}) or 0.0
    return value


@pytest.mark.settings(ws_queue_limit=32)
async def test_a_consumer_that_never_reads_is_dropped_while_others_get_everything(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, SLUG, stock=10)
    published = 4000
    async with (
        open_socket(client, INVENTORY, products=SLUG) as reader,
        never_reading(client, f"{INVENTORY}?products={SLUG}"),
    ):
        assert (await receive(reader))["type"] == "inventory.snapshot"
        received: list[int] = []

        async def read_all() -> None:
            while len(received) < published:
                received.append((await receive(reader))["stock"])

        reading = asyncio.create_task(read_all())
        for stock in range(published):
            # A pace the reading client keeps up with; the other one falls behind for good.
            while stock - len(received) > 16:
                await asyncio.sleep(0.001)
            event = StockChanged(product=SLUG, stock=stock, in_stock=stock > 0, at=utcnow())
            await ctx.hub.publish(event)
        await asyncio.wait_for(reading, 20)

    assert received == list(range(published))  # all of it, in order
    assert metric(ctx, "shop_ws_slow_consumers_dropped_total") == 1


@pytest.mark.settings(ws_queue_limit=32)
async def test_a_consumer_that_falls_behind_finds_1013_when_it_reads_again(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, SLUG, stock=10)
    loop = asyncio.get_running_loop()
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await loop.sock_connect(raw, ("127.0.0.1", client.http.get_http_port()))
    url = socket_url(client, INVENTORY, products=SLUG)
    # The library stops reading while one message waits unread.
    async with connect(url, sock=raw, proxy=None, max_queue=1, open_timeout=WAIT) as stalled:
        assert (await receive(stalled))["type"] == "inventory.snapshot"
        for stock in range(4000):
            await ctx.hub.publish(
                StockChanged(product=SLUG, stock=stock, in_stock=True, at=utcnow())
            )
            await asyncio.sleep(0)  # the hub calls its listeners from the next turn
            if metric(ctx, "shop_ws_slow_consumers_dropped_total"):
                break
        assert metric(ctx, "shop_ws_slow_consumers_dropped_total") == 1
        assert await close_code(stalled) == 1013  # after the messages that got through


@pytest.mark.settings(ws_ping_interval=0.2, ws_ping_timeout=0.2)
async def test_a_peer_that_stops_answering_pings_is_dropped(
    client: ApiClient, ctx: AppContext
) -> None:
    """A hand-made client that completes the handshake and never answers a ping."""
    await add_product(ctx, "brass-lamp", stock=1)
    port = client.http.get_http_port()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(handshake(port, f"{INVENTORY}?products=brass-lamp"))
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    opcodes = []
    async with asyncio.timeout(WAIT):
        while 0x8 not in opcodes:  # until the server's close frame
            header = await reader.readexactly(2)
            length = header[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            await reader.readexactly(length)
            opcodes.append(header[0] & 0x0F)
    assert 0x9 in opcodes  # it was pinged first
    writer.close()
    await poll(
        lambda: metric(ctx, "shop_ws_open_sockets") == 0, timeout=WAIT, failure="sockets open"
    )


@pytest.mark.settings(ws_ping_interval=0.2, ws_ping_timeout=0.2)
async def test_a_peer_that_answers_pings_stays(
    client: ApiClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    pongs: list[bytes] = []
    monkeypatch.setattr(EventSocketHandler, "on_pong", lambda _self, data: pongs.append(data))
    await add_product(ctx, "brass-lamp", stock=1)
    async with open_socket(client, INVENTORY, products="brass-lamp") as socket_:
        await receive(socket_)
        # Several ping rounds, each answered, however long the loaded machine takes.
        await poll(lambda: len(pongs) >= 3, timeout=WAIT, failure="fewer than 3 pongs")
        await ctx.hub.publish(
            StockChanged(product="brass-lamp", stock=0, in_stock=False, at=utcnow())
        )
        assert (await receive(socket_))["stock"] == 0


async def test_shutdown_closes_every_socket_with_1001_and_refuses_new_ones(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, "brass-lamp", stock=1)
    async with (
        open_socket(client, INVENTORY, products="brass-lamp") as first,
        open_socket(client, "/ws/orders", token="whatever") as second,
    ):
        await receive(first)
        ctx.sockets.close_all(1001, "server shutting down")
        assert await close_code(first) == 1001
        assert await close_code(second) in (1001, 4401)  # it may have been refused first
    async with open_socket(client, INVENTORY, products="brass-lamp") as late:
        assert await close_code(late) == 1001


async def test_metrics_count_open_sockets_messages_and_drops(
    client: ApiClient, ctx: AppContext
) -> None:
    await add_product(ctx, "brass-lamp", stock=1)
    async with open_socket(client, INVENTORY, products="brass-lamp") as watcher:
        await receive(watcher)
        await ctx.hub.publish(
            StockChanged(product="brass-lamp", stock=0, in_stock=False, at=utcnow())
        )
        await receive(watcher)
        text = (await client.get("ops:metrics")).body.decode()
    assert re.search(r'^shop_ws_open_sockets\{channel="inventory"\} 1\.0$', text, re.M)
    assert re.search(r'^shop_ws_messages_sent_total\{channel="inventory"\} 2\.0$', text, re.M)
    assert "shop_ws_slow_consumers_dropped_total" in text
    await poll(
        lambda: metric(ctx, "shop_ws_open_sockets") == 0, timeout=WAIT, failure="sockets open"
    )
