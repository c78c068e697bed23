"""Hand-written SQL on the driver's own connection, for the few hot paths.

The ORM's unit of work costs about a third of a millisecond of Python per statement; a
prepared statement on the driver costs a tenth of that. The booking write path therefore
speaks to asyncpg (PostgreSQL) or aiosqlite (SQLite) directly, on the connection and inside
the transaction of the caller's `AsyncSession`, so the entry point still owns the one
transaction and the ORM work around it (audit look-ups, reschedule's cancel) sees the rows.

A `Statement` is written once with PostgreSQL's `$1` placeholders; SQLite gets the same text
with `?1`. Values cross as the types SQLAlchemy would store: on SQLite a UUID is its 32 hex
digits, an instant a naive UTC text, a time `HH:MM:SS.ffffff`, a boolean 0/1 — exactly what
the ORM writes and reads there, so both paths share one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

_PLACEHOLDER = re.compile(r"\$(\d+)")

# asyncpg's errors (it ships no type information); its `PostgresError` carries `sqlstate`.
_ASYNCPG: Any = importlib.import_module("asyncpg")
_PG_ERRORS: tuple[type[Exception], ...] = (_ASYNCPG.PostgresError,)


class Statement:
    """One SQL text for both engines (PostgreSQL syntax with `$n` placeholders)."""

    __slots__ = ("postgresql", "sqlite")

    def __init__(self, postgresql: str, *, sqlite: str | None = None) -> None:
        self.postgresql = postgresql
        self.sqlite = _PLACEHOLDER.sub(r"?\1", sqlite if sqlite is not None else postgresql)


class Driver(Protocol):
    """The caller's transaction, spoken to without the ORM."""

    is_sqlite: bool

    async def fetch(self, statement: Statement, *args: Any) -> Sequence[Sequence[Any]]: ...

    async def fetchrow(self, statement: Statement, *args: Any) -> Sequence[Any] | None: ...

    async def execute(self, statement: Statement, *args: Any) -> None: ...

    def uuid(self, value: Any) -> uuid.UUID: ...

    def instant(self, value: Any) -> datetime: ...

    def day(self, value: Any) -> date: ...

    def clock_time(self, value: Any) -> time: ...


def _translated(error: Exception, sql: str) -> DBAPIError:
    """The driver's error as SQLAlchemy would raise it, so the entry point's handling is the
    same on both paths: a deadlock is retried (`Database.transact` reads `orig.sqlstate`), a
    named constraint becomes its domain error."""
    sqlstate = str(getattr(error, "sqlstate", "") or "")
    name = type(error).__name__
    if sqlstate.startswith("23") or name == "IntegrityError":
        return IntegrityError(sql, None, error)
    if name == "OperationalError":
        return OperationalError(sql, None, error)
    return DBAPIError(sql, None, error)


class PostgresDriver:
    is_sqlite = False

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def fetch(self, statement: Statement, *args: Any) -> Sequence[Sequence[Any]]:
        try:
            rows: Sequence[Sequence[Any]] = await self._connection.fetch(
                statement.postgresql, *args
            )
        except _PG_ERRORS as error:
            raise _translated(error, statement.postgresql) from error
        return rows

    async def fetchrow(self, statement: Statement, *args: Any) -> Sequence[Any] | None:
        rows = await self.fetch(statement, *args)
        return rows[0] if rows else None

    async def execute(self, statement: Statement, *args: Any) -> None:
        try:
            await self._connection.execute(statement.postgresql, *args)
        except _PG_ERRORS as error:
            raise _translated(error, statement.postgresql) from error

    # asyncpg hands back the column types themselves.
    def uuid(self, value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    def instant(self, value: Any) -> datetime:
        result: datetime = value
        return result

    def day(self, value: Any) -> date:
        result: date = value
        return result

    def clock_time(self, value: Any) -> time:
        result: time = value
        return result


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC instant is required")
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat("microseconds")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list | tuple):
        # Lists reach SQLite as JSON arrays, read with json_each().
        return json.dumps([_sqlite_value(v) for v in value])
    return value


