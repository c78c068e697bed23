"""Throughput and latency benchmark of yuyue's booking hot path, on PostgreSQL and SQLite.

Usage::

    python bench/run.py [--db sqlite|postgresql|both] [--quick]

Method
------
For each database the harness prepares a fresh database, loads the demo hospital
(``yuyue seed-demo``), creates an ``app`` channel API key and registers a few thousand
patients through the API. It snapshots that state, then starts ``yuyue serve`` (one process)
and drives it from this process with an *open-loop* load generator (:mod:`loadgen`):

* Requests are scheduled at a constant arrival rate R: request ``i`` is due at the intended
  send time ``t0 + i / R``, whether or not earlier requests have been answered.
* Latency is measured from the intended send time, so queueing in front of a saturated
  server (or of a busy connection pool) counts; nothing is hidden by the client slowing
  down (no coordinated omission). Requests that had to wait for a connection, were sent
  late, or were never sent before the window closed are counted separately.
* Each run offers R for a warm-up (not recorded) and then for the measured window.

A run is *sustainable* when the answers received in the window reach 95% of the offered
rate, p99 latency is at most 100 ms, and under 1% of requests failed (5xx, transport
error, timeout or never sent). For each scenario the offered rate climbs a ladder until a
run is not sustainable, then bisects between the last good and the first bad rate; the last
good run gives the scenario's maximum sustainable throughput.

Scenarios, in order: ``trivial`` (GET /healthz; its capacity C is the yardstick),
``availability`` (session lists and slot lists), ``release_peak`` (everyone booking three
hot sessions that are already sold out: ``409 sold_out`` refusals; once at 1,000
attempts/s and then searched), ``release_moment`` (the same at 1,000 attempts/s, but the
window opens on untouched inventory, so it contains the sell-out itself) and ``spread``
(bookings over all open free sessions, mostly successful). Every booking run starts from
the snapshot with a freshly started server (after a short burst of reads that opens its
database connections) and its warm-up books like the window does; for ``release_peak``
the hot sessions are first booked out by a few closed-loop clients and the server left to
settle; ``release_moment`` warms up with GET /healthz instead. After every booking run the
database itself is checked for overbooking (:data:`fixtures.CHECKS`); a violation fails
the benchmark.

Results go to ``bench/results/<timestamp>-<db>.json`` and a Markdown table per database
is printed, with each scenario's throughput as a ratio of C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import httpx
from cpu import CpuSnapshot, usage, wait_for_quiet
from fixtures import (
    Backend,
    OverbookingError,
    PostgresBackend,
    Server,
    SetupError,
    SqliteBackend,
    Verification,
    create_patients,
    make_workdir,
    run_cli,
    scan_log,
    source_fingerprint,
)
from loadgen import OpenLoopClient, RequestFactory, RunResult, build_request

from yuyue.kit.crypto import generate_master_secret

RESULTS = Path(__file__).resolve().parent / "results"
LOCK_PATH = Path(tempfile.gettempdir()) / "yuyue-bench.lock"
HOST = "127.0.0.1"
GOAL_REFUSALS = 0.7
GOAL_BOOKINGS = 0.25
GOAL_P99_MS = 100.0
PEAK_RATE = 1000.0


@dataclass(frozen=True)
class Config:
    quick: bool
    duration_s: float
    warmup_s: float
    patients: int
    refine: int
    max_down_steps: int
    max_connections: int
    quiet_timeout_s: float
    ladders: dict[str, list[float]]
    max_p99_ms: float = 100.0
    min_achieved: float = 0.95
    max_failed: float = 0.01
    quiet_limit_cores: float = 0.25
    noisy_cores: float = 0.4

    @classmethod
    def build(cls, args: argparse.Namespace) -> Config:
        if args.quick:
            return cls(
                quick=True,
                duration_s=args.duration or 2.0,
                warmup_s=0.5,
                patients=args.patients or 300,
                refine=0,
                max_down_steps=1,
                max_connections=args.connections,
                quiet_timeout_s=0.0 if args.no_wait else 10.0,
                ladders={
                    "trivial": [500, 1000],
                    "availability": [25, 50],
                    "release_peak": [100, 1000],
                    "spread": [10, 25],
                },
            )
        return cls(
            quick=False,
            duration_s=args.duration or 10.0,
            warmup_s=2.0,
            patients=args.patients or 3000,
            refine=2,
            max_down_steps=4,
            max_connections=args.connections,
            quiet_timeout_s=0.0 if args.no_wait else 30.0,
            ladders={
                "trivial": [500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000],
                "availability": [25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000],
                "release_peak": [50, 100, 200, 500, 1000, 2000, 3000, 4000, 6000, 8000, 10000],
                "spread": [10, 25, 50, 100, 150, 200, 300, 400, 500, 750, 1000],
            },
        )


@dataclass
class Step:
    """One open-loop run and what it says."""

    scenario: str
    rate: float
    result: RunResult
    sustainable: bool
    cpu_cores: dict[str, float]
    quiet_wait: dict[str, float] = field(default_factory=dict)
    db_connections_peak: dict[str, int] = field(default_factory=dict)
    presold: dict[str, int] = field(default_factory=dict)
    server_log: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def p99(self) -> float:
        return self.result.percentile(99)

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "sustainable": self.sustainable,
            **self.result.summary(),
            "cpu_cores": self.cpu_cores,
            "before_run_other_load": self.quiet_wait,
            "db_connections_peak": self.db_connections_peak,
            "sold_out_before_run": self.presold,
            "server_log": self.server_log,
            "verification": self.verification,
            "notes": self.notes,
        }

    def line(self) -> str:
        r = self.result
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(r.codes.items()))
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items()))
        return (
            f"  {self.scenario:<13} offered {self.rate:>7.0f}/s  achieved {r.achieved_rate:>7.1f}/s"
            f"  ok {r.success_rate:>7.1f}/s  p50 {r.percentile(50):>7.1f} ms"
            f"  p99 {self.p99:>8.1f} ms  max {r.percentile(100):>8.1f} ms"
            f"  [{'good' if self.sustainable else 'NOT sustainable'}]"
            f"  statuses {{{statuses}}}"
            + (f" codes {{{codes}}}" if codes else "")
            + (f"  queued {r.queued} late {r.late_sends} unsent {r.unsent}" if r.queued else "")
            + (f"  timeouts {r.timeouts}" if r.timeouts else "")
            + (f"  transport errors {r.transport_errors}" if r.transport_errors else "")
            + "  cpu cores: "
            + " ".join(f"{k} {v:.2f}" for k, v in self.cpu_cores.items() if k != "machine")
            + (
                "  pg connections (peak): "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.db_connections_peak.items()))
                if self.db_connections_peak
                else ""
            )
        )


@dataclass
class Search:
    scenario: str
    steps: list[Step] = field(default_factory=list)
    discarded: list[Step] = field(default_factory=list)

    @property
    def best(self) -> Step | None:
        good = [s for s in self.steps if s.sustainable]
        return max(good, key=lambda s: s.rate) if good else None

    @property
    def best_success(self) -> Step | None:
        good = [s for s in self.steps if s.sustainable]
        return max(good, key=lambda s: s.result.success_rate) if good else None

    @property
    def ceiling_not_found(self) -> bool:
        """Every rate tried was sustainable: the capacity is at least the best one."""
        return bool(self.steps) and all(s.sustainable for s in self.steps)

    def summary(self) -> dict[str, Any]:
        best = self.best
        return {
            "max_sustainable_offered": best.rate if best else None,
            "ceiling_not_found": self.ceiling_not_found,
            "max_sustainable_achieved": round(best.result.achieved_rate, 1) if best else None,
            "steps": [s.summary() for s in self.steps],
            "discarded_noisy_runs": [s.summary() for s in self.discarded],
        }


@dataclass
class Fixture:
    key: str
    today: date
    patients: list[str]
    departments: list[str]
    all_sessions: list[str]
    hot_sessions: list[dict[str, Any]]
    spread_sessions: list[dict[str, Any]]
    setup: dict[str, Any]


# --- the run for one database ---------------------------------------------------------


class Bench:
    def __init__(self, config: Config, backend: Backend, workdir: Path) -> None:
        self.config = config
        self.backend = backend
        self.workdir = workdir
        self.env = {
            **os.environ,
            "YUYUE_DATABASE_URL": backend.url,
            "YUYUE_SECRET_KEY": generate_master_secret(),
            "YUYUE_WORKER_IN_PROCESS": "false",
        }
        for name in ("YUYUE_REDIS_URL", "YUYUE_SERVING_PROCESSES"):
            self.env.pop(name, None)
        self.server = Server(self.env, workdir, workdir / f"server-{backend.name}.log")
        self.report: dict[str, Any] = {
            "database": backend.name,
            "database_url": backend.url,
            "workdir": str(workdir),
            "config": {
                "quick": config.quick,
                "duration_s": config.duration_s,
                "warmup_s": config.warmup_s,
                "patients": config.patients,
                "max_connections": config.max_connections,
                "wait_for_other_load_below_cores": config.quiet_limit_cores,
                "wait_for_other_load_up_to_s": config.quiet_timeout_s,
                "sustainable_if": {
                    "achieved_at_least_offered_x": config.min_achieved,
                    "p99_ms_at_most": config.max_p99_ms,
                    "failed_fraction_below": config.max_failed,
                },
            },
            "scenarios": {},
            "server_problems": [],
        }
        self.baseline_active = 0
        self.source = source_fingerprint()
        self.report["source_fingerprint"] = self.source

    async def start_server(self) -> list[str]:
        """Starts the server; notes when the yuyue sources differ from the setup's."""
        await self.server.start()
        now = source_fingerprint()
        if now == self.source:
            return []
        note = f"yuyue sources changed since setup ({self.source} -> {now})"
        self.log(f"note: {note}")
        self.report.setdefault("source_changes", []).append(now)
        self.source = now
        return [note]

    def log(self, message: str) -> None:
        print(f"[{self.backend.name}] {message}", file=sys.stderr, flush=True)

    # --- setup ---------------------------------------------------------------------------

    async def prepare(self) -> Fixture:
        started = time.monotonic()
        await self.backend.prepare()
        self.log("seeding the demo hospital")
        seed_output = await asyncio.to_thread(run_cli, ["seed-demo"], self.env, self.workdir)
        key = await asyncio.to_thread(
            run_cli, ["api-key", "create", "--channel", "app"], self.env, self.workdir
        )
        key = key.strip().splitlines()[-1].strip()
        await self.server.start()
        try:
            self.log(f"registering {self.config.patients} patients")
            t = time.monotonic()
            patients, failures = await create_patients(
                self.server.base_url, key, self.config.patients
            )
            patients_s = time.monotonic() - t
            fixture = await self._catalogue(key, patients)
        finally:
            await self.server.stop()
            self._collect_log("setup")
        fixture.setup.update(
            {
                "seed_output": seed_output.strip()[:300],
                "patients": len(patients),
                "patient_registration_s": round(patients_s, 1),
                "patient_registration_failures": failures,
            }
        )
        await self.backend.snapshot()
        verification = await self.backend.verify()
        if not verification.ok:
            raise OverbookingError(f"the seeded database is inconsistent: {verification.summary()}")
        self.baseline_active = verification.active_appointments
        fixture.setup["baseline"] = verification.summary()
        fixture.setup["setup_s"] = round(time.monotonic() - started, 1)
        self.report["setup"] = fixture.setup
        self.log(
            f"ready in {fixture.setup['setup_s']}s: {len(patients)} patients, "
            f"{len(fixture.departments)} departments, {len(fixture.spread_sessions)} open free "
            f"sessions with {fixture.setup['spread_places']} places, hot sessions "
            f"{[s['remaining'] for s in fixture.hot_sessions]} places"
        )
        return fixture

    async def _catalogue(self, key: str, patients: list[str]) -> Fixture:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            base_url=self.server.base_url, headers=headers, timeout=60
        ) as client:
            departments = (await client.get("/api/v1/departments")).raise_for_status().json()
            now = datetime.now(UTC)
            today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
            sessions = (
                (
                    await client.get(
                        "/api/v1/sessions",
                        params={"date_from": str(today), "date_to": str(today + timedelta(7))},
                    )
                )
                .raise_for_status()
                .json()
            )
        # Adults born 1960–2000 may book any department without an age or sex rule that
        # could refuse them.
        open_to_all = {
            d["id"]
            for d in departments
            if d["sex_restriction"] is None
            and (d["min_age_years"] or 0) <= 20
            and (d["max_age_years"] is None or d["max_age_years"] >= 70)
        }
        # Bookable now and for the rest of the benchmark, free (booked at once, no hold).
        margin = now + timedelta(hours=1)
        bookable = [
            s
            for s in sessions
            if s["status"] == "open"
            and s["remaining"] > 0
            and s["fee"] == 0
            and s["department"]["id"] in open_to_all
            and datetime.fromisoformat(s["booking_opens_at"]) <= now
            and datetime.fromisoformat(s["booking_closes_at"]) > margin
        ]
        if len(bookable) < 3:
            raise SetupError(f"only {len(bookable)} open free sessions to book")
        with_doctor = [s for s in bookable if s["doctor"] is not None]
        # The hot sessions: the newest released day's doctor sessions, as at a real release.
        pool = with_doctor if len(with_doctor) >= 3 else bookable
        latest = max(s["date"] for s in pool)
        hot = sorted(pool, key=lambda s: (s["date"] != latest, -s["remaining"]))[:3]
        return Fixture(
            key=key,
            today=today,
            patients=patients,
            departments=[d["id"] for d in departments],
            all_sessions=[s["id"] for s in sessions],
            hot_sessions=hot,
            spread_sessions=bookable,
            setup={
                "today": str(today),
                "departments": len(departments),
                "sessions_in_range": len(sessions),
                "spread_sessions": len(bookable),
                "spread_places": sum(s["remaining"] for s in bookable),
                "hot_sessions": [
                    {
                        k: s[k] if k != "doctor" else (s["doctor"] or {}).get("name")
                        for k in ("id", "date", "period", "doctor", "remaining", "capacity")
                    }
                    for s in hot
                ],
            },
        )

    # --- request factories ------------------------------------------------------------

    @staticmethod
    def _get(path: str, key: str | None = None) -> bytes:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return build_request("GET", path, host=HOST, headers=headers)

    def trivial_requests(self) -> RequestFactory:
        payload = self._get("/healthz")
        return lambda _i: payload

    def availability_requests(self, fixture: Fixture) -> RequestFactory:
        rng = random.Random(1)
        window = f"date_from={fixture.today}&date_to={fixture.today + timedelta(7)}"
        lists = [
            self._get(f"/api/v1/sessions?department_id={d}&{window}", fixture.key)
            for d in fixture.departments
        ]
        slots = [
            self._get(f"/api/v1/sessions/{s}/slots", fixture.key) for s in fixture.all_sessions
        ]
        return lambda i: rng.choice(lists if i % 2 == 0 else slots)

    def booking_requests(self, fixture: Fixture, sessions: list[dict[str, Any]]) -> RequestFactory:
        rng = random.Random(2)
        patients = fixture.patients
        session_ids = [s["id"] for s in sessions]
        auth = f"Bearer {fixture.key}"

        def build(_i: int) -> bytes:
            body = json.dumps(
                {"patient_id": rng.choice(patients), "session_id": rng.choice(session_ids)}
            ).encode()
            headers = {
                "Authorization": auth,
                "Idempotency-Key": str(uuid.uuid4()),
                "Content-Type": "application/json",
            }
            return build_request(
                "POST", "/api/v1/appointments", host=HOST, headers=headers, body=body
            )

        return build

    # --- runs ---------------------------------------------------------------------------

    def _sustainable(self, result: RunResult) -> bool:
        c = self.config
        return (
            result.achieved_rate >= c.min_achieved * result.offered_rate
            and result.percentile(99) <= c.max_p99_ms
            and result.failures < c.max_failed * max(result.scheduled, 1)
        )

    async def _open_loop(
        self,
        scenario: str,
        rate: float,
        factory: RequestFactory,
        warmup_factory: RequestFactory | None = None,
    ) -> Step:
        quiet: dict[str, float] = {}
        if self.config.quiet_timeout_s > 0:
            waited, load = await wait_for_quiet(
                self.config.quiet_limit_cores,
                self.config.quiet_timeout_s,
                ignore=(self.server.pid,) if self.server.pid else (),
            )
            quiet = {"waited_s": round(waited, 1), "other_cores": round(load, 2)}
            if waited >= 2:
                self.log(f"waited {waited:.0f}s for other load to settle (now {load:.2f} cores)")
        client = OpenLoopClient(HOST, self.server.port, max_connections=self.config.max_connections)
        connections: dict[str, int] = {}
        watcher = asyncio.create_task(self.backend.watch_connections(connections))
        before = CpuSnapshot.take()
        try:
            result = await client.run(
                factory,
                rate=rate,
                duration_s=self.config.duration_s,
                warmup_s=self.config.warmup_s,
                warmup_factory=warmup_factory,
            )
        finally:
            client.close_all()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        return Step(
            scenario=scenario,
            rate=rate,
            result=result,
            sustainable=self._sustainable(result),
            cpu_cores=usage(before, CpuSnapshot.take(), server_pid=self.server.pid),
            quiet_wait=quiet,
            db_connections_peak=connections,
        )

    async def _ensure_server(self) -> None:
        if self.server.running:
            return
        if self.server.process is not None:
            code = await self.server.stop()
            self._problem(f"the server had exited (code {code}); restarted")
        await self.start_server()

    async def read_step(self, scenario: str, rate: float, factory: RequestFactory) -> Step:
        await self._ensure_server()
        waited = await self.server.wait_idle()
        step = await self._open_loop(scenario, rate, factory)
        if waited > 1:
            step.notes.append(f"waited {waited:.1f}s for the previous backlog to drain")
        step.server_log = self._collect_log(f"{scenario} @ {rate:.0f}/s", keep_open=True)
        self.log(step.line())
        return step

    async def booking_step(
        self,
        scenario: str,
        rate: float,
        fixture: Fixture,
        sessions: list[dict[str, Any]],
        *,
        release_in_window: bool = False,
        sell_out_first: bool = False,
    ) -> Step:
        """A booking run from the snapshot on a fresh server; its warm-up books like the
        window does. With `sell_out_first` the sessions are booked out beforehand and the
        server left to settle, so the run measures the refusals that follow a release.
        With `release_in_window` the warm-up offers GET /healthz instead and the window
        opens on untouched inventory, so it measures the moment of release itself."""
        await self.server.stop()
        await self.backend.restore()
        notes = await self.start_server()
        await self._warm_database(fixture, sessions)
        presold: dict[str, int] = {}
        if sell_out_first:
            presold = await self._sell_out(fixture, sessions)
            await self.server.wait_idle()
        step = await self._open_loop(
            scenario,
            rate,
            self.booking_requests(fixture, sessions),
            warmup_factory=self.trivial_requests() if release_in_window else None,
        )
        step.notes.extend(notes)
        step.presold = presold
        code = await self.server.stop()
        if code not in (0, None):
            step.notes.append(f"the server exited with code {code}")
        step.server_log = self._collect_log(f"{scenario} @ {rate:.0f}/s")
        verification = await self.backend.verify()
        step.verification = verification.summary()
        self._check_bookings(step, verification)
        self.log(step.line())
        return step

    async def _warm_database(self, fixture: Fixture, sessions: list[dict[str, Any]]) -> None:
        """Reads that open the server's database connections before a booking run."""
        headers = {"Authorization": f"Bearer {fixture.key}"}
        async with httpx.AsyncClient(
            base_url=self.server.base_url, headers=headers, timeout=30
        ) as client:
            for _ in range(5):
                await asyncio.gather(
                    *(client.get(f"/api/v1/sessions/{s['id']}/slots") for s in sessions[:40])
                )

    async def _sell_out(self, fixture: Fixture, sessions: list[dict[str, Any]]) -> dict[str, int]:
        """Books the sessions until each has answered `sold_out` (16 clients in a closed
        loop); returns the answers by status and code."""
        rng = random.Random(3)
        headers = {"Authorization": f"Bearer {fixture.key}"}
        answers: dict[str, int] = {}
        pending = {s["id"] for s in sessions}
        attempts = 0

        async def client_loop(client: httpx.AsyncClient) -> None:
            nonlocal attempts
            while pending and attempts < 20 * sum(s["remaining"] for s in sessions) + 1000:
                attempts += 1
                session_id = rng.choice(sorted(pending))
                response = await client.post(
                    "/api/v1/appointments",
                    json={"patient_id": rng.choice(fixture.patients), "session_id": session_id},
                    headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                )
                code = "" if response.is_success else f" {response.json().get('code', '-')}"
                label = f"{response.status_code}{code}"
                answers[label] = answers.get(label, 0) + 1
                if label == "409 sold_out":
                    pending.discard(session_id)

        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=60) as client:
            await asyncio.gather(*(client_loop(client) for _ in range(16)))
        if pending:
            self._problem(f"could not sell out {len(pending)} hot sessions: {answers}")
        return answers

    def _check_bookings(self, step: Step, verification: Verification) -> None:
        if not verification.ok:
            self._problem(f"OVERBOOKING after {step.scenario} @ {step.rate:.0f}/s")
            raise OverbookingError(
                f"{step.scenario} @ {step.rate:.0f}/s: {json.dumps(verification.summary())}"
            )
        created = verification.active_appointments - self.baseline_active
        result = step.result
        acknowledged = (
            result.statuses.get("201", 0)
            + result.warmup_statuses.get("201", 0)
            + step.presold.get("201", 0)
        )
        step.verification = {
            **(step.verification or {}),
            "new_active": created,
            "acknowledged_201": acknowledged,
        }
        if created < acknowledged:
            self._problem(
                f"{step.scenario} @ {step.rate:.0f}/s: {acknowledged} bookings answered 201 "
                f"but only {created} active appointments were added"
            )
            raise OverbookingError("acknowledged bookings are missing from the database")
        if created > acknowledged:
            unanswered = result.timeouts + result.transport_errors + result.warmup_unanswered
            note = (
                f"{created - acknowledged} appointments were created without a 201 reaching "
                f"the client ({unanswered} sent requests timed out or lost their connection)"
            )
            step.notes.append(note)
            if unanswered == 0:
                self._problem(f"{step.scenario} @ {step.rate:.0f}/s: {note}")

    def _collect_log(self, label: str, *, keep_open: bool = False) -> dict[str, Any]:
        found = scan_log(self.server.new_log())
        if keep_open:
            # The server keeps running: later scans start after what was read here.
            self.server.mark_log()
        if found["error_lines"] or found["tracebacks"]:
            self._problem(
                f"{label}: server logged {found['error_lines']} error lines, "
                f"{found['tracebacks']} tracebacks",
                excerpts=found["excerpts"],
            )
        return found

    def _problem(self, message: str, *, excerpts: list[str] | None = None) -> None:
        self.log(f"PROBLEM: {message}")
        for excerpt in excerpts or []:
            self.log("    " + excerpt.replace("\n", "\n    "))
        self.report["server_problems"].append({"what": message, "excerpts": excerpts or []})

    # --- searches -----------------------------------------------------------------------

    async def measure(
        self, run: Callable[[float], Awaitable[Step]], rate: float, *, discarded: list[Step]
    ) -> Step:
        """One run at `rate`; a failed run during which other processes took a noticeable
        share of the CPU is set aside and run once more after the machine has settled."""
        step = await run(rate)
        other = step.cpu_cores.get("other", 0.0)
        if step.sustainable or other <= self.config.noisy_cores or self.config.quiet_timeout_s <= 0:
            return step
        self.log(f"  re-running: other processes used {other:.2f} cores during that run")
        step.notes.append(f"set aside: other processes used {other:.2f} cores")
        discarded.append(step)
        await wait_for_quiet(
            self.config.quiet_limit_cores,
            4 * self.config.quiet_timeout_s,
            ignore=(self.server.pid,) if self.server.pid else (),
        )
        return await run(rate)

    async def search(
        self,
        scenario: str,
        run: Callable[[float], Awaitable[Step]],
        *,
        known: list[Step] | None = None,
    ) -> Search:
        """Climbs the scenario's ladder to the first unsustainable rate, then bisects."""
        found = Search(scenario, list(known or []))
        done = {s.rate: s for s in found.steps}

        async def at(rate: float) -> Step:
            if rate not in done:
                done[rate] = await self.measure(run, rate, discarded=found.discarded)
                found.steps.append(done[rate])
            return done[rate]

        ladder = self.config.ladders[scenario]
        good: float | None = None
        bad: float | None = None
        for rate in ladder:
            if (await at(rate)).sustainable:
                good = rate
            else:
                bad = rate
                break
        if good is None:
            rate = ladder[0]
            for _ in range(self.config.max_down_steps):
                rate = float(round(rate / 2, 1))
                if (await at(rate)).sustainable:
                    good = rate
                    break
                bad = rate
        for _ in range(self.config.refine):
            if good is None or bad is None or (bad - good) / good <= 0.1:
                break
            middle = float(round((good + bad) / 2, -1 if good >= 100 else 0))
            if (await at(middle)).sustainable:
                good = middle
            else:
                bad = middle
        found.steps.sort(key=lambda s: s.rate)
        self.report["scenarios"][scenario] = found.summary()
        return found

    async def run(self) -> dict[str, Any]:
        fixture = await self.prepare()
        searches: dict[str, Search] = {}
        try:
            await self.start_server()
            trivial = self.trivial_requests()
            searches["trivial"] = await self.search(
                "trivial", lambda r: self.read_step("trivial", r, trivial)
            )
            availability = self.availability_requests(fixture)
            searches["availability"] = await self.search(
                "availability", lambda r: self.read_step("availability", r, availability)
            )
            await self.server.stop()
            hot, spread = fixture.hot_sessions, fixture.spread_sessions
            set_aside: list[Step] = []
            peak = await self.measure(
                lambda r: self.booking_step("release_peak", r, fixture, hot, sell_out_first=True),
                PEAK_RATE,
                discarded=set_aside,
            )
            self.report["release_peak_at_1000"] = {
                **peak.summary(),
                "set_aside_noisy_runs": [s.summary() for s in set_aside],
            }
            moment = await self.measure(
                lambda r: self.booking_step(
                    "release_moment", r, fixture, hot, release_in_window=True
                ),
                PEAK_RATE,
                discarded=set_aside,
            )
            self.report["release_moment_at_1000"] = moment.summary()
            searches["release_peak"] = await self.search(
                "release_peak",
                lambda r: self.booking_step("release_peak", r, fixture, hot, sell_out_first=True),
                known=[peak],
            )
            searches["spread"] = await self.search(
                "spread", lambda r: self.booking_step("spread", r, fixture, spread)
            )
            self.report["summary"] = summarise(searches, peak, moment)
        finally:
            await self.server.stop()
            self._collect_log("shutdown")
            await self.backend.cleanup()
        return self.report


