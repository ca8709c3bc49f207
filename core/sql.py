"""Core statements sent straight to the driver, inside a session's transaction or in
one of their own (`Transactions`).

Through `session.execute`, a statement costs about 200 us of SQLAlchemy's execution
path (greenlet switch, execution context, result wrapping) on top of the driver's own
100 us; checkout sends a dozen per order, and that was most of its CPU. The statements
here are still built with Core and compiled once per dialect with their types' bind and
result processing, then sent on the driver's connection of the session's transaction,
so BEGIN, COMMIT, the pool and rollback stay the session's. Each statement is bounded
by the session's database timeout (its CallDeadline), and the driver's errors are
raised as SQLAlchemy's (IntegrityError, OperationalError...) exactly as
`session.execute` raises them.

Only for statements whose every value is given: a column default computed in Python
(`default=`, `onupdate=`) is not applied here, and compiling refuses such a statement.
The engine's cursor events do not fire for them either: their listeners (Sentry's
SQLAlchemy integration among them) expect the execution context skipped here.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiomysql
from sqlalchemy import text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.util import greenlet_spawn

from core.db import (
    ISOLATION_LEVEL,
    RECYCLE_SECONDS,
    CallDeadline,
    explicit_begin,
    mysql_statement_bound,
)
from core.private_apis import wake_pool_waiters

Processor = Callable[[Any], Any] | None
Row = tuple[Any, ...]
# Where a session keeps its Direct between calls of one transaction.
_SESSION_KEY = "direct_sql"


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order the SQL takes them
    # (position, processor) of the parameters whose type converts them for the driver
    bind_processors: tuple[tuple[int, Callable[[Any], Any]], ...]
    result_processors: tuple[Processor, ...]  # empty when no column needs one

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = [params[name] for name in self.names]
        for position, process in self.bind_processors:
            values[position] = process(values[position])
        return values

    def row(self, values: Sequence[Any]) -> Row:
        if not self.result_processors:
            return tuple(values)
        return tuple(
            value if process is None else process(value)
            for value, process in zip(values, self.result_processors, strict=True)
        )


class Statement:
    """A Core statement to run with `Direct`; compiled on first use, per dialect and per
    set of parameter names (an INSERT's columns are the names it is given)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: weakref.WeakKeyDictionary[Dialect, dict[tuple[str, ...], _Compiled]]
        self._compiled = weakref.WeakKeyDictionary()

    def compiled(self, dialect: Dialect, names: tuple[str, ...]) -> _Compiled:
        forms = self._compiled.get(dialect)
        if forms is None:
            forms = self._compiled[dialect] = {}
        form = forms.get(names)
        if form is None:
            form = forms[names] = self._compile(dialect, names)
        return form

    def _compile(self, dialect: Dialect, names: tuple[str, ...]) -> _Compiled:
        compiled: Any = self.statement.compile(dialect=dialect, column_keys=list(names))
        defaulted = [*compiled.insert_prefetch, *compiled.update_prefetch]
        if defaulted:
            raise ValueError(
                f"give {', '.join(column.name for column in defaulted)} a value: "
                "Python-side column defaults are not applied here"
            )
        positions = tuple(compiled.positiontup or ())
        if any(compiled.binds[name].expanding for name in positions):
            raise ValueError("expanding parameters are not supported: bind each value")
        columns = self.statement.selected_columns if isinstance(self.statement, Select) else ()
        result_processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        bind_processors = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in positions
        ]
        return _Compiled(
            sql=compiled.string,
            names=positions,
            bind_processors=tuple(
                (position, process)
                for position, process in enumerate(bind_processors)
                if process is not None
            ),
            result_processors=result_processors if any(result_processors) else (),
        )


