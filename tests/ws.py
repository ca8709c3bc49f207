"""Real websocket clients (the `websockets` package) against the test server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from core.sockets import OpenSockets
from core.websocket import GOING_AWAY
from tests.client import ApiClient

WAIT = 5.0  # seconds any single expected message may take


def socket_url(client: ApiClient, path: str, **params: Any) -> str:
    query = urlencode({name: value for name, value in params.items() if value is not None})
    port = client.http.get_http_port()
    return f"ws://127.0.0.1:{port}{path}" + (f"?{query}" if query else "")


@asynccontextmanager
async def open_socket(
    client: ApiClient, path: str, *, origin: str | None = None, **params: Any
) -> AsyncIterator[ClientConnection]:
    """A connected client; `params` become the query string (None values left out)."""
    url = socket_url(client, path, **params)
    async with connect(
        url, origin=None if origin is None else Origin(origin), proxy=None, open_timeout=WAIT
    ) as socket:
        yield socket


async def receive(socket: ClientConnection, timeout: float = WAIT) -> dict[str, Any]:
    """The next message, decoded."""
    frame = await asyncio.wait_for(socket.recv(), timeout)
    message: dict[str, Any] = json.loads(frame)
    return message


async def receive_many(socket: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [await receive(socket) for _ in range(count)]


async def rest_before_close(sockets: OpenSockets, socket: ClientConnection) -> list[Any]:
    """Close every socket from the server's side, then what `socket` receives before
    that close frame. The server writes the close after everything it has handed the
    socket already, so `[]` is a positive signal that no further message was on its
    way (call it once the last event that could have sent one has been received)."""
    sockets.drop_all(GOING_AWAY, "the test has heard enough")
    rest = []
    try:
        async with asyncio.timeout(WAIT):
            while True:
                rest.append(json.loads(await socket.recv()))
    except ConnectionClosed:
        return rest


async def close_code(socket: ClientConnection, timeout: float = WAIT) -> int | None:
    """The code the server closed the socket with (messages before it are skipped)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await socket.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