# --- reporting --------------------------------------------------------------------------


def summarise(searches: dict[str, Search], peak: Step, moment: Step) -> dict[str, Any]:
    trivial = searches["trivial"].best
    capacity = trivial.result.achieved_rate if trivial else float("nan")

    def row(
        label: str, step: Step | None, *, basis_of: str = "answers/s", at_least: bool = False
    ) -> dict[str, Any]:
        if step is None:
            return {"scenario": label, "sustainable": False}
        if at_least:
            label += " (highest rate tried; the limit is higher)"
        r = step.result
        basis = {
            "answers/s": r.achieved_rate,
            "successful bookings/s": r.success_rate,
            "refusals/s": r.achieved_rate - r.success_rate,
        }[basis_of]
        return {
            "scenario": label,
            "offered": step.rate,
            "achieved": round(r.achieved_rate, 1),
            "success": round(r.success_rate, 1),
            "p50_ms": round(r.percentile(50), 2),
            "p99_ms": round(r.percentile(99), 2),
            "ratio": round(basis / capacity, 3),
            "ratio_of": basis_of,
            "sustainable": step.sustainable,
            "codes": dict(r.codes),
        }

    release = searches["release_peak"].best
    spread = searches["spread"].best_success
    rows = [
        row("trivial (max sustainable)", trivial, at_least=searches["trivial"].ceiling_not_found),
        row(
            "availability (max sustainable)",
            searches["availability"].best,
            at_least=searches["availability"].ceiling_not_found,
        ),
        row(f"release_peak @ {PEAK_RATE:.0f}/s", peak, basis_of="refusals/s"),
        row(f"release moment @ {PEAK_RATE:.0f}/s (window opens at release)", moment),
        row(
            "release_peak (max sustainable)",
            release,
            basis_of="refusals/s",
            at_least=searches["release_peak"].ceiling_not_found,
        ),
        row(
            "spread (max sustainable)",
            spread,
            basis_of="successful bookings/s",
            at_least=searches["spread"].ceiling_not_found,
        ),
    ]
    refusal_ratio = (
        (release.result.achieved_rate - release.result.success_rate) / capacity if release else 0.0
    )
    booking_ratio = spread.result.success_rate / capacity if spread else 0.0
    peak_p99 = peak.result.percentile(99)
    moment_p99 = moment.result.percentile(99)
    return {
        "trivial_capacity": round(capacity, 1),
        "rows": rows,
        "goals": [
            {
                "goal": f"sold-out refusals >= {GOAL_REFUSALS}x trivial",
                "measured": round(refusal_ratio, 3),
                "met": refusal_ratio >= GOAL_REFUSALS,
            },
            {
                "goal": f"successful bookings >= {GOAL_BOOKINGS}x trivial",
                "measured": round(booking_ratio, 3),
                "met": booking_ratio >= GOAL_BOOKINGS,
            },
            {
                "goal": f"p99 <= {GOAL_P99_MS:.0f} ms at {PEAK_RATE:.0f} attempts/s",
                "measured": round(peak_p99, 2),
                "met": peak_p99 <= GOAL_P99_MS,
            },
            {
                "goal": f"(stricter reading) p99 <= {GOAL_P99_MS:.0f} ms at {PEAK_RATE:.0f} "
                "attempts/s with the moment of release inside the window",
                "measured": round(moment_p99, 2),
                "met": moment_p99 <= GOAL_P99_MS,
            },
        ],
    }


