"""Benchmark fixtures: synthetic identities registered in bulk, more places in the demo
hospital, fresh databases with snapshot/restore, the server subprocess (one process or
several), and the zero-overbooking check run directly against the database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
import httpx
from cpu import CpuSnapshot, process_tree
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from yuyue.config import normalise_database_url
from yuyue.kit.crypto import FieldCipher, load_master_secret
from yuyue.kit.ids import new_id
from yuyue.patients import rules as patient_rules
from yuyue.patients.models import Account, Patient, RecordNumberSequence
from yuyue.patients.service import identity_index, phone_index
from yuyue.scheduling.models import Hospital

# The statuses that occupy a place, as the brief for the check states them (deliberately not
# imported from the server: the check should not trust the code it checks).
ACTIVE = ("held", "booked", "checked_in")
_ACTIVE_SQL = "status IN ('held', 'booked', 'checked_in')"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉力永健世广志义兴良海山"


class SetupError(RuntimeError):
    """The benchmark could not prepare its fixture."""


class OverbookingError(AssertionError):
    """The database shows more places taken than exist, or numbers handed out twice."""


# --- identities ------------------------------------------------------------------------


def resident_id(region: int, birth: date, sequence: int) -> str:
    """A valid 18-character resident ID number (GB 11643-1999 check character)."""
    body = f"{region:06d}{birth:%Y%m%d}{sequence:03d}"
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


@dataclass(frozen=True)
class Identity:
    name: str
    id_number: str
    phone: str

    def payload(self) -> dict[str, str]:
        return {
            "name": self.name,
            "id_type": "resident_id",
            "id_number": self.id_number,
            "phone": self.phone,
        }


class IdentityFactory:
    """Unique people (adults born 1960–2000 unless told otherwise), each with a phone of
    their own (an account phone may hold at most five patients)."""

    def __init__(self, seed: int = 20261123) -> None:
        self.rng = random.Random(seed)
        self.ids: set[str] = set()
        self.count = 0

    def next(self, born: tuple[date, date] = (date(1960, 1, 1), date(2000, 12, 31))) -> Identity:
        start, span = born[0], (born[1] - born[0]).days
        while True:
            number = resident_id(
                self.rng.randint(110101, 110199),
                start + timedelta(days=self.rng.randint(0, span)),
                self.rng.randint(0, 999),
            )
            if number not in self.ids:
                break
        self.ids.add(number)
        self.count += 1
        name = self.rng.choice(_SURNAMES) + "".join(
            self.rng.choice(_GIVEN) for _ in range(self.rng.randint(1, 2))
        )
        return Identity(name=name, id_number=number, phone=f"139{self.count:08d}")


@dataclass(frozen=True)
class BenchPatient:
    id: str
    sex: str
    birth_date: date
    identity: Identity


async def register_patients_in_bulk(
    database_url: str,
    master_secret: str,
    count: int,
    *,
    children: float = 0.1,
    hospital_code: str = "demo",
    chunk: int = 1000,
) -> list[BenchPatient]:
    """Registers `count` patients (a share of them children aged 2–12, the rest adults)
    straight into the database, each under an account of their own, as
    `POST /api/v1/patients` would store them: the project's own identity rules, field
    cipher and blind indexes, with the server's master secret. Thousands of patients take
    seconds this way instead of minutes through HTTP; :func:`check_bulk_patients` then
    confirms through the API that the server finds them."""
    cipher = FieldCipher(load_master_secret(master_secret))
    now = datetime.now(UTC)
    today = now.date()
    factory = IdentityFactory()
    young = (today - timedelta(days=12 * 365), today - timedelta(days=2 * 365))
    engine = create_async_engine(normalise_database_url(database_url))
    patients: list[BenchPatient] = []
    try:
        async with engine.begin() as connection:
            hospital_id = await connection.scalar(
                select(Hospital.id).where(Hospital.code == hospital_code)
            )
            if hospital_id is None:
                raise SetupError(f"no hospital {hospital_code!r} to register patients in")
            # Medical record numbers carry on from the hospital's last one (the bench is
            # the only writer while it sets up, so no other registration takes one).
            last = await connection.scalar(
                select(RecordNumberSequence.last_number).where(
                    RecordNumberSequence.hospital_id == hospital_id
                )
            )
            taken = last or 0
            n_children = round(count * children)
            for first in range(0, count, chunk):
                accounts: list[dict[str, Any]] = []
                rows: list[dict[str, Any]] = []
                for n in range(first, min(first + chunk, count)):
                    person = factory.next(young) if n < n_children else factory.next()
                    parsed = patient_rules.parse_identity(
                        patient_rules.IdType.RESIDENT_ID, person.id_number, today=today
                    )
                    assert parsed.birth_date is not None
                    assert parsed.sex is not None
                    mobile = patient_rules.normalise_mobile(person.phone)
                    account_id, patient_id = new_id(), new_id()
                    accounts.append(
                        {
                            "id": account_id,
                            "hospital_id": hospital_id,
                            "phone_cipher": cipher.encrypt(mobile),
                            "phone_index": phone_index(cipher, mobile),
                            "phone_masked": patient_rules.mask_phone(mobile),
                            "email": None,
                            "locale": "zh-CN",
                            "created_at": now,
                        }
                    )
                    rows.append(
                        {
                            "id": patient_id,
                            "hospital_id": hospital_id,
                            "account_id": account_id,
                            "name": patient_rules.validate_name(person.name),
                            "id_type": parsed.id_type.value,
                            "id_cipher": cipher.encrypt(parsed.number),
                            "id_index": identity_index(cipher, parsed.id_type, parsed.number),
                            "id_masked": patient_rules.mask_id_number(parsed.number),
                            "birth_date": parsed.birth_date,
                            "sex": parsed.sex.value,
                            "phone_cipher": cipher.encrypt(mobile),
                            "phone_index": phone_index(cipher, mobile),
                            "phone_masked": patient_rules.mask_phone(mobile),
                            "record_number": patient_rules.record_number(taken + n + 1),
                            "created_at": now,
                        }
                    )
                    patients.append(
                        BenchPatient(str(patient_id), parsed.sex.value, parsed.birth_date, person)
                    )
                await connection.execute(insert(Account.__table__), accounts)
                await connection.execute(insert(Patient.__table__), rows)
            if last is None:
                await connection.execute(
                    insert(RecordNumberSequence.__table__).values(
                        hospital_id=hospital_id, last_number=taken + count
                    )
                )
            else:
                await connection.execute(
                    update(RecordNumberSequence.__table__)
                    .where(RecordNumberSequence.hospital_id == hospital_id)
                    .values(last_number=taken + count)
                )
    finally:
        await engine.dispose()
    return patients


async def check_bulk_patients(base_url: str, key: str, sample: list[BenchPatient]) -> int:
    """Registers a few of the bulk patients again through the API: each must be refused as
    already registered, naming the same patient (so the server's cipher and blind index
    find them). Returns how many were checked."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        for patient in sample:
            response = await client.post("/api/v1/patients", json=patient.identity.payload())
            found = response.json() if response.status_code == 409 else {}
            if found.get("code") != "patient_already_registered" or found.get("patient_id") != (
                patient.id
            ):
                raise SetupError(
                    "a patient registered in bulk is not found by the server: "
                    f"{response.status_code} {response.text[:300]}"
                )
    return len(sample)


