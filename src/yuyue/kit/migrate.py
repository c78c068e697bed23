"""Brings a database to the newest schema with Alembic (used by `yuyue init` and tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str, *, connect_args: dict[str, Any] | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    config.attributes["connect_args"] = connect_args or {}
    return config


def upgrade_sync(database_url: str, *, connect_args: dict[str, Any] | None = None) -> None:
    command.upgrade(alembic_config(database_url, connect_args=connect_args), "head")


async def upgrade(database_url: str, *, connect_args: dict[str, Any] | None = None) -> None:
    # env.py runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(upgrade_sync, database_url, connect_args=connect_args)
