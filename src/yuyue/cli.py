"""The `yuyue` command. Commands stay thin: parse, run one unit of work, print."""

from __future__ import annotations

import asyncio
import http.client
import logging
import logging.config
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.config import Settings
from yuyue.demo.catalogue import StaffAccount
from yuyue.demo.seed import DemoSummary
from yuyue.kit import migrate, observability, rekey
from yuyue.kit.clock import SystemClock
from yuyue.kit.crypto import LEGACY_VERSION, FieldCipher, MasterSecrets
from yuyue.kit.db import Database
from yuyue.operations import keys as keys_service
from yuyue.operations.keys import ColumnKeys

# Booking's cancellations owe refunds and close open orders through payments' subscriber to
# booking's events, which its service registers when imported: every command that may
# cancel (now or later) must have it, as the web app and the worker do.
from yuyue.payments import service as _payments_subscriber  # noqa: F401
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import Hospital
from yuyue.staff.access import provisioning
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, ActorKind

app = typer.Typer(
    help="yuyue (预约): outpatient appointment and registration.", no_args_is_help=True
)
api_key_app = typer.Typer(help="Channel API keys.", no_args_is_help=True)
app.add_typer(api_key_app, name="api-key")
maintenance_app = typer.Typer(
    help="Pause new bookings with a notice (check-in and the queue go on), and resume.",
    no_args_is_help=True,
)
app.add_typer(maintenance_app, name="maintenance")
keys_app = typer.Typer(
    help="The master secret: a new one, which secret sealed the stored values, and "
    "re-sealing them under the current one (docs/operations.md, Keys).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
reports_app = typer.Typer(help="The reports' daily summary tables.", no_args_is_help=True)
app.add_typer(reports_app, name="reports")
T = TypeVar("T")


def _settings() -> Settings:
    return Settings()


def _run(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(settings.async_database_url)
        try:
            return await db.transact(work)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _require_hospital(hospital_id: object | None, code: str) -> None:
    if hospital_id is None:
        typer.echo(
            f"No hospital with code '{code}'. Run `yuyue seed-demo` or create one first.", err=True
        )
        raise typer.Exit(2)


@app.command()
def init() -> None:
    """Create or migrate the database at YUYUE_DATABASE_URL."""
    settings = _settings()
    migrate.upgrade_sync(settings.async_database_url)
    typer.echo(f"database ready: {_redact(settings.async_database_url)}")


@app.command()
def backup(
    target: Annotated[Path, typer.Argument(help="The backup file to write (a new name)")],
) -> None:
    """Back up the database while yuyue keeps serving: SQLite's online backup, checked
    before it is kept; on PostgreSQL a pg_dump (see docs/operations.md for base backups)."""
    from yuyue.kit import backup as backups

    settings = _settings()
    try:
        database = backups.sqlite_file(settings.database_url)
        report = (
            backups.backup_sqlite(database, target)
            if database is not None
            else backups.dump_postgresql(settings.database_url, target)
        )
    except backups.BackupError as error:
        typer.echo(f"no backup made: {error}", err=True)
        raise typer.Exit(1) from error
    held = f", {report.appointments} appointments" if report.appointments is not None else ""
    typer.echo(f"backed up to {report.target} ({report.size_bytes / 1e6:.1f} MB{held})")


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(help="A file written by `yuyue backup`")],
) -> None:
    """Put a SQLite backup in place of the database (stop yuyue first); the replaced file
    is kept beside it, and the restored database is migrated to this version."""
    from yuyue.kit import backup as backups

    settings = _settings()
    try:
        database = backups.sqlite_file(settings.database_url)
        if database is None:
            raise backups.BackupError(
                "PostgreSQL is restored with its own tools (pg_restore, or a base backup "
                "and its WAL; see docs/operations.md)"
            )
        kept = backups.restore_sqlite(source, database)
    except backups.BackupError as error:
        typer.echo(f"nothing restored: {error}", err=True)
        raise typer.Exit(1) from error
    migrate.upgrade_sync(settings.async_database_url)
    if kept is not None:
        typer.echo(f"the database it replaced is kept as {kept}")
    typer.echo(f"restored {source} into {database}")