class Direct:
    """The driver's connection of one transaction: a session's (`direct(session)`) or
    one of its own on the pool (`Transactions`). See the module docstring."""

    def __init__(
        self,
        driver: Any,
        dialect: Dialect,
        *,
        deadline: CallDeadline | None,
        invalidate: Callable[[BaseException | None], Awaitable[Any]],
        marker: object = None,
    ) -> None:
        self._driver = driver  # aiomysql's or aiosqlite's connection
        self._dialect = dialect
        self._deadline = deadline
        self._invalidate = invalidate  # discards the connection: the pool never reuses it
        self._cursor: Any = None
        self.invalidated = False
        self.marker = marker  # the session transaction it belongs to

    async def rows(
        self, statement: Statement, params: Mapping[str, Any] | None = None
    ) -> list[Row]:
        _, rows = await self._execute(statement, params or {}, fetch=True)
        return rows

    async def scalar(self, statement: Statement, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row; None without rows."""
        rows = await self.rows(statement, params)
        return rows[0][0] if rows else None

    async def write(self, statement: Statement, params: Mapping[str, Any]) -> int:
        """The rows changed."""
        cursor, _ = await self._execute(statement, params)
        return int(cursor.rowcount)

    async def insert(self, statement: Statement, params: Mapping[str, Any]) -> int:
        """The id the database gave the row inserted."""
        cursor, _ = await self._execute(statement, params)
        return int(cursor.lastrowid)

    async def write_many(self, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> int:
        """The statement once per mapping of `rows` (all with the same names); the rows
        changed."""
        cursor, _ = await self._execute(statement, rows, many=True)
        return int(cursor.rowcount)

    async def _execute(
        self, statement: Statement, params: Any, *, many: bool = False, fetch: bool = False
    ) -> tuple[Any, list[Row]]:
        """(the cursor: its rowcount and lastrowid are this statement's until the next;
        the rows fetched, when `fetch`)."""
        compiled = statement.compiled(self._dialect, tuple(params[0] if many else params))
        if self._cursor is None:
            # One cursor for the whole transaction: each execute starts it afresh, and
            # nothing is left to close once the results are fetched (they are buffered).
            self._cursor = await self._driver.cursor()
        fetched = await self._bounded(self._send(compiled, params, many, fetch), compiled.sql)
        return self._cursor, [compiled.row(values) for values in fetched]

    async def _send(self, compiled: _Compiled, params: Any, many: bool, fetch: bool) -> Any:
        if many:
            await self._cursor.executemany(compiled.sql, [compiled.arguments(p) for p in params])
        else:
            await self._cursor.execute(compiled.sql, compiled.arguments(params))
        return await self._cursor.fetchall() if fetch else ()

    async def commit(self) -> None:
        await self._bounded(self._driver.commit(), "COMMIT")

    async def rollback(self) -> None:
        await self._bounded(self._driver.rollback(), "ROLLBACK")

    async def invalidate(self, error: BaseException | None = None) -> None:
        if not self.invalidated:
            self.invalidated = True
            await self._invalidate(error)

    async def _bounded(self, call: Awaitable[Any], sql: str) -> Any:
        """Await `call` (a statement's round trips) within the timeout, raising the
        driver's errors as SQLAlchemy's. A connection whose call failed mid-way
        (cancelled, timed out, disconnected) is invalidated, as SQLAlchemy does, so the
        pool never hands it out again."""
        dbapi = self._dialect.loaded_dbapi
        try:
            return await (call if self._deadline is None else self._deadline.run(call))
        except dbapi.Error as error:
            lost = self._dialect.is_disconnect(error, None, None)
            if lost:
                await self.invalidate(error)
            raise DBAPIError.instance(
                sql,
                None,
                error,
                dbapi.Error,
                hide_parameters=True,
                connection_invalidated=lost,
                dialect=self._dialect,
            ) from error
        except BaseException:
            await self.invalidate()
            raise


async def direct(session: AsyncSession) -> Direct:
    """The driver's connection of the session's current transaction (it must have
    begun); the same object for every call within that transaction.

    Objects added to or changed in the session are flushed first, as an ORM statement
    would autoflush them, so rows written here may refer to them.
    """
    transaction = session.sync_session.get_transaction()
    if transaction is None:
        raise RuntimeError("direct SQL runs inside a transaction: begin one first")
    if session.new or session.dirty or session.deleted:
        await session.flush()
    cached = session.info.get(_SESSION_KEY)
    if isinstance(cached, Direct) and cached.marker is transaction:
        return cached
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    found = Direct(
        raw.driver_connection,
        connection.dialect,
        deadline=getattr(session, "deadline", None),
        invalidate=connection.invalidate,
        marker=transaction,
    )
    session.info[_SESSION_KEY] = found
    return found


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

    def __init__(
        self, engine: AsyncEngine, *, timeout: float, info: Mapping[str, Any], pool_size: int
    ) -> None:
        self._engine = engine
        self._timeout = timeout
        begin = explicit_begin(engine.dialect)
        self._begin = None if begin is None else Statement(text(begin))
        self._connections: DriverPool | EnginePool = (
            EnginePool(engine)
            if engine.dialect.name == "sqlite"
            else DriverPool(engine, size=pool_size, timeout=timeout)
        )
        self.info = info  # for after_commit(), as a session's

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
