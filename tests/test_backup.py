"""Backups that restore: SQLite's online backup taken while bookings go on, checked,
restored and served again; the command line's refusals; a PostgreSQL dump that
pg_restore reads."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests import factories as f
from tests.conftest import NOW, DatabaseTemplate, World
from yuyue.booking.models import Appointment
from yuyue.cli import app as cli
from yuyue.kit import backup as backups
from yuyue.kit.crypto import generate_master_secret
from yuyue.kit.db import Database
from yuyue.web.context import AppContext

runner = CliRunner()


def database_file(ctx: AppContext) -> Path:
    path = backups.sqlite_file(ctx.db.url)
    if path is None:
        pytest.skip("SQLite's own backup")
    return path


async def book_many(client: httpx.AsyncClient, ctx: AppContext, world: World, n: int) -> list[str]:
    async with ctx.db.session_scope() as s:
        patients = [
            await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
            for _ in range(n)
        ]
    ids = []
    for patient in patients:
        answer = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(patient.id), "session_id": str(world.session.id)},
            headers=world.auth,
        )
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


async def appointments_in(path: Path) -> set[str]:
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with database.read() as s:
            return {str(i) for i in (await s.scalars(select(Appointment.id))).all()}
    finally:
        await database.write_engine.dispose()
        await database.read_engine.dispose()


async def test_a_backup_taken_while_bookings_go_on_restores_every_booking_it_saw(
    client: httpx.AsyncClient, ctx: AppContext, world: World, tmp_path: Path
) -> None:
    source = database_file(ctx)
    before = await book_many(client, ctx, world, 5)
    target = tmp_path / "backups" / "monday.db"
    # More bookings are written while the backup runs; it must not wait for them nor
    # they for it, and it holds one consistent moment.
    during = asyncio.create_task(book_many(client, ctx, world, 8))
    report = await asyncio.to_thread(backups.backup_sqlite, source, target)
    after = await during
    assert report.target == target and report.size_bytes > 0
    assert report.appointments is not None and 5 <= report.appointments <= 13
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert not target.with_name("monday.db.partial").exists()
    saved = await appointments_in(target)
    assert set(before) <= saved and saved <= set(before) | set(after)
    # Restored into a fresh place, it serves again: the bookings are found.
    restored = tmp_path / "restored" / "yuyue.db"
    assert backups.restore_sqlite(target, restored) is None
    assert await appointments_in(restored) == saved


def test_the_command_line_backs_up_and_restores_keeping_what_it_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "live.db"
    monkeypatch.setenv("YUYUE_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("YUYUE_SECRET_KEY", generate_master_secret())
    assert runner.invoke(cli, ["init"]).exit_code == 0
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO hospital (id, code, name, name_en, timezone, created_at) "
            "VALUES ('00000000000000000000000000000001', 'h1', '一院', 'First', "
            "'Asia/Shanghai', '2026-12-01 00:00:00')"
        )
    connection.close()
    target = tmp_path / "nightly.db"
    made = runner.invoke(cli, ["backup", str(target)])
    assert made.exit_code == 0, made.output
    assert "backed up to" in made.output and "0 appointments" in made.output
    # A second backup never overwrites the first.
    again = runner.invoke(cli, ["backup", str(target)])
    assert again.exit_code == 1 and "exists already" in again.output
    # The live database changes after the backup; restoring brings back the backup's
    # state and keeps the replaced file beside it.
    with sqlite3.connect(database) as connection:
        connection.execute("DELETE FROM hospital")
    connection.close()
    restored = runner.invoke(cli, ["restore", str(target)])
    assert restored.exit_code == 0, restored.output
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT code FROM hospital").fetchall() == [("h1",)]
    connection.close()
    kept = list(tmp_path.glob("live.db.before-restore-*"))
    assert len(kept) == 1
    with sqlite3.connect(kept[0]) as connection:
        assert connection.execute("SELECT count(*) FROM hospital").fetchone() == (0,)
    connection.close()


def test_restore_refuses_while_the_database_is_in_use_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "busy.db"
    monkeypatch.setenv("YUYUE_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("YUYUE_SECRET_KEY", generate_master_secret())
    assert runner.invoke(cli, ["init"]).exit_code == 0
    target = tmp_path / "copy.db"
    assert runner.invoke(cli, ["backup", str(target)]).exit_code == 0
    holder = sqlite3.connect(database)
    holder.execute("BEGIN IMMEDIATE")  # a serving process in the middle of a write
    try:
        refused = runner.invoke(cli, ["restore", str(target)])
    finally:
        holder.rollback()
        holder.close()
    assert refused.exit_code == 1 and "in use" in refused.output
    assert not list(tmp_path.glob("busy.db.before-restore-*"))


def test_a_damaged_or_missing_backup_is_refused(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises((backups.BackupError, sqlite3.DatabaseError)):
        backups.restore_sqlite(damaged, tmp_path / "live.db")
    assert not (tmp_path / "live.db").exists()
    with pytest.raises(backups.BackupError, match="no backup"):
        backups.restore_sqlite(tmp_path / "missing.db", tmp_path / "live.db")
    with pytest.raises(backups.BackupError, match="no database"):
        backups.backup_sqlite(tmp_path / "missing.db", tmp_path / "out.db")


async def test_a_postgresql_dump_holds_the_bookings_for_pg_restore(
    client: httpx.AsyncClient,
    ctx: AppContext,
    world: World,
    tmp_path: Path,
    database_template: DatabaseTemplate,
) -> None:
    if ctx.db.is_sqlite:
        pytest.skip("PostgreSQL's dump")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump is not installed")
    booked = await book_many(client, ctx, world, 2)
    url = ctx.db.url.replace("postgresql+asyncpg://", "postgresql://")
    report = await asyncio.to_thread(backups.dump_postgresql, url, tmp_path / "pg.dump")
    assert report.size_bytes > 0 and os.stat(report.target).st_mode & 0o777 == 0o600
    schema = database_template.location  # the tests' own schema in the shared database
    data = (
        await asyncio.to_thread(
            subprocess.run,
            [
                "pg_restore",
                "--data-only",
                f"--schema={schema}",
                "--table=appointment",
                "--file=-",
                str(report.target),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    ).stdout
    copied = data.split("FROM stdin;\n", 1)[1].split("\n\\.", 1)[0].splitlines()
    assert sorted(line.split("\t", 1)[0] for line in copied) == sorted(booked)