def _operator(hospital_id: uuid.UUID) -> Actor:
    """Whoever runs the command on the server: an administrator in the audit trail."""
    return Actor(
        hospital_id,
        ActorKind.STAFF,
        f"cli:{os.environ.get('USER', 'operator')}",
        Channel.WINDOW,
        roles=frozenset({Role.ADMIN}),
        name="command line",
    )


def _maintenance(change: Callable[[AsyncSession, Actor], Awaitable[str]]) -> str:
    settings = _settings()

    async def work(session: AsyncSession) -> str:
        hospital_id = await session.scalar(
            select(Hospital.id).where(Hospital.code == settings.hospital_code)
        )
        _require_hospital(hospital_id, settings.hospital_code)
        assert hospital_id is not None
        return await change(session, _operator(hospital_id))

    return _run(settings, work)


@maintenance_app.command("on")
def maintenance_on(
    message: Annotated[str, typer.Argument(help="What patients read (Chinese)")],
    english: Annotated[str, typer.Option("--en", help="The notice in English")] = "",
) -> None:
    """Pause new bookings with this notice (or change the notice of a pause)."""
    from yuyue.kit.errors import YuyueError
    from yuyue.operations import service as operations

    async def change(session: AsyncSession, actor: Actor) -> str:
        await operations.start(
            session, actor=actor, message=message, message_en=english, now=SystemClock().now()
        )
        return "new bookings are paused in every process within seconds; check-in goes on"

    try:
        typer.echo(_maintenance(change))
    except YuyueError as error:
        typer.echo(error.detail("en"), err=True)
        raise typer.Exit(2) from error


@maintenance_app.command("off")
def maintenance_off() -> None:
    """Resume new bookings."""
    from yuyue.operations import service as operations

    async def change(session: AsyncSession, actor: Actor) -> str:
        ended = await operations.end(session, actor=actor, now=SystemClock().now())
        return "bookings resumed" if ended else "bookings were not paused"

    typer.echo(_maintenance(change))


@maintenance_app.command("status")
def maintenance_status() -> None:
    """Whether new bookings are paused, and the notice."""
    from yuyue.operations import service as operations

    async def look(session: AsyncSession, actor: Actor) -> str:
        notice = await operations.current(session, hospital_id=actor.hospital_id)
        if notice is None:
            return "bookings are open"
        since = notice.started_at.isoformat(timespec="seconds")
        return f"paused since {since} by {notice.started_by}: {notice.message}"

    typer.echo(_maintenance(look))


# --- keys -------------------------------------------------------------------------------------
# Nothing here prints or logs a secret: only key ids, which are derived one way and name a
# secret without revealing it.

ROTATION_BATCH = 500


def _master_secrets(settings: Settings) -> MasterSecrets:
    try:
        return settings.master_secrets()
    except ValueError as error:
        typer.echo(f"the configured secrets are not usable: {error}", err=True)
        raise typer.Exit(2) from None


def _key_name(key: str, cipher: FieldCipher) -> str:
    if key == cipher.key_id:
        return f"{key} (current)"
    if key in cipher.key_ids:
        return f"{key} (previous)"
    if key == LEGACY_VERSION:
        return "v1 (from before key ids)"
    return f"{key} (NOT CONFIGURED)"


def _configured(cipher: FieldCipher) -> str:
    previous = ", ".join(cipher.key_ids[1:]) or "none"
    return f"current key {cipher.key_id}; previous: {previous}"


@keys_app.command("new")
def keys_new() -> None:
    """Print a new master secret, alone on the last line, and its key id."""
    from yuyue.kit.crypto import generate_master_secret, key_id, load_master_secret

    secret = generate_master_secret()
    typer.echo(
        f"a new master secret (key id {key_id(load_master_secret(secret))}); put it in the "
        "secret store as YUYUE_SECRET_KEY and the one it replaces in "
        "YUYUE_PREVIOUS_SECRET_KEYS (docs/operations.md, Keys). It is shown once:"
    )
    typer.echo(secret)