def markdown(report: dict[str, Any]) -> str:
    summary = report.get("summary")
    if not summary:
        return f"### {report['database']}\n\n(no summary: the run did not finish)\n"
    lines = [
        f"### {report['database']} (trivial capacity C = {summary['trivial_capacity']:.0f}/s)",
        "",
        "| scenario | offered/s | achieved/s | success/s | p50 ms | p99 ms | ratio to C |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["rows"]:
        if "offered" not in row:
            lines.append(f"| {row['scenario']} | no sustainable rate found | | | | | |")
            continue
        flag = "" if row["sustainable"] else " (not sustainable)"
        lines.append(
            f"| {row['scenario']}{flag} | {row['offered']:.0f} | {row['achieved']:.0f} | "
            f"{row['success']:.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
            f"{row['ratio']:.2f} ({row['ratio_of']}) |"
        )
    lines.append("")
    for goal in summary["goals"]:
        lines.append(
            f"- {goal['goal']}: measured {goal['measured']} — {'MET' if goal['met'] else 'NOT MET'}"
        )
    problems = report.get("server_problems") or []
    if problems:
        lines.append(f"- server problems seen: {len(problems)} (see JSON `server_problems`)")
    return "\n".join(lines) + "\n"


def machine() -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": int(nproc) if nproc.isdigit() else os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "harness_nice": os.getpriority(os.PRIO_PROCESS, 0),
    }


