"""`Direct`: sends `Statement`s straight to the driver's connection of one transaction,
a session's (`direct(session)`) or one of its own (`Transactions`, pools.py).

Through `session.execute`, a statement costs about 200 us of SQLAlchemy's execution
path (greenlet switch, execution context, result wrapping) on top of the driver's own
100 us; checkout sends a dozen per order, and that was most of its CPU. Each statement
here is bounded by the transaction's database timeout (its CallDeadline), and the
driver's errors are raised as SQLAlchemy's (IntegrityError, OperationalError...)
exactly as `session.execute` raises them. The engine's cursor events do not fire for
these statements: their listeners (Sentry's SQLAlchemy integration among them) expect
the execution context skipped here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import (
    CallDeadline,
)
from core.direct.statement import Row, Statement, _Compiled

_SESSION_KEY = "direct_sql"


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