async def _status(db: Database) -> list[ColumnKeys]:
    async with db.read() as session:
        return await keys_service.status(session)


@keys_app.command("status")
def keys_status() -> None:
    """Count the stored values of each column by the key that sealed them."""
    settings = _settings()
    cipher = _master_secrets(settings).cipher()

    async def main() -> list[ColumnKeys]:
        db = Database(settings.async_database_url)
        try:
            return await _status(db)
        finally:
            await db.dispose()

    columns = asyncio.run(main())
    typer.echo(_configured(cipher))
    for column in columns:
        counts = ", ".join(
            f"{_key_name(key, cipher)}: {count}" for key, count in sorted(column.counts.items())
        )
        typer.echo(f"  {column.label:<34} {counts or 'no values'}")
    remaining = sum(column.not_current(cipher) for column in columns)
    unknown = keys_service.unknown_keys(columns, cipher)
    if unknown:
        typer.echo(
            f"{sum(use.count for use in unknown)} values name a secret that is not configured "
            "and cannot be read: add it to YUYUE_PREVIOUS_SECRET_KEYS."
        )
    legacy = sum(column.counts.get(LEGACY_VERSION, 0) for column in columns)
    if legacy and len(cipher.key_ids) == 1:
        # Nothing to rotate from: the one secret reads them, and the next rotation re-seals.
        remaining -= legacy
        typer.echo(
            f"{legacy} values are from before key ids (v1); the current secret reads them and "
            "the next rotation re-seals them."
        )
    if remaining:
        typer.echo(f"{remaining} values are not under the current key: run `yuyue keys rotate`.")
    else:
        typer.echo(
            "every stored value is under the current key: a previous secret now only "
            "verifies the sign-ins and QR vouchers it signed; removing it ends those "
            "(docs/operations.md, Keys)."
        )


@dataclass
class RotationSummary:
    resealed: dict[str, int] = field(default_factory=dict)
    # Rows changed by someone else between the read and the write of their batch: left as
    # they are (a later run takes any that are still not under the current key).
    changed_meanwhile: int = 0

    @property
    def total(self) -> int:
        return sum(self.resealed.values())