async def bench_one(db: str, config: Config, stamp: str) -> dict[str, Any]:
    workdir = make_workdir()
    backend: Backend = SqliteBackend(workdir) if db == "sqlite" else PostgresBackend()
    bench = Bench(config, backend, workdir)
    bench.report.update({"started_at": stamp, "machine": machine()})
    error: BaseException | None = None
    # Ctrl-C or SIGTERM cancels the run, so the server is stopped and the results written.
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None

    def stop(signum: signal.Signals) -> None:
        bench.log(f"received {signum.name}: stopping")
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        await bench.run()
    except BaseException as failure:
        error = failure
        bench.report["error"] = f"{type(failure).__name__}: {failure}"
        raise
    finally:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{stamp}-{db}{'-quick' if config.quick else ''}.json"
        path.write_text(json.dumps(bench.report, indent=2, ensure_ascii=False, default=str))
        bench.log(f"results written to {path}" + (" (incomplete)" if error else ""))
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return bench.report


def exclusive_run() -> IO[str]:
    """Holds a lock for the life of this process, so two benchmark runs never share the
    machine or the `yuyue_bench` database; a second run waits for the first."""
    handle = LOCK_PATH.open("a+", encoding="ascii")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        print(f"waiting for another benchmark run (pid {holder}) to finish…", file=sys.stderr)
        fcntl.flock(handle, fcntl.LOCK_EX)
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="short runs for a smoke check")
    parser.add_argument("--duration", type=float, help="measured seconds per run")
    parser.add_argument("--patients", type=int, help="patients to register")
    parser.add_argument("--connections", type=int, default=256, help="client connection limit")
    parser.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="scheduling priority for this process and the server it starts (default -10, "
        "so test suites running beside the benchmark disturb it less; needs privileges)",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="do not wait before each run for other processes' CPU load to settle",
    )
    args = parser.parse_args()
    config = Config.build(args)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    except OSError as error:
        print(f"note: could not set priority {args.nice}: {error}", file=sys.stderr)
    with exclusive_run():
        return run_all(args, config)


def run_all(args: argparse.Namespace, config: Config) -> int:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    databases = ["postgresql", "sqlite"] if args.db == "both" else [args.db]
    try:
        import uvloop
    except ImportError:
        runner: Callable[..., Any] = asyncio.run
    else:
        runner = uvloop.run
    reports: list[dict[str, Any]] = []
    failed = False
    for db in databases:
        try:
            reports.append(runner(bench_one(db, config, stamp)))
        except (OverbookingError, SetupError) as error:
            print(f"\n[{db}] FAILED: {type(error).__name__}: {error}", file=sys.stderr)
            failed = True
        except (asyncio.CancelledError, KeyboardInterrupt):
            print(f"\n[{db}] interrupted", file=sys.stderr)
            return 130
    print()
    for report in reports:
        print(markdown(report))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
