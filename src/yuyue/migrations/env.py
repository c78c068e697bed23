"""Alembic environment: async engines for SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import yuyue.models  # noqa: F401  (registers every table)
from yuyue.config import DEFAULT_DATABASE_URL, normalise_database_url
from yuyue.kit.db import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    configured = config.attributes.get("database_url") or os.environ.get(
        "YUYUE_DATABASE_URL", DEFAULT_DATABASE_URL
    )
    return normalise_database_url(str(configured))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    connect_args = config.attributes.get("connect_args") or {}
    engine = create_async_engine(_url(), poolclass=pool.NullPool, connect_args=connect_args)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