async def rotate_keys(
    db: Database,
    cipher: FieldCipher,
    *,
    batch_size: int = ROTATION_BATCH,
    report: Callable[[str], None] = lambda line: None,
    summary: RotationSummary | None = None,
) -> RotationSummary:
    """Re-seals every stored value not under the current key, and re-indexes its row.

    One short transaction reads a batch, another writes it (a conditional UPDATE per row),
    so bookings and sign-ins go on meanwhile. Raises `rekey.RotationStopped` at a value no
    configured secret opens; the batches before it stay written, and a run after the
    configuration is fixed carries on. Running it again when nothing is left does nothing.
    """
    done = summary if summary is not None else RotationSummary()
    for sealed in keys_service.sealed_columns():
        after = None
        done.resealed.setdefault(sealed.label, 0)
        while True:
            async with db.read() as session:
                rows = await rekey.pending(
                    session, sealed, cipher=cipher, after=after, limit=batch_size
                )
            if not rows:
                break
            changes = rekey.reseal(sealed, rows, cipher=cipher)

            async def write(
                session: AsyncSession,
                sealed: rekey.SealedColumn = sealed,
                changes: list[rekey.Change] = changes,
            ) -> int:
                return await rekey.apply(session, sealed, changes)

            try:
                written = await db.transact(write)
            except IntegrityError:
                # Re-indexed, two rows would claim the same identity document or phone: the
                # same person registered twice while processes disagreed on the current
                # secret. Nothing of this batch is written.
                raise rekey.RotationStopped(
                    f"{sealed.label}: re-indexing the {len(rows)} rows from row {rows[0].key} "
                    "would make two rows equal (one person registered twice while processes "
                    "disagreed on the current secret); merge the two"
                ) from None
            done.resealed[sealed.label] += written
            done.changed_meanwhile += len(changes) - written
            after = rows[-1].key
            report(f"{sealed.label}: {done.resealed[sealed.label]} re-sealed")
    return done


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Rows per transaction")
    ] = ROTATION_BATCH,
) -> None:
    """Re-seal every identity number, phone and other sealed value under the current secret
    and re-index it, in small transactions while yuyue keeps serving. Safe to stop and to
    run again."""
    settings = _settings()
    cipher = _master_secrets(settings).cipher()
    if len(cipher.key_ids) < 2:
        typer.echo(
            "refused, nothing changed: no previous secret is configured, so there is nothing "
            "to rotate from. Put the new secret in YUYUE_SECRET_KEY and the one it replaces "
            "in YUYUE_PREVIOUS_SECRET_KEYS (`yuyue keys new` makes one; docs/operations.md, "
            "Keys).",
            err=True,
        )
        raise typer.Exit(2)

    async def main() -> tuple[RotationSummary, list[ColumnKeys], str | None]:
        db = Database(settings.async_database_url)
        summary = RotationSummary()
        try:
            unknown = keys_service.unknown_keys(await _status(db), cipher)
            if unknown:
                lines = [
                    f"  {use.label}: {use.count} values sealed with key {use.key}"
                    for use in unknown
                ]
                typer.echo(
                    "\n".join(
                        [
                            "refused, nothing changed: stored values name a secret that is "
                            "not configured:",
                            *lines,
                            "add that secret to YUYUE_PREVIOUS_SECRET_KEYS and run again.",
                        ]
                    ),
                    err=True,
                )
                raise typer.Exit(2)
            typer.echo(f"{_configured(cipher)}; re-sealing under {cipher.key_id}")
            stopped = None
            try:
                await rotate_keys(
                    db, cipher, batch_size=batch_size, report=typer.echo, summary=summary
                )
            except rekey.RotationStopped as error:
                stopped = str(error)
            return summary, await _status(db), stopped
        finally:
            await db.dispose()

    summary, columns, stopped = asyncio.run(main())
    typer.echo(
        f"re-sealed {summary.total} values"
        + (
            f"; {summary.changed_meanwhile} changed by others meanwhile were left as they were"
            if summary.changed_meanwhile
            else ""
        )
    )
    if stopped is not None:
        typer.echo(
            f"stopped: {stopped}. The values re-sealed before it are kept; run again once "
            "that is fixed (docs/operations.md, Keys).",
            err=True,
        )
        raise typer.Exit(1)
    remaining = sum(column.not_current(cipher) for column in columns)
    if remaining:
        typer.echo(
            f"{remaining} values are still not under the current key (written meanwhile by a "
            "process with the old configuration?): run `yuyue keys rotate` again."
        )
        raise typer.Exit(1)
    typer.echo(
        f"every stored value is under key {cipher.key_id}. Keep the previous secret "
        "configured while signed tokens it issued should work (staff sign-ins, patients' "
        "sessions, QR vouchers), then remove it (docs/operations.md, Keys)."
    )


@reports_app.command("refresh")
def reports_refresh(
    date_from: Annotated[
        str | None, typer.Option("--from", help="First visit day, YYYY-MM-DD")
    ] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last visit day, YYYY-MM-DD")] = None,
) -> None:
    """Rebuild the reports' summary rows of these visit days (default: the days the periodic
    job keeps fresh, a few days back to a month ahead). Running it twice changes nothing."""
    from datetime import date as Date

    from yuyue.reports import refresh as reports_refresh_days
    from yuyue.reports import service as reports_service

    try:
        first = Date.fromisoformat(date_from) if date_from else None
        last = Date.fromisoformat(date_to) if date_to else None
    except ValueError as error:
        typer.echo("dates are YYYY-MM-DD", err=True)
        raise typer.Exit(2) from error

    def days(today: Date) -> list[Date]:
        if first is None and last is None:
            return reports_service.recent_days(today)
        return reports_service.days_between(first or last or today, last or first or today)

    if first and last and last < first:
        typer.echo("--to is before --from", err=True)
        raise typer.Exit(2)
    settings = _settings()

    async def main() -> list[reports_service.Refreshed]:
        db = Database(settings.async_database_url)
        try:
            return await reports_refresh_days.refresh(db, now=SystemClock().now(), days=days)
        finally:
            await db.dispose()

    for done in asyncio.run(main()):
        typer.echo(f"hospital {done.hospital_id}: {done.days} visit days, {done.rows} summary rows")


