"""The engine and sessions bound every wait on the database by DATABASE_TIMEOUT."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, AsyncSessionTransaction
from sqlalchemy.orm import Session
from sqlalchemy.util import await_
from tornado.ioloop import IOLoop

from core.context import AppContext
from core.db import (
    BoundedSession,
    BoundedTransaction,
    CallDeadline,
    DatabaseTimeout,
    make_engine,
)
from core.direct import Statement
from tests.client import ApiClient
from tests.conftest import TEST_DATABASE_URL
from tests.order_factories import add_product, place_order, shopper_with_cart, stock_of
from tests.processes import poll

on_sqlite = pytest.mark.skipif(
    TEST_DATABASE_URL is not None, reason="an SQLite setting: runs without TEST_DATABASE_URL"
)
# Coroutine methods that reach the database only through another one that is bounded.
_BOUNDED_THROUGH_CLOSE = {"__aenter__", "__aexit__", "aclose", "close_all"}


@pytest.mark.mariadb
@pytest.mark.settings(database_timeout=2.5)
async def test_mariadb_connections_carry_the_timeout_as_max_statement_time(ctx: AppContext) -> None:
    async with ctx.engine.connect() as connection:  # the engine alone: no asyncio deadline
        assert await connection.scalar(text("SELECT @@max_statement_time")) == 2.5


@pytest.mark.mariadb
@pytest.mark.settings(database_timeout=0.5)
async def test_a_statement_running_past_the_timeout_is_aborted_by_mariadb(
    ctx: AppContext,
) -> None:
    started = time.monotonic()
    async with ctx.engine.connect() as connection:
        with pytest.raises(OperationalError, match="max_statement_time"):
            await connection.execute(text("SELECT SLEEP(5)"))
    assert time.monotonic() - started < 0.5 + 2.5  # well short of the statement's 5 s


@pytest.mark.mariadb
async def test_transactions_without_a_session_read_committed_rows_as_sessions_do(
    ctx: AppContext,
) -> None:
    async with ctx.transactions() as db:
        assert await db.scalar(Statement(text("SELECT @@tx_isolation"))) == "READ-COMMITTED"
        assert await db.scalar(Statement(text("SELECT @@max_statement_time"))) == 5


@pytest.mark.mariadb
@pytest.mark.settings(checkout_pool_size=2)
async def test_transactions_take_at_most_the_checkout_pool_size_of_connections(
    ctx: AppContext,
) -> None:
    connection_id = Statement(text("SELECT CONNECTION_ID()"))
    release = asyncio.Event()
    seen: list[int] = []

    async def hold() -> None:
        async with ctx.transactions() as db:
            seen.append(await db.scalar(connection_id))
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(3)]

    async def two_in() -> bool:
        return len(seen) == 2

    await poll(two_in, timeout=5, failure="two transactions never started")
    # No later event to wait for: the third must not start. Its task has had 0.1 s of
    # turns to do so, and the release below shows it was alive and waiting.
    await asyncio.sleep(0.1)
    assert len(seen) == 2 and ctx.transactions.in_use == 2  # the third waits for one
    release.set()
    await asyncio.gather(*holders)
    assert len(seen) == 3 and seen[2] in seen[:2]  # it got one of the two back
    assert ctx.transactions.in_use == 0


@pytest.mark.mariadb
@pytest.mark.settings(checkout_pool_size=1, database_timeout=0.5)
async def test_waiting_for_a_checkout_connection_gives_up_after_the_timeout(
    ctx: AppContext,
) -> None:
    async with ctx.transactions():
        started = time.monotonic()
        with pytest.raises(DatabaseTimeout):
            async with ctx.transactions():
                pass
        assert time.monotonic() - started < 0.5 + 2.5  # the timeout, not a wait forever
    async with ctx.transactions() as db:  # the connection given back serves the next
        assert await db.scalar(Statement(text("SELECT 1"))) == 1


@pytest.mark.mariadb
@pytest.mark.settings(checkout_pool_size=1)
async def test_a_checkout_connection_discarded_frees_its_place_at_once(ctx: AppContext) -> None:
    taken = asyncio.Event()

    async def fail_on_a_lost_connection() -> None:
        with pytest.raises(ConnectionError):
            async with ctx.transactions() as db:
                taken.set()
                # The next transaction queues meanwhile: it asks on the loop's next turn;
                # one that asked late would find the place free and show no wait at all.
                await asyncio.sleep(0.2)
                await db.invalidate()
                raise ConnectionError("lost")

    async def next_transaction() -> float:
        await taken.wait()
        started = time.monotonic()
        async with ctx.transactions() as db:
            assert await db.scalar(Statement(text("SELECT 1"))) == 1
        return time.monotonic() - started

    _, waited = await asyncio.gather(fail_on_a_lost_connection(), next_transaction())
    # Not freed, the place would come back only with the next transaction's 5 s timeout.
    assert waited < 2.5, f"waited {waited:.2f} s for the place of the connection discarded"


@pytest.fixture
def one_connection_engine(io_loop: IOLoop) -> Iterator[AsyncEngine]:
    """An engine of the test's own, so that its pool holds only the test's connections
    (a connection handed back is the one the next checkout gets)."""
    assert TEST_DATABASE_URL is not None  # only tests on MariaDB use it
    engine = make_engine(TEST_DATABASE_URL, timeout=5)
    yield engine
    io_loop.run_sync(engine.dispose)


def _pooled(engine: Engine, statement: str) -> tuple[Any, ...]:
    """Run `statement` on a pooled DBAPI connection, with no SQLAlchemy transaction
    around it, then hand the connection back to the pool; (connection id, rows)."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT CONNECTION_ID()")
        row = cursor.fetchone()
        assert row is not None
        (connection_id,) = row
        cursor.execute(statement)
        rows = tuple(cursor.fetchall())
        cursor.close()
    finally:
        connection.close()
    return connection_id, rows