# The most places a schedule template may have (the server's CHECK constraint).
MOST_PER_CLINIC = 500
# Sessions of the demo hospital's department clinics (those without a named doctor).
_DEPARTMENT_SESSIONS = (
    "SELECT s.id FROM clinic_session s JOIN schedule_template t ON t.id = s.template_id"
    " WHERE t.doctor_id IS NULL"
)


async def enlarge_inventory(database_url: str, factor: int, release_days: int) -> dict[str, int]:
    """More places to book, so that a fast server does not run out in a booking run.

    The capacity of the demo hospital's department clinics (普通门诊, no named doctor) is
    multiplied by `factor` (up to :data:`MOST_PER_CLINIC`) and their generated sessions
    removed, so that `yuyue seed-demo`, run again, generates them anew with the larger
    capacity (slots, pools and numbers laid out by the server's own generator): a large
    hospital's general clinics take hundreds of patients a half-day. The doctors' sessions,
    where a release is contested, keep their size. And the hospital's booking policy
    releases sessions `release_days` ahead instead of seven (the demo generates two weeks).
    Only for a database without appointments."""
    engine = create_async_engine(normalise_database_url(database_url))
    try:
        async with engine.begin() as connection:
            booked = await connection.scalar(text("SELECT COUNT(*) FROM appointment"))
            if booked:
                raise SetupError(f"{booked} appointments exist; cannot regenerate sessions")
            sessions = 0
            templates = 0
            if factor > 1:
                sessions = int(
                    await connection.scalar(
                        text(f"SELECT COUNT(*) FROM ({_DEPARTMENT_SESSIONS}) AS d")
                    )
                    or 0
                )
                for table in ("slot_pool", "time_slot"):
                    await connection.execute(
                        text(f"DELETE FROM {table} WHERE session_id IN ({_DEPARTMENT_SESSIONS})")
                    )
                await connection.execute(
                    text(
                        "DELETE FROM clinic_session WHERE template_id IN"
                        " (SELECT id FROM schedule_template WHERE doctor_id IS NULL)"
                    )
                )
                changed = await connection.execute(
                    text(
                        "UPDATE schedule_template SET capacity = CASE"
                        " WHEN capacity * :factor > :most THEN :most ELSE capacity * :factor END"
                        " WHERE doctor_id IS NULL"
                    ),
                    {"factor": factor, "most": MOST_PER_CLINIC},
                )
                templates = changed.rowcount
            policies = await connection.execute(
                text("UPDATE booking_policy SET release_days_ahead = :days"),
                {"days": release_days},
            )
    finally:
        await engine.dispose()
    return {
        "templates_enlarged": templates,
        "sessions_regenerated": sessions,
        "policies_release_days_ahead": policies.rowcount,
    }