def _seed(settings: Settings, *, history: bool = True) -> DemoSummary:
    from dataclasses import replace

    from yuyue.demo.history import HISTORY_WEEKS, seed_history
    from yuyue.demo.seed import DAYS_OF_SESSIONS, seed_demo
    from yuyue.kit.localtime import local_today
    from yuyue.reports import refresh as reports_refresh_days
    from yuyue.reports import service as reports_service

    cipher = settings.master_secrets().cipher()
    now = SystemClock().now()
    today = local_today(now, "Asia/Shanghai")

    async def work(session: AsyncSession) -> DemoSummary:
        summary = await seed_demo(session, cipher=cipher, now=now, today=today)
        if not history:
            return summary
        past = await seed_history(
            session, hospital_id=summary.hospital_id, cipher=cipher, today=today, now=now
        )
        return replace(summary, history=past)

    summary = _run(settings, work)
    if summary.history is not None and summary.history.sessions:
        # The reports read summary rows: rebuild the days the history and the demo's
        # sessions cover, so every report and the quota advice show them at once.
        def days(local: date) -> list[date]:
            return reports_service.days_between(
                local - timedelta(days=7 * HISTORY_WEEKS), local + timedelta(days=DAYS_OF_SESSIONS)
            )

        async def rebuild() -> None:
            db = Database(settings.async_database_url)
            try:
                await reports_refresh_days.refresh(
                    db, now=now, days=days, hospital_id=summary.hospital_id
                )
            finally:
                await db.dispose()

        asyncio.run(rebuild())
    return summary


@app.command("seed-demo")
def seed_demo_command(
    history: bool = typer.Option(
        True, "--history/--no-history", help="also generate the past weeks the reports show"
    ),
) -> None:
    """Load the demo hospital into the database (running it twice changes nothing)."""
    settings = _settings()
    migrate.upgrade_sync(settings.async_database_url)
    summary = _seed(settings, history=history)
    typer.echo(f"demo hospital loaded: {summary}")


def _create_key(settings: Settings, channel: Channel, name: str) -> str:
    from yuyue.staff.service import create_api_key

    async def work(session: AsyncSession) -> str:
        hospital_id = await session.scalar(
            select(Hospital.id).where(Hospital.code == settings.hospital_code)
        )
        _require_hospital(hospital_id, settings.hospital_code)
        assert hospital_id is not None
        key, _row = await create_api_key(
            session, hospital_id=hospital_id, channel=channel, name=name, now=SystemClock().now()
        )
        return key

    return _run(settings, work)


@api_key_app.command("create")
def api_key_create(
    channel: Annotated[
        Channel, typer.Option(help="The channel this client books for; it picks the pool.")
    ],
    name: Annotated[str, typer.Option(help="Who holds the key")] = "",
) -> None:
    """Print a new API key for a channel client, alone on the last line."""
    settings = _settings()
    key = _create_key(settings, channel, name or f"{channel.value} client")
    typer.echo(
        f"channel: {channel.value} (hospital {settings.hospital_code}); the key is shown once:"
    )
    typer.echo(key)


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(help="Serving processes")] = 1,
) -> None:
    """Serve the web app and API."""
    import uvicorn

    os.environ["YUYUE_SERVING_PROCESSES"] = str(workers)
    settings = _settings()
    if workers > 1 and settings.async_database_url.startswith("sqlite"):
        # One process runs the sweeps; the others only serve.
        typer.echo("note: several processes on SQLite share one writer; PostgreSQL scales better.")
    _announce_when_ready(host, port)
    uvicorn.run(
        "yuyue.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        log_config=observability.logging_config(
            json_logs=settings.log_format == "json", level=settings.log_level
        ),
        access_log=False,
        # Waiting-room screens hold their streams open; on shutdown they reconnect to
        # another process instead of holding this one up.
        timeout_graceful_shutdown=5,
    )


