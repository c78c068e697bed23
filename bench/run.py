"""Throughput and latency benchmark of yuyue's booking hot path, on PostgreSQL and SQLite.

Usage::

    python bench/run.py [--db sqlite|postgresql|both] [--scenarios a,b,...] [--workers N]
                        [--redis] [--clients 32] [--duration S] [--quick]

Method
------
For each database the harness prepares a fresh database, loads the demo hospital
(``yuyue seed-demo``) with its department clinics enlarged (``--capacity-factor``), creates
an ``app`` channel API key and registers thousands of patients in bulk with the server's
own identity rules and cipher. It snapshots that state, then starts ``yuyue serve`` (one
process, or ``--workers N``) and drives it from this process.

The sitting (the figures compared with other systems; one server configuration, one run):

* ``trivial``, ``reads``, ``bookings`` -- closed loop: ``--clients`` keep-alive clients, each
  sending its next request as soon as the previous answer arrives, for a warm-up and then
  the measured window. ``trivial`` is ``GET /healthz``; ``reads`` half session lists of a
  department for the next days, half slot lists; ``bookings`` ``POST /api/v1/appointments``
  spread over every open free session of the hospital (weighted by free places; patients
  in round-robin, admitted by each department's rules), so most succeed. Each reports
  answers/s, successes/s, latency, statuses and CPU per request of the server processes,
  PostgreSQL and this load generator, and its rate as a ratio of ``trivial``'s.
* ``mixed`` -- open loop at 1,000 requests/s offered: 85 % reads, 13 % booking attempts
  (in the window half of them for three hot sessions that sell out in it), 2 %
  cancellations of bookings made earlier in the run; latency per kind of request.
* ``release_moment`` -- open loop at 1,000 booking attempts/s on the three hot sessions,
  the window opening on untouched inventory, so it contains the sell-out; p99 and the
  number of winners against the places.

The open-loop searches (``open_trivial``, ``availability``, ``release_peak``, ``spread``)
find the highest *sustainable* rate of each scenario: request ``i`` at rate ``R`` is due
at ``t0 + i / R`` whatever happened before and its latency counts from then, so queueing
is never hidden (no coordinated omission). A run is sustainable when the answers reach 95 %
of the offered rate, p99 <= 100 ms and under 1 % failed; the rate climbs a ladder and then
bisects. ``release_peak`` is the refusals that follow a sell-out (once at 1,000 attempts/s
and then searched), ``spread`` bookings over the open free sessions of unrestricted
departments; ratios are to ``open_trivial``'s capacity.

Every booking run starts from the snapshot (and an empty Redis database with ``--redis``)
on a freshly started server, and is followed by the zero-overbooking checks in the
database (:data:`fixtures.CHECKS`) and a check that every acknowledged booking is there; a
violation fails the benchmark.

Results go to ``bench/results/<timestamp>-<db>[-wN][-redis][-quick].json`` and Markdown
tables are printed at the end.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx
from cpu import CpuSnapshot, usage, wait_for_quiet
from fixtures import (
    Backend,
    BenchPatient,
    OverbookingError,
    PostgresBackend,
    Server,
    SetupError,
    SqliteBackend,
    Verification,
    check_bulk_patients,
    count_active,
    enlarge_inventory,
    flush_redis,
    make_workdir,
    register_patients_in_bulk,
    run_cli,
    scan_log,
    source_fingerprint,
)
from loadgen import (
    AnswerHook,
    ClosedLoopClient,
    OpenLoopClient,
    RequestFactory,
    RunResult,
)
from report import markdown, markdown_comparison, summarise_searches, table_rows
from workload import Bookings, Mix, MixedPeak, PatientPicker, Reads, get

from yuyue.kit.crypto import generate_master_secret

RESULTS = Path(__file__).resolve().parent / "results"
LOCK_PATH = Path(tempfile.gettempdir()) / "yuyue-bench.lock"
HOST = "127.0.0.1"
PEAK_RATE = 1000.0
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"

SITTING = ("trivial", "reads", "bookings", "mixed", "release_moment")
SEARCHES = ("open_trivial", "availability", "release_peak", "spread")
SCENARIOS = SITTING + SEARCHES
MIX = Mix()  # 85 % reads, 13 % booking attempts, 2 % cancellations


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
    scenarios: tuple[str, ...] = SCENARIOS
    clients: int = 32
    # The server configurations measured one after the other on the same fixture.
    workers_list: tuple[int, ...] = (1,)
    workers: int = 1
    redis_url: str | None = None
    capacity_factor: int = 10
    release_days: int = 13
    db_pool_size: int | None = None
    db_pool_size_given: int | None = None
    children: float = 0.1
    mixed_rate: float = PEAK_RATE
    max_p99_ms: float = 100.0
    min_achieved: float = 0.95
    max_failed: float = 0.01
    quiet_limit_cores: float = 0.25
    noisy_cores: float = 0.4

    @classmethod
    def build(cls, args: argparse.Namespace) -> Config:
        chosen = parse_scenarios(args.scenarios)
        common: dict[str, Any] = {
            "scenarios": chosen,
            "clients": args.clients,
            "workers_list": parse_workers(args.workers),
            "redis_url": (args.redis_url or DEFAULT_REDIS_URL) if args.redis else None,
            "capacity_factor": args.capacity_factor,
            "release_days": args.release_days,
            "db_pool_size_given": args.db_pool_size,
            "max_connections": args.connections,
            "mixed_rate": args.mixed_rate,
        }
        if args.quick:
            return cls(
                quick=True,
                duration_s=args.duration or 2.0,
                warmup_s=args.warmup if args.warmup is not None else 0.5,
                patients=args.patients or 1000,
                refine=0,
                max_down_steps=1,
                quiet_timeout_s=0.0 if args.no_wait else 10.0,
                ladders={
                    "open_trivial": [500, 1000],
                    "availability": [25, 50],
                    "release_peak": [100, 1000],
                    "spread": [10, 25],
                },
                **common,
            )
        return cls(
            quick=False,
            duration_s=args.duration or 10.0,
            warmup_s=args.warmup if args.warmup is not None else 2.0,
            patients=args.patients or 10000,
            refine=2,
            max_down_steps=4,
            quiet_timeout_s=0.0 if args.no_wait else 30.0,
            ladders={
                "open_trivial": [500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000],
                "availability": [25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000],
                "release_peak": [50, 100, 200, 500, 1000, 2000, 3000, 4000, 6000, 8000, 10000],
                "spread": [10, 25, 50, 100, 150, 200, 300, 400, 500, 750, 1000],
            },
            **common,
        )

    def for_workers(self, workers: int) -> Config:
        """This configuration for one server configuration of `workers_list`."""
        # Several processes with the server's default pool (40 each) would together
        # exhaust PostgreSQL's usual max_connections of 100.
        pool = self.db_pool_size_given or (64 // workers if workers > 1 else None)
        return replace(self, workers=workers, db_pool_size=pool)


def parse_workers(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--workers takes numbers >= 1, e.g. 1,2: {text!r}")
    return values


def parse_scenarios(text: str) -> tuple[str, ...]:
    """`all`, `sitting`, `searches` or a comma-separated list, in the harness's order."""
    names: set[str] = set()
    for part in (p.strip() for p in text.split(",")):
        if part == "all":
            names.update(SCENARIOS)
        elif part == "sitting":
            names.update(SITTING)
        elif part == "searches":
            names.update(SEARCHES)
        elif part in SCENARIOS:
            names.add(part)
        elif part:
            raise argparse.ArgumentTypeError(
                f"unknown scenario {part!r}; choose from {', '.join(SCENARIOS)}, "
                "or all, sitting, searches"
            )
    if names & {"availability", "release_peak", "spread"}:
        names.add("open_trivial")  # their ratios are to its capacity
    return tuple(s for s in SCENARIOS if s in names)