async def count_active(database_url: str, session_ids: list[str]) -> dict[str, int]:
    """Active appointments (places taken) per session."""
    if not session_ids:
        return {}
    engine = create_async_engine(normalise_database_url(database_url))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    f"SELECT session_id, COUNT(*) FROM appointment WHERE {_ACTIVE_SQL}"
                    " GROUP BY session_id"
                )
            )
            counts = {str(_as_uuid(sid)): n for sid, n in rows}
    finally:
        await engine.dispose()
    return {sid: counts.get(sid, 0) for sid in session_ids}


def _as_uuid(value: Any) -> Any:
    """SQLite keeps UUIDs as 32 hex digits; the API shows them with dashes."""
    return value if not isinstance(value, str) else uuid.UUID(value)


async def flush_redis(url: str) -> None:
    """Empties the Redis database the benchmark's servers use (a restored database must
    not meet sold-out marks, cached answers or idempotency keys of an earlier run)."""
    from redis.asyncio import from_url

    client = from_url(url)
    try:
        await client.flushdb()
    except OSError as error:
        raise SetupError(f"Redis at {url} is not reachable: {error}") from error
    finally:
        await client.aclose()


# --- databases -------------------------------------------------------------------------


@dataclass
class Verification:
    pools: int
    places: int
    taken: int
    active_appointments: int
    violations: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "pools": self.pools,
            "places": self.places,
            "taken": self.taken,
            "active_appointments": self.active_appointments,
            "violations": {
                name: [[str(value) for value in row] for row in rows]
                for name, rows in self.violations.items()
            },
        }


CHECKS = {
    # taken beyond capacity, or out of step with the appointments that hold the places
    "pool_taken": f"""
        SELECT p.id, p.capacity, p.taken, COALESCE(a.n, 0)
        FROM slot_pool p
        LEFT JOIN (SELECT pool_id, COUNT(*) AS n FROM appointment WHERE {_ACTIVE_SQL}
                   GROUP BY pool_id) a ON a.pool_id = p.id
        WHERE p.taken > p.capacity OR p.taken <> COALESCE(a.n, 0)""",
    # one number handed to two active appointments of a session
    "duplicate_number": f"""
        SELECT session_id, sequence_number, COUNT(*) FROM appointment WHERE {_ACTIVE_SQL}
        GROUP BY session_id, sequence_number HAVING COUNT(*) > 1""",
    # one patient holding two active places in one session
    "duplicate_patient": f"""
        SELECT session_id, patient_id, COUNT(*) FROM appointment WHERE {_ACTIVE_SQL}
        GROUP BY session_id, patient_id HAVING COUNT(*) > 1""",
    # a number outside the range its pool owns (first_number .. first_number + capacity - 1)
    "number_outside_pool": f"""
        SELECT a.id, a.sequence_number, p.first_number, p.capacity
        FROM appointment a JOIN slot_pool p ON p.id = a.pool_id
        WHERE a.{_ACTIVE_SQL} AND (a.sequence_number < p.first_number
              OR a.sequence_number >= p.first_number + p.capacity)""",
}
_TOTALS = f"""
    SELECT (SELECT COUNT(*) FROM slot_pool), (SELECT COALESCE(SUM(capacity), 0) FROM slot_pool),
           (SELECT COALESCE(SUM(taken), 0) FROM slot_pool),
           (SELECT COUNT(*) FROM appointment WHERE {_ACTIVE_SQL})"""