def _announce_when_ready(host: str, port: int, *, give_up_after: float = 600.0) -> None:
    """Prints one line once the server answers its health check, so whoever started it can
    tell it is up (uvicorn itself is told to log warnings only). The check runs in this
    process, which with several workers is their supervisor: one line however many there
    are, and only once one of them has finished starting."""
    probe_host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    shown = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    line = f"yuyue is serving on {shown} (API docs: {shown}docs) — Ctrl-C stops it"

    def answers() -> bool:
        # http.client rather than urllib: a proxy from the environment must not answer.
        connection = http.client.HTTPConnection(probe_host, port, timeout=1)
        try:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            return response.status == 200 and response.read() == b"ok"
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def watch() -> None:
        deadline = time.monotonic() + give_up_after
        while time.monotonic() < deadline:
            if answers():
                typer.echo(line)
                return
            time.sleep(0.1)

    if answers():
        return  # something already serves there; uvicorn will say it cannot bind
    threading.Thread(target=watch, name="ready-line", daemon=True).start()


@app.command()
def worker() -> None:
    """Run background jobs on their own (message delivery, reminders, expiring holds,
    refunds, the daily reconciliation) until Ctrl-C or SIGTERM; set
    YUYUE_WORKER_IN_PROCESS=false for `yuyue serve` then."""
    from yuyue.jobs import run_standalone

    settings = _settings()
    logging.config.dictConfig(
        observability.logging_config(
            json_logs=settings.log_format == "json", level=settings.log_level
        )
    )
    run_standalone(settings)


@app.command()
def reconcile(
    provider: Annotated[
        str | None,
        typer.Option(help="wechatpay or alipay; every configured provider when left out"),
    ] = None,
    day: Annotated[
        str | None,
        typer.Option("--date", help="The business day (Asia/Shanghai), YYYY-MM-DD; yesterday"),
    ] = None,
) -> None:
    """Run the T+1 reconciliation of a provider's statement by hand (the worker runs it
    every morning): lists what differs and refunds charges with no booking."""
    from datetime import date as date_type

    from yuyue.jobs import reconcile_once
    from yuyue.payments.gateway import Provider
    from yuyue.web.context import AppContext

    try:
        chosen = Provider(provider) if provider else None
        business_day = date_type.fromisoformat(day) if day else None
    except ValueError as error:
        typer.echo(f"not understood: {error}", err=True)
        raise typer.Exit(2) from error
    settings = _settings()

    async def main() -> list[str]:
        ctx = AppContext.build(settings)
        try:
            if chosen is not None and chosen not in ctx.gateways:
                typer.echo(f"{chosen.value} is not configured here", err=True)
                raise typer.Exit(2)
            reports = await reconcile_once(ctx, provider=chosen, business_day=business_day)
            return [
                f"{r.provider.value} {r.business_day}: {r.state.value}, "
                f"{r.mismatches} discrepancies, {len(r.refunds_started)} refunds started"
                + (f" ({r.error})" if r.error else "")
                for r in reports
            ]
        finally:
            await ctx.db.dispose()

    lines = asyncio.run(main())
    if not lines:
        typer.echo("nothing to reconcile: no provider configured", err=True)
        raise typer.Exit(1)
    for line in lines:
        typer.echo(line)


