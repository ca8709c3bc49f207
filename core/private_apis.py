"""Every use of a dependency's private API, in one place, for the versions checked here.

Each was measured or needed (see docs/architecture.md, "Private APIs"), and none is
promised by its library: an upgrade may rename or change it without notice. So this
module refuses to import under any other version of those libraries, and every run,
the SQLite test suite included, fails at once instead of misbehaving later. After an
upgrade: read each function against the new release, then update `WRITTEN_FOR`.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import tornado.web
from tornado.iostream import IOStream
from tornado.websocket import WebSocketHandler

# The releases each function below was written and tested against.
WRITTEN_FOR = {"aiomysql": "0.3.2", "tornado": "6.6.1"}


class PrivateApiVersionError(RuntimeError):
    """A dependency whose private API is used here is not at the version checked."""


def check_versions(installed: dict[str, str] | None = None) -> None:
    """Raise PrivateApiVersionError naming each library not at its WRITTEN_FOR version."""
    found = installed or {name: version(name) for name in WRITTEN_FOR}
    wrong = [
        f"{name} {found[name]} (written for {expected})"
        for name, expected in WRITTEN_FOR.items()
        if found[name] != expected
    ]
    if wrong:
        raise PrivateApiVersionError(
            "core/private_apis.py uses private APIs of " + ", ".join(wrong)
        )


check_versions()

# Tornado's routing result: what `Application.find_handler` returns and
# `get_handler_delegate` makes (the public API types it only as HTTPMessageDelegate).
HandlerDelegate = tornado.web._HandlerDelegate


async def wake_pool_waiters(pool: Any) -> None:
    """Wake a checkout waiting on aiomysql's pool after a connection was dropped rather
    than kept: aiomysql wakes waiters only when one is kept, although a dropped one
    frees a place all the same."""
    await pool._wakeup()


def closed_by_peer(connection: Any) -> bool:
    """Whether an aiomysql connection's socket has seen its end (the server or the
    network closed it), by the checks aiomysql's own pool makes before handing one out."""
    reader = connection._reader
    return bool(reader is None or reader.at_eof() or reader.exception() or reader.eof_received)


def websocket_stream(handler: WebSocketHandler) -> IOStream | None:
    """The open websocket's IOStream, to write whole pre-built frames to (each event is
    framed once for every socket); None once the connection is gone."""
    connection = handler.ws_connection
    return None if connection is None else connection.stream
