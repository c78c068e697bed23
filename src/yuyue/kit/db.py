"""Database plumbing: declarative base, UTC timestamps, engines and the unit of work.

One transaction per request or job, owned by the entry point through :meth:`Database.transact`
(or :meth:`Database.session_scope`); services only ``flush()``.

SQLite has one writer at a time. Write transactions therefore start with ``BEGIN IMMEDIATE``
(taking the write lock up front, so a read-then-write never fails half-way with "database is
locked") on a dedicated one-connection pool: in-process writers queue fairly on the pool and
other processes wait on ``busy_timeout``. Reads use a separate pool and WAL snapshots.
On PostgreSQL both roles share one pool and row locks do the serialising.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from yuyue.config import normalise_database_url
from yuyue.kit.sql import SQLITE_WRITER, Driver, HotLane, driver

log = logging.getLogger(__name__)
T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC instants on both engines (SQLite would otherwise drop the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC instant is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime}


def _is_retryable(error: BaseException) -> bool:
    """Deadlocks and serialisation failures (PostgreSQL) and a busy file (SQLite)."""
    if isinstance(error, DBAPIError):
        orig = error.orig
        for candidate in (orig, getattr(orig, "__cause__", None)):
            state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
            if state in {"40001", "40P01", "55P03"}:
                return True
        if isinstance(error, OperationalError) and "database is locked" in str(error):
            return True
    return False


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # The writer's transactions hold the database's write lock from BEGIN on; the
        # driver may then run its statements without waiting (kit.sql.SqliteDriver).
        record.info[SQLITE_WRITER] = immediate
        # Take transaction control from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def asyncpg_dsn(url: URL) -> str:
    """The URL as asyncpg reads it. SQLAlchemy names a primary and its standbys with
    repeated `host=name:port` parameters (`?host=a:5432&host=b:5432&target_session_attrs=
    read-write`); asyncpg wants them as a list in the address (`a:5432,b:5432`), and would
    otherwise keep only the last."""
    hosts = url.query.get("host")
    if not hosts or url.host:
        return url.set(drivername="postgresql").render_as_string(hide_password=False)
    listed = hosts if isinstance(hosts, tuple) else (hosts,)
    auth = ""
    if url.username:
        auth = quote(url.username, safe="")
        if url.password:
            auth += ":" + quote(str(url.password), safe="")
        auth += "@"
    rest = [(k, v) for k, v in url.query.items() if k != "host"]
    query = urlencode([(k, x) for k, v in rest for x in (v if isinstance(v, tuple) else (v,))])
    database = quote(url.database or "", safe="")
    return f"postgresql://{auth}{','.join(listed)}/{database}" + (f"?{query}" if query else "")


class Database:
    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 40,
        connect_args: dict[str, Any] | None = None,
    ) -> None:
        self.url = normalise_database_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        self.hot_lane: HotLane | None = None
        if self.is_sqlite:
            self.write_engine = create_async_engine(
                self.url, echo=echo, pool_size=1, max_overflow=0, pool_timeout=120
            )
            self.read_engine = create_async_engine(
                self.url, echo=echo, pool_size=8, max_overflow=8, pool_timeout=60
            )
            del connect_args
            _configure_sqlite(self.write_engine, immediate=True)
            _configure_sqlite(self.read_engine, immediate=False)
        else:
            # Connections are kept, not opened per burst: a new asyncpg connection costs a
            # handshake and type introspection, which at the release second would be paid
            # by hundreds of requests at once.
            # The connection budget `pool_size` is shared: a third for the booking hot lane,
            # the rest (plus a quarter as overflow) for everything else.
            lane_size = max(2, pool_size // 3)
            orm_size = max(2, pool_size - lane_size)
            self.write_engine = create_async_engine(
                self.url,
                echo=echo,
                pool_size=orm_size,
                max_overflow=max(2, orm_size // 4),
                pool_timeout=60,
                # A ping per checkout is a round trip on every booking; recycling old
                # connections and retrying a failed transaction cover the same failures.
                pool_recycle=1800,
                connect_args=connect_args or {},
            )
            self.read_engine = self.write_engine
            # The release peak's bookings run on a few connections of their own (HotLane).
            self.hot_lane = HotLane(
                asyncpg_dsn(parsed),
                size=lane_size,
                connect_args=connect_args or {},
            )
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def session_scope(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: commits when the block succeeds, rolls back otherwise."""
        async with self._writer() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work (a snapshot on SQLite WAL; READ COMMITTED on PostgreSQL)."""
        async with self._reader() as session, session.begin():
            yield session

    async def transact(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 4
    ) -> T:
        """Runs `work` in one write transaction, retrying it whole after a deadlock."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.session_scope() as session:
                    return await work(session)
            except DBAPIError as error:
                if attempt == attempts or not _is_retryable(error):
                    raise
                log.info(
                    "retrying transaction after %s (attempt %d)", type(error).__name__, attempt
                )
                await asyncio.sleep(0.005 * attempt)
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def driver_transaction(self) -> AsyncIterator[Driver]:
        """One write transaction on the driver connection, not retried: PostgreSQL's hot
        lane, or SQLite's single writer. Committed when the block succeeds."""
        if self.hot_lane is not None:
            async with self.hot_lane.transaction() as connection:
                yield connection
            return
        async with self.session_scope() as session:
            yield await driver(session)

    async def transact_driver(
        self, work: Callable[[Driver], Awaitable[T]], *, attempts: int = 4
    ) -> T:
        """Runs `work` in one write transaction on the driver connection: PostgreSQL's hot
        lane (no ORM session), or SQLite's single writer. Retried whole after a deadlock."""
        if self.hot_lane is None:

            async def on_session(session: AsyncSession) -> T:
                return await work(await driver(session))

            return await self.transact(on_session, attempts=attempts)
        for attempt in range(1, attempts + 1):
            try:
                async with self.hot_lane.transaction() as connection:
                    return await work(connection)
            except DBAPIError as error:
                if attempt == attempts or not _is_retryable(error):
                    raise
                log.info(
                    "retrying transaction after %s (attempt %d)", type(error).__name__, attempt
                )
                await asyncio.sleep(0.005 * attempt)
        raise AssertionError("unreachable")

    async def dispose(self) -> None:
        if self.hot_lane is not None:
            await self.hot_lane.close()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