class Backend(Protocol):
    name: str
    url: str

    async def prepare(self) -> None: ...
    async def snapshot(self) -> None: ...
    async def restore(self) -> None: ...
    async def verify(self) -> Verification: ...
    async def cleanup(self) -> None: ...
    async def watch_connections(self, peak: dict[str, int]) -> None: ...


class SqliteBackend:
    """A new database file in a temporary directory; snapshots via the backup API."""

    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "yuyue.db"
        self.snapshot_path = workdir / "snapshot.db"
        self.url = f"sqlite:///{self.path}"

    def _files(self) -> list[Path]:
        return [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]

    async def prepare(self) -> None:
        for path in self._files():
            path.unlink(missing_ok=True)

    async def snapshot(self) -> None:
        self.snapshot_path.unlink(missing_ok=True)
        with (
            sqlite3.connect(self.path) as source,
            sqlite3.connect(self.snapshot_path) as target,
        ):
            source.backup(target)
        source.close()
        target.close()

    async def restore(self) -> None:
        for path in self._files():
            path.unlink(missing_ok=True)
        shutil.copyfile(self.snapshot_path, self.path)

    async def verify(self) -> Verification:
        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            violations = {
                name: connection.execute(sql).fetchall()[:20] for name, sql in CHECKS.items()
            }
            pools, places, taken, active = connection.execute(_TOTALS).fetchone()
        finally:
            connection.close()
        return Verification(pools, places, taken, active, violations)

    async def cleanup(self) -> None:
        self.snapshot_path.unlink(missing_ok=True)

    async def watch_connections(self, peak: dict[str, int]) -> None:
        """Nothing to watch: SQLite has no connection limit."""


class PostgresBackend:
    """A fresh database `yuyue_bench`, dropped and created from the `test` database;
    snapshots are template databases (CREATE DATABASE ... TEMPLATE)."""

    name = "postgresql"

    def __init__(
        self,
        *,
        admin_url: str = "postgresql://postgres@127.0.0.1:5432/test",
        database: str = "yuyue_bench",
    ) -> None:
        self.admin_url = admin_url
        self.database = database
        self.snapshot_name = f"{database}_snapshot"
        self.url = admin_url.rsplit("/", 1)[0] + f"/{database}"

    async def _admin(self, *statements: str) -> None:
        connection = await asyncpg.connect(self.admin_url)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    async def prepare(self) -> None:
        await self._admin(
            f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)',
            f'DROP DATABASE IF EXISTS "{self.snapshot_name}" WITH (FORCE)',
            f'CREATE DATABASE "{self.database}"',
        )

    async def snapshot(self) -> None:
        await self._admin(
            f'DROP DATABASE IF EXISTS "{self.snapshot_name}" WITH (FORCE)',
            f'CREATE DATABASE "{self.snapshot_name}" TEMPLATE "{self.database}"',
        )

    async def restore(self) -> None:
        await self._admin(
            f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)',
            f'CREATE DATABASE "{self.database}" TEMPLATE "{self.snapshot_name}"',
        )

    async def verify(self) -> Verification:
        connection = await asyncpg.connect(self.url)
        try:
            violations = {
                name: [tuple(row) for row in (await connection.fetch(sql))[:20]]
                for name, sql in CHECKS.items()
            }
            row = await connection.fetchrow(_TOTALS)
        finally:
            await connection.close()
        assert row is not None
        return Verification(row[0], row[1], row[2], row[3], violations)

    async def cleanup(self) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.snapshot_name}" WITH (FORCE)')

    async def watch_connections(self, peak: dict[str, int], interval_s: float = 0.5) -> None:
        """Until cancelled, records the most client connections seen per database (the
        server shares `max_connections` with everything else on this PostgreSQL)."""
        try:
            connection = await asyncpg.connect(self.admin_url)
        except (OSError, asyncpg.PostgresError):
            return
        try:
            while True:
                rows = await connection.fetch(
                    "SELECT COALESCE(datname, '-'), COUNT(*) FROM pg_stat_activity"
                    " WHERE backend_type = 'client backend' GROUP BY 1"
                )
                for name, count in rows:
                    peak[name] = max(peak.get(name, 0), count)
                peak["(all)"] = max(peak.get("(all)", 0), sum(count for _, count in rows))
                await asyncio.sleep(interval_s)
        finally:
            await connection.close()