# Marks the connection record of an SQLite engine whose transactions begin IMMEDIATE.
SQLITE_WRITER = "yuyue_sqlite_writer"


class SqliteDriver:
    is_sqlite = True

    def __init__(self, connection: Any, *, holds_write_lock: bool = False) -> None:
        self._connection = connection
        # Inside a transaction that holds the write lock (BEGIN IMMEDIATE) no statement can
        # wait for a lock, and each takes microseconds on pages in memory: they run right
        # here on the sqlite3 connection instead of a round trip through aiosqlite's thread
        # (which cost more than the statements). That thread is idle meanwhile: the
        # connection is checked out to this transaction alone.
        self._direct = getattr(connection, "_conn", None) if holds_write_lock else None

    async def fetch(self, statement: Statement, *args: Any) -> Sequence[Sequence[Any]]:
        if self._direct is not None:
            try:
                cursor = self._direct.execute(statement.sqlite, [_sqlite_value(a) for a in args])
                try:
                    found: Sequence[Sequence[Any]] = cursor.fetchall()
                finally:
                    cursor.close()
            except sqlite3.Error as error:
                raise _translated(error, statement.sqlite) from error
            return found
        try:
            cursor = await self._connection.execute(
                statement.sqlite, [_sqlite_value(a) for a in args]
            )
            try:
                rows: Sequence[Sequence[Any]] = await cursor.fetchall()
            finally:
                await cursor.close()
        except sqlite3.Error as error:
            raise _translated(error, statement.sqlite) from error
        return rows

    async def fetchrow(self, statement: Statement, *args: Any) -> Sequence[Any] | None:
        rows = await self.fetch(statement, *args)
        return rows[0] if rows else None

    async def execute(self, statement: Statement, *args: Any) -> None:
        await self.fetch(statement, *args)

    def uuid(self, value: Any) -> uuid.UUID:
        return uuid.UUID(hex=value) if isinstance(value, str) else uuid.UUID(bytes=value)

    def instant(self, value: Any) -> datetime:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    def day(self, value: Any) -> date:
        return date.fromisoformat(value)

    def clock_time(self, value: Any) -> time:
        return time.fromisoformat(value)


