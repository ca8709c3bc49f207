"""Async engine and session factory for SQLite (embedded default) and MariaDB/MySQL.

Every wait on the database is bounded by DATABASE_TIMEOUT (see README, "When the
database does not answer"): the driver bounds connecting, the pool bounds checkout,
MariaDB bounds each statement and SQLite each wait for its lock. None of those notices
a server that hangs with its connections open, so every round trip of a session also
runs under an asyncio deadline (`BoundedSession`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.dialects.mysql.base import MySQLDialect
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolResetState

from core.private_apis import closed_by_peer

T = TypeVar("T")

# READ COMMITTED: stock changes rely on guarded UPDATEs, never on a repeatable snapshot.
ISOLATION_LEVEL = "READ COMMITTED"
# A pooled connection older than this is closed rather than used (servers drop idle
# connections after wait_timeout, 8 hours by default).
RECYCLE_SECONDS = 3600
# MySQL error codes worth a retry: deadlock found, lock wait timeout exceeded.
_RETRYABLE_MYSQL_ERRORS = {1213, 1205}
_MAX_ATTEMPTS = 4
# A pooled connection idle for longer than this is pinged before use; one handed back
# more recently has just answered, and skips the round trip (as HikariCP's
# aliveBypassWindowMs does).
PING_AFTER_IDLE_SECONDS = 1.0


class DatabaseTimeout(TimeoutError):
    """The database did not answer within DATABASE_TIMEOUT; the edge answers 503."""

    @classmethod
    def after(cls, seconds: float | None) -> DatabaseTimeout:
        return cls(f"no answer from the database within {seconds:g} s")


def make_engine(database_url: str, *, timeout: float | None) -> AsyncEngine:
    """Create the engine, tuned per backend (see docs/decisions.md).

    `timeout` (DATABASE_TIMEOUT, seconds) bounds connecting, pool checkout, each
    statement on MariaDB/MySQL and each lock wait on SQLite. None leaves statements
    unbounded (SQLite keeps sqlite3's default lock wait), for migrations, whose DDL may
    rightly run long.
    """
    url = make_url(database_url)
    # hide_parameters: statement values (emails, addresses) stay out of error messages,
    # so out of the logs and Sentry too.
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # sqlite3's `timeout` is its busy timeout: how long a writer queues for the lock.
        connect_args = {} if timeout is None else {"timeout": timeout}
        engine = create_async_engine(url, connect_args=connect_args, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    options: dict[str, Any] = {"isolation_level": ISOLATION_LEVEL, "hide_parameters": True}
    if timeout is not None:
        options.update(connect_args={"connect_timeout": timeout}, pool_timeout=timeout)
    # pool_reset_on_return=None: _reset_open_transactions decides instead, and
    # _ping_idle_connections stands for pool_pre_ping.
    engine = create_async_engine(
        url, pool_recycle=RECYCLE_SECONDS, pool_reset_on_return=None, **options
    )
    _reset_open_transactions(engine)
    _ping_idle_connections(engine)
    if timeout is not None:
        _bound_mysql_statements(engine, timeout)
    return engine


def _reset_open_transactions(engine: AsyncEngine) -> None:
    """Roll back a connection going back to the pool only when the server says a
    transaction is open on it.

    The pool's own reset sends a ROLLBACK every time, a round trip after each commit
    too. The server's status flags come with every reply and aiomysql keeps the last
    ones: they say whether there is anything to roll back.
    """

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, record: Any, state: PoolResetState) -> None:
        # A connection being dropped, or one already rolled back on close, needs nothing.
        if state.terminate_only or not state.asyncio_safe or state.transaction_was_reset:
            return
        if record.driver_connection.get_transaction_status():
            dbapi_connection.rollback()


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Replace a connection taken from the pool whose socket has seen the server or the
    network close it while it sat idle (as aiomysql's own pool does), and ping one idle
    there for over PING_AFTER_IDLE_SECONDS, replacing it when the ping fails: one closed
    while idle never fails a request.

    A connection that stops answering without being closed (a network that drops its
    packets), within that window, fails its next statement: the request answers 503
    and the connection is discarded.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:  # None: it was invalidated
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # A new connection has no idle_since: it has just been connected.
        idle_since = record.info.get("idle_since")
        if idle_since is None:
            return
        if closed_by_peer(record.driver_connection):
            raise DisconnectionError("closed while idle")
        if time.monotonic() - idle_since <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # whatever failed, the pool connects a new one
            raise DisconnectionError(f"ping failed: {error}") from error


def _bound_mysql_statements(engine: AsyncEngine, seconds: float) -> None:
    """Have the server abort any statement running longer than `seconds`, so one whose
    client gave up does not go on holding locks."""
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The dialect has met the server by now (its first-connect hook runs first).
        statement = mysql_statement_bound(dialect, seconds)
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()


def mysql_statement_bound(dialect: Dialect, seconds: float) -> str:
    """The statement that has a MariaDB/MySQL session abort statements running longer
    than `seconds` (the dialect must have met the server)."""
    # Only narrows the type: every non-SQLite URL here is MariaDB/MySQL.
    assert isinstance(dialect, MySQLDialect)  # nosec B101
    if dialect.is_mariadb:
        return f"SET SESSION max_statement_time = {seconds:.6f}"
    # MySQL's counterpart bounds SELECTs only, in milliseconds.
    return f"SET SESSION max_execution_time = {round(seconds * 1000)}"


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL and BEGIN IMMEDIATE (the busy timeout is sqlite3's `timeout`, see above).

    A deferred transaction that upgrades from read to write fails at once with
    "database is locked" when another writer holds the lock, whatever the timeout;
    taking the write lock at BEGIN makes concurrent writers queue instead.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(_SQLITE_BEGIN)


_SQLITE_BEGIN = "BEGIN IMMEDIATE"


def explicit_begin(dialect: Dialect) -> str | None:
    """The statement a transaction starts with on `dialect`, when it needs one: SQLite's
    BEGIN IMMEDIATE (see _configure_sqlite); MariaDB begins one implicitly."""
    return _SQLITE_BEGIN if dialect.name == "sqlite" else None


class CallDeadline:
    """Bounds each awaited call of one owner (a session) by `seconds`, raising
    DatabaseTimeout and cancelling the call where it waits.

    asyncio.timeout would do, but it arms and cancels a loop timer per call, and a
    checkout makes over a dozen. Here each call only notes when it must end, and one
    timer serves the owner's successive calls: when it fires it cancels the call in
    flight if that call is late, re-arms for the call's own end otherwise, and lapses
    when none is in flight (the next call arms it again). A call made within another of
    the same owner and task is bounded by the outer one.
    """

    __slots__ = ("seconds", "_timer", "_task", "_ends_at", "_expired")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None  # of the call in flight
        self._ends_at = 0.0
        self._expired = False

    async def run(self, call: Awaitable[T]) -> T:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a bounded call runs in a task")
        if self._task is task:
            return await call  # nested: the outer call is bounded already
        if self._task is not None:
            # Another task's call is in flight: this one gets a timer of its own.
            return await CallDeadline(self.seconds).run(call)
        loop = task.get_loop()
        self._ends_at = loop.time() + self.seconds
        self._task = task
        if self._timer is None:
            self._timer = loop.call_at(self._ends_at, self._check)
        cancelling = task.cancelling()
        try:
            return await call
        except asyncio.CancelledError as error:
            # Only the cancellation this deadline asked for becomes a timeout.
            if self._expired and task.uncancel() <= cancelling:
                raise DatabaseTimeout.after(self.seconds) from error
            raise
        finally:
            self._task = None
            self._expired = False

    def _check(self) -> None:
        self._timer = None
        if self._task is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._ends_at:
            self._timer = loop.call_at(self._ends_at, self._check)
        else:
            self._expired = True
            self._task.cancel()


def _bounded(method: Callable[..., Awaitable[T]]) -> Any:
    """`method` of a session or transaction, raising DatabaseTimeout when it has not
    finished within the session's database timeout (its `deadline`).

    The call is cancelled where it waits. SQLAlchemy invalidates a connection whose
    round trip was cancelled rather than return it to the pool, so the next checkout
    gets a working one (or a fresh connection) once the database answers again.
    """

    @wraps(method)
    async def bounded(self: Any, *args: Any, **kwargs: Any) -> T:
        deadline: CallDeadline = self.deadline
        return await deadline.run(method(self, *args, **kwargs))

    return bounded


class BoundedTransaction(AsyncSessionTransaction):
    """What `BoundedSession.begin()` returns: its commit and rollback are round trips
    too, bounded like the session's."""

    __slots__ = ("deadline",)

    def __init__(
        self, session: AsyncSession, *, deadline: CallDeadline, nested: bool = False
    ) -> None:
        super().__init__(session, nested)
        self.deadline = deadline  # the session's

    start = _bounded(AsyncSessionTransaction.start)
    commit = _bounded(AsyncSessionTransaction.commit)
    rollback = _bounded(AsyncSessionTransaction.rollback)
    __aexit__ = _bounded(AsyncSessionTransaction.__aexit__)


class BoundedSession(AsyncSession):
    """An AsyncSession each of whose awaitable calls (pool checkout and connecting
    included) raises DatabaseTimeout after `database_timeout` seconds.

    Only the database work is bounded, not the use case around it: a Stripe call or an
    event published after commit runs outside these calls and keeps its own timeouts.
    (A streamed result's later reads are outside them too; nothing here streams.)
    """

    def __init__(self, *args: Any, database_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = CallDeadline(database_timeout)

    def begin(self) -> AsyncSessionTransaction:
        return BoundedTransaction(self, deadline=self.deadline)

    def begin_nested(self) -> AsyncSessionTransaction:
        return BoundedTransaction(self, deadline=self.deadline, nested=True)

    execute = _bounded(AsyncSession.execute)
    scalar = _bounded(AsyncSession.scalar)
    scalars = _bounded(AsyncSession.scalars)
    get = _bounded(AsyncSession.get)
    get_one = _bounded(AsyncSession.get_one)
    stream = _bounded(AsyncSession.stream)
    stream_scalars = _bounded(AsyncSession.stream_scalars)
    merge = _bounded(AsyncSession.merge)
    merge_all = _bounded(AsyncSession.merge_all)
    delete = _bounded(AsyncSession.delete)
    delete_all = _bounded(AsyncSession.delete_all)
    flush = _bounded(AsyncSession.flush)
    refresh = _bounded(AsyncSession.refresh)
    run_sync = _bounded(AsyncSession.run_sync)
    connection = _bounded(AsyncSession.connection)
    commit = _bounded(AsyncSession.commit)
    rollback = _bounded(AsyncSession.rollback)
    close = _bounded(AsyncSession.close)
    reset = _bounded(AsyncSession.reset)
    invalidate = _bounded(AsyncSession.invalidate)


def make_sessionmaker(engine: AsyncEngine, *, timeout: float) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine` whose round trips give up after `timeout` seconds
    (BoundedSession)."""
    # expire_on_commit=False: objects stay readable after commit without a lazy load.
    sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
        engine,
        class_=BoundedSession,
        expire_on_commit=False,
        database_timeout=timeout,
    )
    return sessionmaker


def is_retryable(error: OperationalError) -> bool:
    """True for a deadlock or lock wait timeout, which a fresh attempt may pass."""
    args: tuple[Any, ...] = getattr(error.orig, "args", ())
    return bool(args) and args[0] in _RETRYABLE_MYSQL_ERRORS


async def retry_on_deadlock(unit_of_work: Callable[[], Awaitable[T]]) -> T:
    """Run a whole transaction again (a bounded number of times) after a deadlock.

    `unit_of_work` must open and commit its own transaction so each attempt starts clean.
    """
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        try:
            return await unit_of_work()
        except OperationalError as error:
            if attempt == _MAX_ATTEMPTS or not is_retryable(error):
                raise
            await asyncio.sleep(0.01 * 2**attempt)
    raise AssertionError("the loop above always returns or raises")
