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

import importlib
import json
import re
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

_PLACEHOLDER = re.compile(r"\$(\d+)")

# asyncpg's errors (it ships no type information); its `PostgresError` carries `sqlstate`.
_PG_ERRORS: tuple[type[Exception], ...] = (importlib.import_module("asyncpg").PostgresError,)


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


class SqliteDriver:
    is_sqlite = True

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def fetch(self, statement: Statement, *args: Any) -> Sequence[Sequence[Any]]:
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
        return SqliteDriver(raw.driver_connection)
    # SQLAlchemy's asyncpg adapter opens its transaction lazily, at its first statement of
    # its own; statements sent straight to asyncpg before that would run outside any
    # transaction, so open it now. The test `test_driver_statements_roll_back_with_session`
    # fails if a SQLAlchemy upgrade changes this hook.
    if adapted._transaction is None:
        await adapted._start_transaction()
    return PostgresDriver(raw.driver_connection)