async def driver(session: AsyncSession) -> Driver:
    """The driver connection of `session`'s transaction, begun if it was not yet.

    Pending ORM changes are flushed first, so hand-written statements see them."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    if connection.dialect.name == "sqlite":
        # The engine's "begin" listener has already sent BEGIN (IMMEDIATE for writers).
        return SqliteDriver(
            raw.driver_connection, holds_write_lock=bool(raw.info.get(SQLITE_WRITER))
        )
    # SQLAlchemy's asyncpg adapter opens its transaction lazily, at its first statement of
    # its own; statements sent straight to asyncpg before that would run outside any
    # transaction, so open it now. The test `test_driver_statements_roll_back_with_session`
    # fails if a SQLAlchemy upgrade changes this hook.
    if adapted._transaction is None:
        await adapted._start_transaction()
    return PostgresDriver(raw.driver_connection)


async def _prepare_all(connection: Any, statements: Sequence[Statement]) -> None:
    for statement in statements:
        # The driver's own statement cache, the one `fetch` looks in (`prepare()` would
        # make a statement outside it).
        await connection._prepare(statement.postgresql, use_cache=True)


class HotLane:
    """A few PostgreSQL connections kept for the release peak's booking transactions.

    Checking a connection out of the ORM's pool and running a session's transaction costs
    about 0.4 ms of Python per request, more than the booking's statements themselves. The
    lane hands out driver connections directly: a transaction is BEGIN, the statements and
    COMMIT, and nothing else. A connection goes back only outside any transaction; one that
    failed mid-way is closed, and the lane opens a new one when it is next needed.
    """

    def __init__(
        self, dsn: str, *, size: int, connect_args: dict[str, Any], timeout: float = 60.0
    ) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._size = size
        # The lane runs the same few statements thousands of times a second. PostgreSQL
        # plans a prepared statement anew for its first executions and keeps doing so for
        # statements whose generic plan it costs higher (the booking's CTEs); planning was
        # a fifth of PostgreSQL's CPU per booking. The statements were written for their
        # generic plans (every filter on an indexed column), so plan them once.
        settings = dict(connect_args.get("server_settings") or {})
        settings.setdefault("plan_cache_mode", "force_generic_plan")
        self._connect_args = {**connect_args, "server_settings": settings}
        self._idle: list[Any] = []
        self._opened = 0
        self._waiters: asyncio.Queue[Any] = asyncio.Queue()
        self._waiting = 0

    @property
    def size(self) -> int:
        return self._size

    async def _acquire(self) -> Any:
        deadline = asyncio.get_running_loop().time() + self._timeout
        while True:
            while self._idle:
                connection = self._idle.pop()
                if not connection.is_closed():
                    return connection
                self._opened -= 1
            if self._opened < self._size:
                self._opened += 1
                try:
                    return await _ASYNCPG.connect(self._dsn, **self._connect_args)
                except BaseException:
                    self._opened -= 1
                    raise
            # Wait for a connection handed back; look again now and then, in case one was
            # closed instead and a new one may be opened. A saturated lane answers like a
            # saturated pool: the entry point turns it into 503 with Retry-After.
            if asyncio.get_running_loop().time() > deadline:
                raise PoolTimeout(f"hot lane of {self._size} connections busy")
            self._waiting += 1
            try:
                return await asyncio.wait_for(self._waiters.get(), timeout=0.1)
            except TimeoutError:
                continue
            finally:
                self._waiting -= 1

    def _release(self, connection: Any) -> None:
        if connection.is_closed() or connection.is_in_transaction():
            self._opened -= 1
            if not connection.is_closed():
                connection.terminate()
            return
        if self._waiting > self._waiters.qsize():  # someone waits: hand it over directly
            self._waiters.put_nowait(connection)
        else:
            self._idle.append(connection)

    async def _begin(self) -> tuple[Any, Any]:
        """A connection with a transaction begun. A kept connection the server has dropped
        (a restart, an idle timeout) fails at BEGIN: it is closed and a new one tried."""
        for attempt in range(2):
            connection = await self._acquire()
            transaction = connection.transaction()
            try:
                await transaction.start()
            except (OSError, *_PG_ERRORS, _ASYNCPG.InterfaceError) as error:
                if not connection.is_closed():
                    connection.terminate()
                self._release(connection)
                if attempt == 1:
                    raise _translated(error, "BEGIN") from error
                continue
            return connection, transaction
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Driver]:
        """One transaction: committed when the block succeeds, rolled back otherwise."""
        connection, transaction = await self._begin()
        try:
            try:
                yield PostgresDriver(connection)
            except BaseException:
                if not connection.is_closed() and connection.is_in_transaction():
                    with contextlib.suppress(Exception):
                        await transaction.rollback()
                raise
            try:
                await transaction.commit()
            except _PG_ERRORS as error:
                raise _translated(error, "COMMIT") from error
        finally:
            self._release(connection)

    async def warm(self, statements: Sequence[Statement] = ()) -> None:
        """Opens the lane's connections now, not under the first flood of bookings (a new
        connection costs a handshake), and prepares `statements` on each: the first use of
        a statement on a connection costs a parse, a plan and, for array parameters, the
        driver's type introspection, several milliseconds that the release second's first
        requests would otherwise wait for in turn."""
        missing = self._size - self._opened
        if missing > 0:
            self._opened += missing
            opened = await asyncio.gather(
                *(_ASYNCPG.connect(self._dsn, **self._connect_args) for _ in range(missing)),
                return_exceptions=True,
            )
            for connection in opened:
                if isinstance(connection, BaseException):
                    self._opened -= 1
                else:
                    self._idle.append(connection)
        if statements:
            taken, self._idle = self._idle, []
            await asyncio.gather(
                *(_prepare_all(c, statements) for c in taken), return_exceptions=True
            )
            for connection in taken:
                self._release(connection)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            self._opened -= 1
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)