@app.command()
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Set up and print, then exit")
    ] = False,
) -> None:
    """Init, load the demo hospital, print how to use it, and serve."""
    from yuyue.demo import catalogue

    base = f"http://{host}:{port}"
    settings = _settings()
    migrate.upgrade_sync(settings.async_database_url)
    summary = _seed(settings)
    key = _create_key(settings, Channel.APP, "demo app")
    kiosk_key = _create_key(settings, Channel.KIOSK, "demo kiosk")
    first_patient = next(iter(summary.patients.values()))
    auth = f"-H 'Authorization: Bearer {key}'"
    booking = f'{{"patient_id": "{first_patient}", "session_id": "<an id from /sessions>"}}'
    typer.echo(
        "\n".join(
            [
                "",
                f"yuyue demo — {catalogue.HOSPITAL.name_zh} ({catalogue.HOSPITAL.name_en})",
                f"  Patient pages (open on a phone-sized browser): {base}/",
                "    Sign in with any mainland mobile number (e.g. 13800138000); the code",
                f"    arrives on the demo phone: {base}/demo/phone",
                f"  API docs:    {base}/docs",
                f"  OpenAPI:     {base}/openapi.json",
                f"  Health:      {base}/healthz",
                f"  Database:    {_redact(settings.async_database_url)}",
                "  Visit day (sign in at /staff/signin as nurse / nurse123, doctor / doctor123):",
                f"    Kiosk:       {base}/kiosk   (set up once with the demo kiosk key below)",
                f"    Triage desk: {base}/desk",
                f"    Doctor:      {base}/doctor",
                f"    Screens:     {base}/screens/<department id> (links on the desk page)",
                "  Paying: paid levels go to local stand-ins for WeChat Pay and Alipay (no real",
                "    money moves); their cashier pages open from the pay button.",
                f"  Finance:     {base}/finance   (sign in at /staff/signin as finance)",
                "  Demo kiosk key (channel kiosk):",
                f"    {kiosk_key}",
                "  Staff logins (hospital code 'demo', POST /api/v1/auth/token):",
                *[
                    f"    {s.username:<10} {s.password:<14} {', '.join(s.roles)}"
                    + ("  + second factor (below)" if s.totp_secret else "")
                    for s in catalogue.STAFF
                ],
                *_second_factor_lines(base, catalogue.STAFF),
                "  Demo patients (patient_id):",
                *[f"    {pid}  {name}" for name, pid in summary.patients.items()],
                "  Try it:",
                f"    curl {auth} {base}/api/v1/departments",
                f"    curl {auth} '{base}/api/v1/sessions'",
                "    # The same Idempotency-Key makes a retry return the first answer.",
                f"    curl {auth} -H 'Content-Type: application/json' \\",
                f"      -H 'Idempotency-Key: {uuid.uuid4()}' \\",
                f"      -X POST {base}/api/v1/appointments \\",
                f"      -d '{booking}'",
                "  Demo API key (channel app):",
                key,
                "",
            ]
        )
    )
    if not no_serve:
        # The demo hospital sends no real text messages: they land on the demo phone page.
        # The server reads its settings from the environment.
        os.environ.setdefault("YUYUE_DEMO_MODE", "true")
        # Patients pay through local stand-ins for WeChat Pay and Alipay (no real money).
        os.environ.setdefault("YUYUE_PAYMENTS_SIMULATED", "true")
        os.environ.setdefault("YUYUE_PUBLIC_BASE_URL", base)
        serve(host=host, port=port, workers=1)


def _second_factor_lines(base: str, accounts: Iterable[StaffAccount]) -> list[str]:
    """How to sign in as the demo's account with a second factor: its secret, for an
    authenticator app or for pyotp."""
    lines: list[str] = []
    for account in accounts:
        if account.totp_secret is None:
            continue
        uri, _ = provisioning(account.totp_secret, username=account.username, issuer="yuyue demo")
        lines += [
            f"  Second factor ({account.username} / {account.password}): after the password,",
            f'    {base}/staff/signin asks for a 6-digit code (API: "otp" in /api/v1/auth/token).',
            f"    TOTP secret (base32, SHA-1, 6 digits, 30 s): {account.totp_secret}",
            "    Add it to an authenticator app (Google or Microsoft Authenticator, FreeOTP...:",
            '    "enter a setup key", time-based), or open this in one that reads links:',
            f"    {uri}",
            '    or print the current code: python -c "import pyotp; '
            f"print(pyotp.TOTP('{account.totp_secret}').now())\"",
        ]
    return lines


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url


if __name__ == "__main__":
    app()