# --- the yuyue command and server ------------------------------------------------------


def yuyue_executable() -> str:
    beside = Path(sys.executable).parent / "yuyue"
    found = str(beside) if beside.exists() else shutil.which("yuyue")
    if not found:
        raise SetupError("the `yuyue` command is not installed in this environment")
    return found


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> str:
    completed = subprocess.run(
        [yuyue_executable(), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        raise SetupError(
            f"`yuyue {' '.join(args)}` failed ({completed.returncode}):\n{completed.stderr[-4000:]}"
        )
    return completed.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """`yuyue serve` as a subprocess (`workers` serving processes under one parent, in a
    process group of their own), logging to a file we scan for errors."""

    def __init__(self, env: dict[str, str], cwd: Path, log_path: Path, *, workers: int = 1) -> None:
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.workers = workers
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self._log_offset = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 60.0) -> None:
        self.port = free_port()
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self.process = await asyncio.create_subprocess_exec(
                yuyue_executable(),
                *("serve", "--host", "127.0.0.1", "--port", str(self.port)),
                *(("--workers", str(self.workers)) if self.workers > 1 else ()),
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own group, so a server that will not stop is killed with its workers.
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise SetupError(f"the server exited at start:\n{self.log_tail()}")
                try:
                    response = await client.get("/healthz")
                    if response.status_code == 200 and response.text == "ok":
                        if self.workers > 1:
                            await self._all_workers_up()
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        await self.stop()
        raise SetupError(f"the server did not become healthy in {timeout_s}s:\n{self.log_tail()}")

    async def _all_workers_up(self) -> None:
        """The first answer came from one worker; the others may still be importing. Waits
        until the process tree has all workers and a burst of connections is answered."""
        assert self.process is not None
        for _ in range(100):
            tree = process_tree(CpuSnapshot.take().processes, self.process.pid)
            if len(tree) > self.workers:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as fresh:
            await asyncio.gather(*(fresh.get("/healthz") for _ in range(4 * self.workers)))

    async def wait_idle(self, timeout_s: float = 30.0) -> float:
        """Waits until /healthz answers within 50 ms (a backlog has drained); returns the
        seconds waited."""
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s) as client:
            while time.monotonic() - started < timeout_s:
                t = time.monotonic()
                try:
                    await client.get("/healthz")
                except httpx.HTTPError:
                    pass
                else:
                    if time.monotonic() - t < 0.05:
                        break
                await asyncio.sleep(0.2)
        return time.monotonic() - started

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self) -> int | None:
        """Stops the server gracefully (SIGINT), killing it after 15 s; returns its exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        code = await process.wait()
        # Workers left behind by a parent that died first.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return code

    def new_log(self) -> str:
        """Log written since the last start."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def mark_log(self) -> None:
        """Makes :meth:`new_log` start from here."""
        try:
            self._log_offset = self.log_path.stat().st_size
        except OSError:
            self._log_offset = 0

    def log_tail(self, chars: int = 4000) -> str:
        return self.new_log()[-chars:]


def scan_log(log: str, limit: int = 5) -> dict[str, Any]:
    """Counts error lines and tracebacks in a server log and keeps the first few, shortened
    to their head and the final exception line."""
    lines = log.splitlines()
    starts = [
        i
        for i, line in enumerate(lines)
        if line.startswith(("ERROR", "CRITICAL", "Traceback")) or "Exception in ASGI" in line
    ]
    excerpts: list[str] = []
    for i in starts:
        if len(excerpts) >= limit:
            break
        if i > 0 and i - 1 in starts:
            continue  # the traceback under an ERROR line already taken
        block = lines[i : i + 200]
        end = next(
            (
                j
                for j, line in enumerate(block[1:], 1)
                if line and not line.startswith((" ", "Traceback", "The above", "During"))
            ),
            len(block) - 1,
        )
        chunk = block[: end + 1]
        excerpts.append("\n".join([*chunk[:2], "...", *chunk[-3:]] if len(chunk) > 6 else chunk))
    return {
        "error_lines": sum(1 for line in lines if line.startswith(("ERROR", "CRITICAL"))),
        "tracebacks": sum(1 for line in lines if line.startswith("Traceback")),
        "excerpts": excerpts,
    }


def source_fingerprint() -> str:
    """A short hash of the installed yuyue sources, to notice code changing mid-benchmark
    (the server is restarted for every booking run and picks up whatever is on disk)."""
    import hashlib

    import yuyue

    root = Path(yuyue.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="yuyue-bench-"))