@dataclass
class Step:
    """One run (open loop at `rate`, or closed loop with `result.clients`) and what it says."""

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
    cancelled: int = 0
    hot: dict[str, Any] | None = None
    places: dict[str, Any] | None = None

    @property
    def p99(self) -> float:
        return self.result.percentile(99)

    @property
    def cpu_ms_per_request(self) -> dict[str, float]:
        """CPU milliseconds per answer in the window, by process category."""
        rate = self.result.achieved_rate
        if rate <= 0:
            return {}
        return {
            k: round(1000 * v / rate, 3)
            for k, v in self.cpu_cores.items()
            if k in ("server", "postgres", "load_generator", "other")
        }

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "sustainable": self.sustainable,
            **self.result.summary(),
            "cpu_cores": self.cpu_cores,
            "cpu_ms_per_request": self.cpu_ms_per_request,
            "before_run_other_load": self.quiet_wait,
            "db_connections_peak": self.db_connections_peak,
            "sold_out_before_run": self.presold,
            "cancelled": self.cancelled,
            "hot": self.hot,
            "places": self.places,
            "server_log": self.server_log,
            "verification": self.verification,
            "notes": self.notes,
        }

    def line(self) -> str:
        r = self.result
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(r.codes.items()))
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items()))
        load = f"clients {r.clients:>4}" if r.clients else f"offered {self.rate:>7.0f}/s"
        verdict = (
            ("ok" if self.sustainable else "FAILURES")
            if r.clients
            else ("good" if self.sustainable else "NOT sustainable")
        )
        return (
            f"  {self.scenario:<14} {load}  achieved {r.achieved_rate:>7.1f}/s"
            f"  ok {r.success_rate:>7.1f}/s  p50 {r.percentile(50):>7.1f} ms"
            f"  p99 {self.p99:>8.1f} ms  max {r.percentile(100):>8.1f} ms"
            f"  [{verdict}]"
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
    patients: list[BenchPatient]
    departments: list[dict[str, Any]]
    all_sessions: list[str]
    hot_sessions: list[dict[str, Any]]
    # every open free session of the hospital some patient may book (the sitting)
    bookable_sessions: list[dict[str, Any]]
    # those of departments without age or sex rules (the open-loop `spread` search)
    spread_sessions: list[dict[str, Any]]
    setup: dict[str, Any]

    def picker(self, seed: int) -> PatientPicker:
        return PatientPicker(self.patients, self.departments, self.today, seed)


def _bookable(session: dict[str, Any], now: datetime, margin: datetime, today: date) -> bool:
    """Bookable by the app channel now and for the rest of the benchmark; reads the
    listing's `bookable_now` when it has one, else its booking window."""
    if session.get("bookable_now") is False:
        return False
    opens, closes = session.get("booking_opens_at"), session.get("booking_closes_at")
    if opens is not None and datetime.fromisoformat(opens) > now:
        return False
    if closes is not None:
        return datetime.fromisoformat(closes) > margin
    # No closing time shown: today's sessions may close during the run.
    return session["date"] != str(today) and ("bookable_now" in session or opens is not None)


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
        for name in ("YUYUE_REDIS_URL", "YUYUE_SERVING_PROCESSES", "YUYUE_DB_POOL_SIZE"):
            self.env.pop(name, None)
        if config.redis_url:
            self.env["YUYUE_REDIS_URL"] = config.redis_url
        if config.db_pool_size:
            self.env["YUYUE_DB_POOL_SIZE"] = str(config.db_pool_size)
        self.server = Server(
            self.env, workdir, workdir / f"server-{backend.name}.log", workers=config.workers
        )
        self.report: dict[str, Any] = {
            "database": backend.name,
            "database_url": backend.url,
            "workdir": str(workdir),
            "config": {
                "quick": config.quick,
                "scenarios": list(config.scenarios),
                "workers": config.workers,
                "redis_url": config.redis_url,
                "clients": config.clients,
                "duration_s": config.duration_s,
                "warmup_s": config.warmup_s,
                "patients": config.patients,
                "children_share": config.children,
                "capacity_factor": config.capacity_factor,
                "release_days_ahead": config.release_days,
                "db_pool_size_per_process": config.db_pool_size or "server default",
                "mixed_rate": config.mixed_rate,
                "max_connections": config.max_connections,
                "wait_for_other_load_below_cores": config.quiet_limit_cores,
                "wait_for_other_load_up_to_s": config.quiet_timeout_s,
                "sustainable_if": {
                    "achieved_at_least_offered_x": config.min_achieved,
                    "p99_ms_at_most": config.max_p99_ms,
                    "failed_fraction_below": config.max_failed,
                },
            },
            "sitting": {},
            "scenarios": {},
            "server_problems": [],
        }
        self.baseline_active = 0
        self.source = source_fingerprint()
        self.report["source_fingerprint"] = self.source

    async def start_server(self) -> list[str]:
        """Starts the server (on an emptied Redis database, when one is used); notes when
        the yuyue sources differ from the setup's."""
        if self.config.redis_url:
            await flush_redis(self.config.redis_url)
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
        seed_output = await asyncio.to_thread(
            run_cli, ["seed-demo", "--no-history"], self.env, self.workdir
        )
        enlarged = await enlarge_inventory(
            self.backend.url, self.config.capacity_factor, self.config.release_days
        )
        if enlarged["sessions_regenerated"]:
            await asyncio.to_thread(run_cli, ["seed-demo", "--no-history"], self.env, self.workdir)
        key = await asyncio.to_thread(
            run_cli, ["api-key", "create", "--channel", "app"], self.env, self.workdir
        )
        key = key.strip().splitlines()[-1].strip()
        self.log(f"registering {self.config.patients} patients in bulk")
        t = time.monotonic()
        patients = await register_patients_in_bulk(
            self.backend.url,
            self.env["YUYUE_SECRET_KEY"],
            self.config.patients,
            children=self.config.children,
        )
        patients_s = time.monotonic() - t
        await self.start_server()
        try:
            checked = await check_bulk_patients(
                self.server.base_url, key, [patients[0], patients[len(patients) // 2], patients[-1]]
            )
            fixture = await self._catalogue(key, patients)
        finally:
            await self.server.stop()
            self._collect_log("setup")
        fixture.setup.update(
            {
                "seed_output": seed_output.strip()[:300],
                "inventory": {
                    "capacity_factor": self.config.capacity_factor,
                    "release_days_ahead": self.config.release_days,
                    **enlarged,
                },
                "patients": len(patients),
                "children": sum(
                    1 for p in patients if (fixture.today - p.birth_date).days < 18 * 365
                ),
                "patient_registration_s": round(patients_s, 1),
                "patients_checked_through_api": checked,
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
            f"ready in {fixture.setup['setup_s']}s: {len(patients)} patients "
            f"(registered in {patients_s:.1f}s), {len(fixture.departments)} departments, "
            f"{len(fixture.bookable_sessions)} open free sessions with "
            f"{fixture.setup['bookable_places']} places, hot sessions "
            f"{[s['remaining'] for s in fixture.hot_sessions]} places"
        )
        return fixture

    async def _catalogue(self, key: str, patients: list[BenchPatient]) -> Fixture:
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
                        params={
                            "date_from": str(today),
                            "date_to": str(today + timedelta(self.config.release_days + 1)),
                        },
                    )
                )
                .raise_for_status()
                .json()
            )
        picker = PatientPicker(patients, departments, today, 0)
        # Departments without an age or sex rule that could refuse an adult.
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
            and picker.admits_anyone(s["department"]["id"])
            and _bookable(s, now, margin, today)
        ]
        spread = [s for s in bookable if s["department"]["id"] in open_to_all]
        if len(spread) < 3:
            raise SetupError(f"only {len(spread)} open free sessions to book")
        with_doctor = [s for s in spread if s["doctor"] is not None]
        # The hot sessions: the newest released day's doctor sessions, as at a real release.
        pool = with_doctor if len(with_doctor) >= 3 else spread
        latest = max(s["date"] for s in pool)
        hot = sorted(pool, key=lambda s: (s["date"] != latest, -s["remaining"]))[:3]
        return Fixture(
            key=key,
            today=today,
            patients=patients,
            departments=departments,
            all_sessions=[s["id"] for s in sessions],
            hot_sessions=hot,
            bookable_sessions=bookable,
            spread_sessions=spread,
            setup={
                "today": str(today),
                "departments": len(departments),
                "sessions_in_range": len(sessions),
                "bookable_sessions": len(bookable),
                "bookable_places": sum(s["remaining"] for s in bookable),
                "spread_sessions": len(spread),
                "spread_places": sum(s["remaining"] for s in spread),
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

    def trivial_requests(self) -> RequestFactory:
        payload = get("/healthz")
        return lambda _i: payload

    def read_requests(self, fixture: Fixture) -> Reads:
        return Reads(
            fixture.key,
            fixture.today,
            [d["id"] for d in fixture.departments],
            fixture.all_sessions,
            seed=1,
        )

    def booking_requests(
        self,
        fixture: Fixture,
        sessions: list[dict[str, Any]],
        *,
        seed: int = 2,
        kind: str = "booking",
    ) -> Bookings:
        return Bookings(fixture.key, sessions, fixture.picker(seed), seed=seed, kind=kind)

    # --- runs ---------------------------------------------------------------------------

    def _sustainable(self, result: RunResult) -> bool:
        c = self.config
        if result.clients:
            return result.failures < c.max_failed * max(result.scheduled, 1)
        return (
            result.achieved_rate >= c.min_achieved * result.offered_rate
            and result.percentile(99) <= c.max_p99_ms
            and result.failures < c.max_failed * max(result.scheduled, 1)
        )

    async def _load(
        self,
        scenario: str,
        factory: RequestFactory,
        *,
        rate: float | None = None,
        warmup_factory: RequestFactory | None = None,
        on_answer: AnswerHook | None = None,
    ) -> Step:
        """One run: open loop at `rate`, or closed loop with the configured clients when
        no rate is given. CPU is measured over the measured window only."""
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
        snapshots: dict[bool, CpuSnapshot] = {}

        def at_window(opening: bool) -> None:
            snapshots[opening] = CpuSnapshot.take()

        connections: dict[str, int] = {}
        watcher = asyncio.create_task(self.backend.watch_connections(connections))
        try:
            if rate is None:
                closed = ClosedLoopClient(
                    HOST, self.server.port, clients=self.config.clients, on_answer=on_answer
                )
                result = await closed.run(
                    factory,
                    duration_s=self.config.duration_s,
                    warmup_s=self.config.warmup_s,
                    at_window=at_window,
                )
            else:
                client = OpenLoopClient(
                    HOST,
                    self.server.port,
                    max_connections=self.config.max_connections,
                    on_answer=on_answer,
                )
                try:
                    result = await client.run(
                        factory,
                        rate=rate,
                        duration_s=self.config.duration_s,
                        warmup_s=self.config.warmup_s,
                        warmup_factory=warmup_factory,
                        at_window=at_window,
                    )
                finally:
                    client.close_all()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        end = snapshots.get(False) or CpuSnapshot.take()
        start = snapshots.get(True) or end
        return Step(
            scenario=scenario,
            rate=rate or 0.0,
            result=result,
            sustainable=self._sustainable(result),
            cpu_cores=usage(start, end, server_pid=self.server.pid),
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

    async def read_step(
        self, scenario: str, factory: RequestFactory, rate: float | None = None
    ) -> Step:
        """A run that changes nothing, on the running server (open loop at `rate`, or
        closed loop)."""
        await self._ensure_server()
        waited = await self.server.wait_idle()
        step = await self._load(scenario, factory, rate=rate)
        if waited > 1:
            step.notes.append(f"waited {waited:.1f}s for the previous backlog to drain")
        label = f"{scenario} @ {rate:.0f}/s" if rate else scenario
        step.server_log = self._collect_log(label, keep_open=True)
        self.log(step.line())
        return step

    async def _fresh_server(self, fixture: Fixture, sessions: list[dict[str, Any]]) -> list[str]:
        """The snapshot restored, a server started on it, its connections opened."""
        await self.server.stop()
        await self.backend.restore()
        notes = await self.start_server()
        await self._warm_database(fixture, sessions)
        return notes

    async def _finish_booking_run(self, step: Step, label: str, notes: list[str]) -> None:
        step.notes[:0] = notes
        code = await self.server.stop()
        if code not in (0, None):
            step.notes.append(f"the server exited with code {code}")
        step.server_log = self._collect_log(label)
        verification = await self.backend.verify()
        step.verification = verification.summary()
        self._check_bookings(step, verification)

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
        """An open-loop booking run from the snapshot on a fresh server; its warm-up books
        like the window does. With `sell_out_first` the sessions are booked out beforehand
        and the server left to settle, so the run measures the refusals that follow a
        release. With `release_in_window` the warm-up offers GET /healthz instead and the
        window opens on untouched inventory, so it measures the moment of release itself
        (and the winners are counted against the places)."""
        notes = await self._fresh_server(fixture, sessions)
        places = await self._places(fixture, sessions) if release_in_window else {}
        presold: dict[str, int] = {}
        if sell_out_first:
            presold = await self._sell_out(fixture, sessions)
            await self.server.wait_idle()
        kind = "booking_hot" if release_in_window else "booking"
        bookings = self.booking_requests(fixture, sessions, kind=kind)
        step = await self._load(
            scenario,
            bookings,
            rate=rate,
            warmup_factory=self.trivial_requests() if release_in_window else None,
            on_answer=bookings.on_answer,
        )
        step.presold = presold
        await self._finish_booking_run(step, f"{scenario} @ {rate:.0f}/s", notes)
        if release_in_window:
            step.hot = await self._winners(step, places, bookings, kind=kind)
        self.log(step.line())
        return step

    async def closed_booking_step(self, fixture: Fixture) -> Step:
        """Closed-loop bookings over every open free session, from the snapshot."""
        sessions = fixture.bookable_sessions
        notes = await self._fresh_server(fixture, sessions)
        bookings = self.booking_requests(fixture, sessions, seed=5)
        step = await self._load("bookings", bookings, on_answer=bookings.on_answer)
        await self._finish_booking_run(step, "bookings", notes)
        available = sum(s["remaining"] for s in sessions)
        made = bookings.tally.created
        step.places = {
            "sessions": len(sessions),
            "places": available,
            "booked": made,
            "used_share": round(made / available, 3) if available else None,
            "sessions_sold_out": len(bookings.places.sold_out),
            "answers": bookings.tally.by_kind.get("booking", {}),
        }
        if available and made > 0.6 * available:
            step.notes.append(
                f"{made} of {available} places were booked: the run nearly ran out; raise "
                "--capacity-factor or --release-days"
            )
            self._problem(step.notes[-1])
        limited = sum(n for code, n in step.result.codes.items() if "limit" in code)
        if limited > 0.01 * max(step.result.completed, 1):
            step.notes.append(
                f"{limited} attempts were refused by per-patient limits: raise --patients"
            )
            self._problem(step.notes[-1])
        self.log(step.line())
        return step

    async def mixed_step(self, fixture: Fixture, rate: float) -> Step:
        """The release peak as a crowd makes it, open loop (see :class:`MixedPeak`)."""
        hot = fixture.hot_sessions
        notes = await self._fresh_server(fixture, fixture.bookable_sessions)
        places = await self._places(fixture, hot)
        mixed = MixedPeak(
            fixture.key,
            self.read_requests(fixture),
            hot,
            fixture.bookable_sessions,
            fixture.picker(7),
            mix=MIX,
            seed=7,
        )
        step = await self._load(
            "mixed",
            mixed.window,
            rate=rate,
            warmup_factory=mixed.warmup,
            on_answer=mixed.on_answer,
        )
        step.cancelled = mixed.tally.cancelled
        await self._finish_booking_run(step, f"mixed @ {rate:.0f}/s", notes)
        step.hot = await self._winners(step, places, mixed.hot, kind="booking_hot")
        step.places = {"answers_by_kind": mixed.tally.by_kind}
        self.log(step.line())
        return step

    async def _places(self, fixture: Fixture, sessions: list[dict[str, Any]]) -> dict[str, int]:
        """The free places of each session for the app channel, as the server lists them
        right before the run."""
        headers = {"Authorization": f"Bearer {fixture.key}"}
        async with httpx.AsyncClient(
            base_url=self.server.base_url, headers=headers, timeout=30
        ) as client:
            places = {}
            for s in sessions:
                slots = (await client.get(f"/api/v1/sessions/{s['id']}/slots")).json()
                places[s["id"]] = sum(int(slot["remaining"]) for slot in slots)
        return places

    async def _winners(
        self,
        step: Step,
        places: dict[str, int],
        bookings: Bookings,
        *,
        kind: str,
    ) -> dict[str, Any]:
        """The hot sessions' winners (active bookings, from the database) against their
        places: a sell-out must give every place once and no more."""
        active = await count_active(self.backend.url, list(places))
        winners = sum(active.values())
        total = sum(places.values())
        acknowledged = bookings.tally.by_kind.get(kind, {}).get("201", 0)
        sold_out = bookings.tally.by_kind.get(kind, {}).get("409 sold_out", 0)
        first = bookings.first_sold_out
        found = {
            "places": total,
            "winners": winners,
            "acknowledged_201": acknowledged,
            "sold_out_answers": sold_out,
            "first_sold_out_s": round(first - step.result.window_start, 2) if first else None,
            "per_session": {sid: {"places": places[sid], "active": active[sid]} for sid in places},
            # Sold out: every place went, once; and every winner was told so.
            "exact": winners == total and acknowledged == winners,
        }
        if winners > total:
            self._problem(f"{step.scenario}: {winners} winners for {total} places")
            raise OverbookingError(f"{step.scenario}: {winners} winners for {total} places")
        if not found["exact"]:
            step.notes.append(
                f"hot sessions: {winners} winners, {acknowledged} answered 201, {total} places"
                + ("" if sold_out else " (never sold out)")
            )
        return found

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
        picker = fixture.picker(3)
        headers = {"Authorization": f"Bearer {fixture.key}"}
        answers: dict[str, int] = {}
        pending = {s["id"]: s["department"]["id"] for s in sessions}
        attempts = 0

        async def client_loop(client: httpx.AsyncClient) -> None:
            nonlocal attempts
            while pending and attempts < 20 * sum(s["remaining"] for s in sessions) + 1000:
                attempts += 1
                session_id = rng.choice(sorted(pending))
                response = await client.post(
                    "/api/v1/appointments",
                    json={"patient_id": picker.next(pending[session_id]), "session_id": session_id},
                    headers={**headers, "Idempotency-Key": str(uuid4())},
                )
                code = "" if response.is_success else f" {response.json().get('code', '-')}"
                label = f"{response.status_code}{code}"
                answers[label] = answers.get(label, 0) + 1
                if label == "409 sold_out":
                    pending.pop(session_id, None)

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
            - step.cancelled
        )
        step.verification = {
            **(step.verification or {}),
            "new_active": created,
            "acknowledged": acknowledged,
            "cancelled": step.cancelled,
        }
        if created < acknowledged:
            self._problem(
                f"{step.scenario} @ {step.rate:.0f}/s: {acknowledged} bookings acknowledged "
                f"(201 less cancellations) but only {created} active appointments were added"
            )
            raise OverbookingError("acknowledged bookings are missing from the database")
        if created > acknowledged:
            unanswered = result.timeouts + result.transport_errors + result.warmup_unanswered
            note = (
                f"{created - acknowledged} appointments were created (or not cancelled) "
                f"without a 201 (200) reaching the client ({unanswered} sent requests timed "
                "out or lost their connection)"
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

    def _sat(self, step: Step) -> Step:
        self.report["sitting"][step.scenario] = step.summary()
        return step

    async def run(self, fixture: Fixture | None = None) -> Fixture:
        """Prepares the fixture (or takes over the one an earlier configuration prepared,
        from its snapshot) and runs the chosen scenarios."""
        chosen = set(self.config.scenarios)
        if fixture is None:
            fixture = await self.prepare()
        else:
            await self.backend.restore()
            self.baseline_active = fixture.setup["baseline"]["active_appointments"]
            self.report["setup"] = {**fixture.setup, "shared_with_earlier_configuration": True}
        searches: dict[str, Search] = {}
        peak: Step | None = None
        moment: Step | None = None
        try:
            # Reads first, on one server from the snapshot: they change nothing.
            if chosen & {"trivial", "reads", "open_trivial", "availability"}:
                await self.start_server()
            if "trivial" in chosen:
                self._sat(await self.read_step("trivial", self.trivial_requests()))
            if "reads" in chosen:
                self._sat(await self.read_step("reads", self.read_requests(fixture)))
            if "open_trivial" in chosen:
                trivial = self.trivial_requests()
                searches["open_trivial"] = await self.search(
                    "open_trivial", lambda r: self.read_step("open_trivial", trivial, r)
                )
            if "availability" in chosen:
                reads = self.read_requests(fixture)
                searches["availability"] = await self.search(
                    "availability", lambda r: self.read_step("availability", reads, r)
                )
            await self.server.stop()
            if "bookings" in chosen:
                self._sat(await self.closed_booking_step(fixture))
            if "mixed" in chosen:
                self._sat(await self.mixed_step(fixture, self.config.mixed_rate))
            hot, spread = fixture.hot_sessions, fixture.spread_sessions
            set_aside: list[Step] = []
            if "release_moment" in chosen:
                moment = await self.measure(
                    lambda r: self.booking_step(
                        "release_moment", r, fixture, hot, release_in_window=True
                    ),
                    PEAK_RATE,
                    discarded=set_aside,
                )
                self._sat(moment)
                self.report["release_moment_at_1000"] = moment.summary()
            if "release_peak" in chosen:
                peak = await self.measure(
                    lambda r: self.booking_step(
                        "release_peak", r, fixture, hot, sell_out_first=True
                    ),
                    PEAK_RATE,
                    discarded=set_aside,
                )
                self.report["release_peak_at_1000"] = {
                    **peak.summary(),
                    "set_aside_noisy_runs": [s.summary() for s in set_aside],
                }
                searches["release_peak"] = await self.search(
                    "release_peak",
                    lambda r: self.booking_step(
                        "release_peak", r, fixture, hot, sell_out_first=True
                    ),
                    known=[peak],
                )
            if "spread" in chosen:
                searches["spread"] = await self.search(
                    "spread", lambda r: self.booking_step("spread", r, fixture, spread)
                )
            self.report["table"] = table_rows(self.report["sitting"])
            self.report["summary"] = summarise_searches(
                searches, peak, moment if searches else None, PEAK_RATE
            )
        finally:
            await self.server.stop()
            self._collect_log("shutdown")
        return fixture


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


def result_path(stamp: str, db: str, config: Config) -> Path:
    suffix = (
        (f"-w{config.workers}" if config.workers > 1 else "")
        + ("-redis" if config.redis_url else "")
        + ("-quick" if config.quick else "")
    )
    return RESULTS / f"{stamp}-{db}{suffix}.json"


async def bench_one(db: str, config: Config, stamp: str) -> list[dict[str, Any]]:
    """Every server configuration of `config.workers_list` on one database, from one
    fixture; a report (and a JSON file) each."""
    workdir = make_workdir()
    backend: Backend = SqliteBackend(workdir) if db == "sqlite" else PostgresBackend()
    reports: list[dict[str, Any]] = []
    fixture: Fixture | None = None
    # Ctrl-C or SIGTERM cancels the run, so the server is stopped and the results written.
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None

    def stop(signum: signal.Signals) -> None:
        print(f"[{db}] received {signum.name}: stopping", file=sys.stderr, flush=True)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        for workers in config.workers_list:
            single = config.for_workers(workers)
            bench = Bench(single, backend, workdir)
            bench.report.update({"started_at": stamp, "machine": machine()})
            error: BaseException | None = None
            try:
                fixture = await bench.run(fixture)
            except BaseException as failure:
                error = failure
                bench.report["error"] = f"{type(failure).__name__}: {failure}"
                raise
            finally:
                RESULTS.mkdir(exist_ok=True)
                path = result_path(stamp, db, single)
                path.write_text(json.dumps(bench.report, indent=2, ensure_ascii=False, default=str))
                bench.log(f"results written to {path}" + (" (incomplete)" if error else ""))
                reports.append(bench.report)
    finally:
        with contextlib.suppress(Exception):
            await backend.cleanup()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return reports


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
    parser.add_argument(
        "--scenarios",
        default="all",
        help=f"comma-separated, in this order: {', '.join(SCENARIOS)}; or `sitting` "
        f"({', '.join(SITTING)}), `searches`, `all` (default)",
    )
    parser.add_argument("--quick", action="store_true", help="short runs for a smoke check")
    parser.add_argument("--duration", type=float, help="measured seconds per run (default 10)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per run (default 2)")
    parser.add_argument("--clients", type=int, default=32, help="closed-loop clients")
    parser.add_argument(
        "--workers",
        default="1",
        help="`yuyue serve --workers N`; a list (e.g. 1,2) measures each configuration in "
        "turn from the same fixture",
    )
    parser.add_argument(
        "--db-pool-size",
        type=int,
        help="YUYUE_DB_POOL_SIZE for each serving process (default: the server's own with one "
        "process, 64 / N with N processes)",
    )
    parser.add_argument(
        "--redis",
        action="store_true",
        help="serve with YUYUE_REDIS_URL (emptied before every server start)",
    )
    parser.add_argument(
        "--redis-url",
        help=f"the Redis database the benchmark may empty (default {DEFAULT_REDIS_URL})",
    )
    parser.add_argument(
        "--patients", type=int, help="patients to register (default 10000; 1000 with --quick)"
    )
    parser.add_argument(
        "--capacity-factor",
        type=int,
        default=10,
        help="multiply the places of the demo's department clinics (default 10)",
    )
    parser.add_argument(
        "--release-days",
        type=int,
        default=13,
        help="days ahead the booking policy releases sessions (default 13: all the demo's "
        "two weeks; the demo's own policy says 7)",
    )
    parser.add_argument(
        "--mixed-rate", type=float, default=PEAK_RATE, help="requests/s offered in `mixed`"
    )
    parser.add_argument("--connections", type=int, default=256, help="open-loop connection limit")
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
    try:
        config = Config.build(args)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
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
            reports.extend(runner(bench_one(db, config, stamp)))
        except (OverbookingError, SetupError) as error:
            print(f"\n[{db}] FAILED: {type(error).__name__}: {error}", file=sys.stderr)
            failed = True
        except (asyncio.CancelledError, KeyboardInterrupt):
            print(f"\n[{db}] interrupted", file=sys.stderr)
            return 130
    print()
    for report in reports:
        print(markdown(report))
    for db in databases:
        comparison = markdown_comparison([r for r in reports if r["database"] == db])
        if comparison:
            print(comparison)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
