"""The fence around dependencies' private APIs (core/private_apis.py): it refuses other
versions, and what it reaches for exists in the versions installed. These run on every
backend, SQLite included; the behaviour each function stands for is tested on MariaDB
in tests/test_db.py and tests/test_database_faults.py, and on websockets everywhere."""

from __future__ import annotations

import asyncio

import aiomysql
import pytest
import tornado.web

from core import private_apis
from core.private_apis import WRITTEN_FOR, PrivateApiVersionError, check_versions


def test_another_version_of_a_library_is_refused_by_name() -> None:
    installed = {**WRITTEN_FOR, "aiomysql": "0.4.0"}
    with pytest.raises(PrivateApiVersionError, match=r"aiomysql 0\.4\.0 \(written for 0\.3\.2\)"):
        check_versions(installed)


def test_aiomysql_pools_have_the_wakeup_used_for_dropped_connections() -> None:
    assert asyncio.iscoroutinefunction(aiomysql.Pool._wakeup)


async def test_a_connection_that_never_connected_counts_as_closed_by_its_peer() -> None:
    connection = aiomysql.Connection(host="127.0.0.1")  # not connected: no reader yet
    assert private_apis.closed_by_peer(connection)
    reader = aiomysql.connection._StreamReader()  # the reader aiomysql gives a connection
    connection._reader = reader
    assert not private_apis.closed_by_peer(connection)
    reader.feed_eof()
    assert private_apis.closed_by_peer(connection)


def test_tornado_still_names_its_handler_delegate() -> None:
    assert private_apis.HandlerDelegate is tornado.web._HandlerDelegate
    assert hasattr(tornado.web.Application, "get_handler_delegate")