@pytest.mark.mariadb
async def test_a_connection_returned_inside_a_transaction_is_rolled_back(
    one_connection_engine: AsyncEngine,
) -> None:
    async with one_connection_engine.connect() as connection:
        first, _ = await connection.run_sync(lambda c: _pooled(c.engine, "START TRANSACTION"))
        again, rows = await connection.run_sync(
            lambda c: _pooled(c.engine, "SELECT @@in_transaction")
        )
    assert again == first and rows == ((0,),)


@pytest.mark.mariadb
async def test_a_connection_returned_after_a_commit_is_not_sent_a_rollback(
    one_connection_engine: AsyncEngine,
) -> None:
    counts = []
    for _ in range(3):
        async with one_connection_engine.begin() as connection:
            connection_id = await connection.scalar(text("SELECT CONNECTION_ID()"))
            status = await connection.execute(text("SHOW SESSION STATUS LIKE 'Com_rollback'"))
            counts.append((connection_id, int(status.one()[1])))
    assert counts[0] == counts[1] == counts[2]


async def _pings_so_far(engine: AsyncEngine) -> tuple[int, int]:
    """(connection id, pings it has answered): MariaDB counts COM_PING among its
    session's admin commands."""
    async with engine.begin() as connection:
        connection_id = await connection.scalar(text("SELECT CONNECTION_ID()"))
        status = await connection.execute(text("SHOW SESSION STATUS LIKE 'Com_admin_commands'"))
        return connection_id, int(status.one()[1])


@pytest.mark.mariadb
async def test_a_connection_handed_back_moments_ago_is_not_pinged(
    one_connection_engine: AsyncEngine,
) -> None:
    counts = [await _pings_so_far(one_connection_engine) for _ in range(3)]
    assert counts[0] == counts[1] == counts[2]


