"""`Transactions`: transactions of Direct statements with no session around them, on a
pool of connections: the driver's own on MariaDB/MySQL (`DriverPool`), the engine's on
SQLite (`EnginePool`)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiomysql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from core.db import (
    ISOLATION_LEVEL,
    RECYCLE_SECONDS,
    CallDeadline,
    explicit_begin,
    mysql_statement_bound,
)
from core.direct.executor import Direct
from core.direct.statement import Statement
from core.private_apis import wake_pool_waiters


class Transactions:
    """Transactions of Direct statements with no session around them:
    `async with transactions() as db`, as a sessionmaker makes sessions.

    For a hot path whose every statement is a Direct one (checkout): a session's
    begin, connection, commit and close (six greenlet switches and a task) cost as
    much CPU as a few of its statements. The transaction begins as a session's does
    (BEGIN IMMEDIATE on SQLite, core/db.py), commits when the block ends and rolls back
    when it raises. Each round trip, taking a connection too, is bounded by `timeout`.

    Connections: on MariaDB/MySQL, a pool of the driver's own (`DriverPool`), set up as
    the engine's connections are; on SQLite, the engine's pool.
    """

    def __init__(self, engine: AsyncEngine, *, timeout: float, pool_size: int) -> None:
        self._engine = engine
        self._timeout = timeout
        begin = explicit_begin(engine.dialect)
        self._begin = None if begin is None else Statement(text(begin))
        self._connections: DriverPool | EnginePool = (
            EnginePool(engine)
            if engine.dialect.name == "sqlite"
            else DriverPool(engine, size=pool_size, timeout=timeout)
        )

    @property
    def in_use(self) -> int:
        """Connections taken by transactions under way."""
        return self._connections.in_use

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[Direct]:
        deadline = CallDeadline(self._timeout)
        lease = await deadline.run(self._connections.take())
        db = Direct(
            lease.driver, self._engine.dialect, deadline=deadline, invalidate=lease.invalidate
        )
        try:
            if self._begin is not None:
                await db.write(self._begin, {})
            yield db
            await db.commit()
        except BaseException:
            await _roll_back(db)
            raise
        finally:
            await lease.give_back()

    async def close(self) -> None:
        """Close the connections of a pool of their own (the engine closes its own)."""
        await self._connections.close()


@dataclass(frozen=True)
class _Lease:
    driver: Any  # the driver's connection
    invalidate: Callable[[BaseException | None], Awaitable[Any]]  # never to be reused
    give_back: Callable[[], Awaitable[Any]]  # to its pool, or closed when invalidated


class EnginePool:
    """Connections of the engine's pool: its checkout and checkin run as for a session,
    its ping and reset included."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.in_use = 0

    async def take(self) -> _Lease:
        pooled = await self._engine.raw_connection()
        self.in_use += 1
        return _Lease(
            pooled.driver_connection,
            invalidate=partial(greenlet_spawn, pooled.invalidate),
            give_back=partial(self._give_back, pooled),
        )

    async def _give_back(self, pooled: PoolProxiedConnection) -> None:
        self.in_use -= 1
        await greenlet_spawn(pooled.close)

    async def close(self) -> None:
        pass  # the engine's dispose() closes them


class DriverPool:
    """Up to `size` MariaDB/MySQL connections in aiomysql's own pool, set up as the
    engine's are (same arguments, isolation level, server-side statement bound).

    Under 32 concurrent checkouts, the engine's pool (its overflow connections closed
    and opened again, a greenlet switch to take and to give back each) cost a tenth of
    checkout's CPU, see docs/decisions.md. aiomysql's pool drops a connection that the server or
    the network closed while it was idle before handing it out (the socket has seen its
    end), and one older than RECYCLE_SECONDS; a connection whose round trip failed is
    closed and never handed out again.
    """

    def __init__(self, engine: AsyncEngine, *, size: int, timeout: float) -> None:
        self._engine = engine
        self._size = size
        self._timeout = timeout
        self._pool: aiomysql.Pool | None = None
        self._opening = asyncio.Lock()
        self._session_statements: tuple[str, ...] = ()  # known once the server is met
        self._prepared: weakref.WeakSet[aiomysql.Connection] = weakref.WeakSet()

    @property
    def in_use(self) -> int:
        return 0 if self._pool is None else self._pool.size - self._pool.freesize

    async def take(self) -> _Lease:
        pool = self._pool or await self._open()
        connection = await pool.acquire()
        try:
            if connection not in self._prepared:
                async with connection.cursor() as cursor:
                    for statement in self._session_statements:
                        await cursor.execute(statement)
                self._prepared.add(connection)
        except BaseException:
            connection.close()
            await self._give_back(pool, connection)
            raise
        return _Lease(
            connection,
            invalidate=partial(self._invalidate, connection),
            give_back=partial(self._give_back, pool, connection),
        )

    async def _open(self) -> aiomysql.Pool:
        async with self._opening:
            if self._pool is None:
                # The engine connects once first: its dialect meets the server, which
                # decides how statements compile and how the session is set up.
                async with self._engine.connect():
                    pass
                dialect = self._engine.dialect
                _, arguments = dialect.create_connect_args(self._engine.url)
                self._session_statements = (
                    f"SET SESSION TRANSACTION ISOLATION LEVEL {ISOLATION_LEVEL}",
                    mysql_statement_bound(dialect, self._timeout),
                )
                self._pool = await aiomysql.create_pool(
                    minsize=0,
                    maxsize=self._size,
                    pool_recycle=RECYCLE_SECONDS,
                    autocommit=False,
                    connect_timeout=self._timeout,
                    **arguments,
                )
        return self._pool

    @staticmethod
    async def _invalidate(connection: aiomysql.Connection, _error: BaseException | None) -> None:
        connection.close()

    @staticmethod
    async def _give_back(pool: aiomysql.Pool, connection: aiomysql.Connection) -> None:
        # A connection closed (invalidated) or still in a transaction is not kept.
        pool.release(connection)
        if connection.closed:
            # aiomysql wakes a checkout waiting for a connection only when one is kept;
            # one dropped frees a place all the same (aiomysql 0.3.2).
            await wake_pool_waiters(pool)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            await self._pool.wait_closed()


async def _roll_back(db: Direct) -> None:
    """Roll back after the block failed; a connection that cannot is discarded (the
    block's own error is the one raised)."""
    if db.invalidated:
        return
    try:
        await db.rollback()
    except Exception:
        await db.invalidate()
