"""Backups of the embedded SQLite database, taken while yuyue keeps serving, and restored.

`yuyue backup` copies the database with SQLite's online backup API in one step: in WAL mode
that is a read transaction, so the copy is one consistent moment of the database while
bookings go on being written (they wait for nothing). The copy is written beside the target
and renamed into place only after `PRAGMA integrity_check` passed on it, readable by its
owner only. `yuyue restore` puts a checked backup in place of the database, keeping the
file it replaces, and refuses while another process holds the database.

PostgreSQL is backed up by the database's own tools (base backups and WAL archiving, see
docs/operations.md); `yuyue backup` there writes a logical dump with `pg_dump`, a useful
extra before an upgrade but not a replacement for point-in-time recovery.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from yuyue.config import normalise_database_url


class BackupError(Exception):
    """A backup or restore that could not be made; nothing was changed."""


@dataclass(frozen=True, slots=True)
class BackupReport:
    target: Path
    size_bytes: int
    appointments: int | None


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite database URL, or None for another database."""
    url = make_url(normalise_database_url(database_url))
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory database has nothing to back up")
    return Path(url.database)


def _check(path: Path) -> int | None:
    """Integrity of a database file, and how many appointments it holds."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        verdict = connection.execute("PRAGMA integrity_check").fetchone()
        if verdict is None or verdict[0] != "ok":
            raise BackupError(f"{path} failed its integrity check: {verdict}")
        try:
            row = connection.execute("SELECT count(*) FROM appointment").fetchone()
        except sqlite3.DatabaseError:
            return None  # not a yuyue database yet (no tables): still a sound file
        return int(row[0])
    finally:
        connection.close()


def backup_sqlite(source: Path, target: Path) -> BackupReport:
    if not source.exists():
        raise BackupError(f"there is no database at {source}")
    if target.exists():
        raise BackupError(f"{target} exists already; choose a new name")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    # Created owner-only before SQLite writes into it: identity numbers are encrypted, but
    # the file is still the hospital's whole record.
    partial.touch(mode=0o600)
    try:
        reading = sqlite3.connect(source, timeout=30)
        writing = sqlite3.connect(partial)
        try:
            reading.backup(writing)  # all pages in one step: one consistent snapshot
        finally:
            writing.close()
            reading.close()
        appointments = _check(partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupReport(target, target.stat().st_size, appointments)


def restore_sqlite(backup: Path, database: Path) -> Path | None:
    """Puts `backup` in place of `database`; returns where the replaced file was kept."""
    if not backup.exists():
        raise BackupError(f"there is no backup at {backup}")
    _check(backup)
    kept: Path | None = None
    if database.exists():
        _refuse_if_in_use(database)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = database.with_name(f"{database.name}.before-restore-{stamp}")
        # Its write-ahead log first: the file alone may lack committed changes.
        with sqlite3.connect(database) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
        os.replace(database, kept)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    database.parent.mkdir(parents=True, exist_ok=True)
    partial = database.with_name(database.name + ".partial")
    shutil.copyfile(backup, partial)
    os.chmod(partial, 0o600)
    os.replace(partial, database)
    return kept


def _refuse_if_in_use(database: Path) -> None:
    connection = sqlite3.connect(database, timeout=0)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        connection.execute("ROLLBACK")
    except sqlite3.OperationalError as error:
        raise BackupError(
            f"{database} is in use; stop every yuyue process that uses it first"
        ) from error
    finally:
        connection.close()


def dump_postgresql(database_url: str, target: Path) -> BackupReport:
    """A logical dump (`pg_dump --format=custom`), restorable with `pg_restore`."""
    if target.exists():
        raise BackupError(f"{target} exists already; choose a new name")
    program = shutil.which("pg_dump")
    if program is None:
        raise BackupError("pg_dump is not installed here (Debian: postgresql-client)")
    url = make_url(normalise_database_url(database_url))
    # Passed through the environment, not the command line, where others could read it.
    env = dict(os.environ)
    for name, value in (
        ("PGHOST", url.host),
        ("PGPORT", str(url.port) if url.port else None),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value:
            env[name] = value
    partial = target.with_name(target.name + ".partial")
    result = subprocess.run(
        [program, "--format=custom", "--no-owner", f"--file={partial}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    os.chmod(partial, 0o600)
    os.replace(partial, target)
    return BackupReport(target, target.stat().st_size, None)