@pytest.mark.mariadb
async def test_a_connection_idle_past_the_window_is_pinged_before_use(
    one_connection_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.db.PING_AFTER_IDLE_SECONDS", 0.1)
    first_id, first_pings = await _pings_so_far(one_connection_engine)
    await asyncio.sleep(0.2)  # idle past the window: time passing is what is tested
    again_id, pings = await _pings_so_far(one_connection_engine)
    assert (again_id, pings) == (first_id, first_pings + 1)


@on_sqlite
@pytest.mark.settings(database_timeout=2.5)
async def test_sqlite_busy_timeout_follows_the_setting(ctx: AppContext) -> None:
    async with ctx.engine.connect() as connection:
        assert await connection.scalar(text("PRAGMA busy_timeout")) == 2500


@pytest.fixture
def sqlite_writer(ctx: AppContext) -> Iterator[sqlite3.Connection]:
    """Another connection to the test's SQLite file, in autocommit mode (no lock held)."""
    path = make_url(ctx.settings.database_url).database or ""
    writer = sqlite3.connect(path, isolation_level=None)
    yield writer
    writer.close()


@on_sqlite
@pytest.mark.settings(database_timeout=0.5)
async def test_a_checkout_queued_behind_a_writer_holding_sqlite_too_long_gives_503(
    client: ApiClient, ctx: AppContext, sqlite_writer: sqlite3.Connection
) -> None:
    buyer = await shopper_with_cart(client, ctx, stock=5)
    sqlite_writer.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    started = time.monotonic()
    response = await place_order(client, buyer.token)
    assert time.monotonic() - started < 0.5 + 2.5  # the timeout, and headroom for load
    assert response.status == 503, response.body
    assert response.error_code == "service_unavailable"
    sqlite_writer.execute("ROLLBACK")

    assert (await place_order(client, buyer.token)).status == 201
    assert await stock_of(ctx, "brass-lamp") == 4


def waits_forever(_session: Session) -> None:
    """A round trip to a server that never answers (run in SQLAlchemy's greenlet)."""
    await_(asyncio.Event().wait())


@pytest.mark.settings(database_timeout=0.3)
async def test_a_session_call_with_no_answer_raises_database_timeout(ctx: AppContext) -> None:
    async with ctx.sessionmaker() as session:
        started = time.monotonic()
        with pytest.raises(DatabaseTimeout):
            await session.run_sync(waits_forever)
        assert time.monotonic() - started < 0.3 + 2.5  # never answered: it would wait forever
    await add_product(ctx)  # the next sessions work as before


@pytest.mark.parametrize(
    ("bounded", "plain"),
    [(BoundedSession, AsyncSession), (BoundedTransaction, AsyncSessionTransaction)],
)
def test_every_awaitable_call_of_a_session_is_bounded(bounded: type, plain: type) -> None:
    """A coroutine method SQLAlchemy adds in a later version must be bounded too."""
    unbounded = [
        name
        for name, method in inspect.getmembers(plain, inspect.iscoroutinefunction)
        if name not in _BOUNDED_THROUGH_CLOSE and getattr(bounded, name) is method
    ]
    assert unbounded == []


# --- CallDeadline: each call of a session within the timeout, with one timer ---------


async def test_a_call_running_past_the_deadline_raises_database_timeout() -> None:
    deadline = CallDeadline(0.1)
    started = time.monotonic()
    with pytest.raises(DatabaseTimeout, match="within 0.1 s"):
        await deadline.run(asyncio.sleep(5))
    assert time.monotonic() - started < 0.1 + 2.5  # well short of the call's 5 s


async def test_each_call_gets_the_whole_timeout_whatever_ran_before() -> None:
    deadline = CallDeadline(0.8)
    await deadline.run(asyncio.sleep(0))  # arms the timer for 0.8 s from now
    await asyncio.sleep(0.5)  # time passing is what is tested here
    # Ends at least 0.9 s after the first call began, within its own 0.8 s (0.4 s of
    # headroom for a loaded machine).
    assert await deadline.run(_after(0.4, "answered")) == "answered"
    # The timer re-armed for that call lapses with it: a later late call still fails.
    with pytest.raises(DatabaseTimeout):
        await deadline.run(asyncio.sleep(5))
    assert await deadline.run(_after(0, "fine again")) == "fine again"


async def test_a_call_nested_in_another_of_the_same_task_is_bounded_by_the_outer_one() -> None:
    deadline = CallDeadline(0.1)

    async def outer() -> None:
        await deadline.run(asyncio.sleep(5))

    with pytest.raises(DatabaseTimeout):
        await deadline.run(outer())


async def test_calls_of_two_tasks_in_flight_at_once_are_each_bounded() -> None:
    deadline = CallDeadline(0.1)
    in_flight = asyncio.Event()
    first = asyncio.ensure_future(deadline.run(_signal_then_sleep(in_flight, 5)))
    await in_flight.wait()  # the first task's call is in flight
    with pytest.raises(DatabaseTimeout):
        await deadline.run(asyncio.sleep(5))
    with pytest.raises(DatabaseTimeout):
        await first


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadline = CallDeadline(5)
    in_flight = asyncio.Event()
    call = asyncio.ensure_future(deadline.run(_signal_then_sleep(in_flight, 5)))
    await in_flight.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await deadline.run(_after(0, "next call")) == "next call"


async def _signal_then_sleep(started: asyncio.Event, seconds: float) -> None:
    started.set()
    await asyncio.sleep(seconds)


async def _after(seconds: float, value: str) -> str:
    await asyncio.sleep(seconds)
    return value
