"""How fast the reports answer over a year of a large hospital, on PostgreSQL.

Generates a year of visit days' facts (sessions, appointments in every state, visits with
waits, payments and refunds, booking attempts booked and refused) for a hospital of 40
departments and 200 doctors, turns each day into summary rows with the same pure function
the refresh uses (`reports.rules.summarise_day`), loads them with COPY into a schema of
their own, and times every report over the whole year and over a month, printing
milliseconds (median of the runs).

    PYTHONPATH=src .venv/bin/python bench/reports.py                   # ~3 million appointments
    PYTHONPATH=src .venv/bin/python bench/reports.py --appointments 300000   # a quick look

The refresh itself (reading the other contexts' tables) is not timed here: it runs a day at
a time in the background; see docs/performance.md."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from yuyue.kit import migrate
from yuyue.kit.db import Database
from yuyue.reports import rules, service
from yuyue.reports.models import (
    ReportDay,
    ReportDemand,
    ReportMoney,
    ReportPlaces,
    ReportSession,
    ReportWaits,
)
from yuyue.reports.rules import (
    AppointmentFact,
    AttemptFact,
    DayFacts,
    MoneyFact,
    ReportFilters,
    ReportName,
    SessionFact,
    VisitFact,
    WaitlistFact,
)
from yuyue.scheduling.enums import Channel
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, ActorKind

URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
FIRST_DAY = date(2026, 1, 1)
DAYS = 365
DEPARTMENTS = 40
DOCTORS_PER_DEPARTMENT = 5
CHANNELS = [c.value for c in Channel]
CHANNEL_WEIGHTS = [20, 30, 10, 5, 15, 5, 3, 12]
STATUSES = ["completed", "no_show", "cancelled", "expired", "booked", "checked_in"]
STATUS_WEIGHTS = [70, 6, 15, 3, 4, 2]
TZ_SHIFT = timedelta(hours=8)


def at_local(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - TZ_SHIFT


def one_day(
    rng: random.Random,
    day: date,
    doctors: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]],
    per_day: int,
) -> DayFacts:
    sessions: list[SessionFact] = []
    appointments: list[AppointmentFact] = []
    visits: list[VisitFact] = []
    money: list[MoneyFact] = []
    waitlist: list[WaitlistFact] = []
    # Booking attempts as booking writes them: per session, channel, local hour and outcome.
    attempts: dict[tuple[uuid.UUID, str, date, int, str], int] = {}

    def attempt(session_id: uuid.UUID, channel: str, at: datetime, outcome: str, n: int) -> None:
        local = at + TZ_SHIFT
        key = (session_id, channel, local.date(), local.hour, outcome)
        attempts[key] = attempts.get(key, 0) + n

    per_doctor = max(1, per_day // len(doctors))
    for department, doctor, level in doctors:
        session_id = uuid.uuid4()
        capacity = int(per_doctor * 1.15) + 1
        sessions.append(
            SessionFact(
                session_id,
                day,
                None,
                department,
                doctor,
                level,
                False,
                capacity,
                int(capacity * 0.6),
                # Released a week ahead at 08:00, so sell-outs have their minutes.
                at_local(day - timedelta(days=7), 8, 0),
            )
        )
        channels = rng.choices(CHANNELS, CHANNEL_WEIGHTS, k=per_doctor)
        statuses = rng.choices(STATUSES, STATUS_WEIGHTS, k=per_doctor)
        for channel, status in zip(channels, statuses, strict=True):
            ahead = rng.choice((7, 7, 7, 6, 5, 3, 1, 0))
            hour = 8 if rng.random() < 0.4 else rng.randint(7, 22)
            made = at_local(day - timedelta(days=ahead), hour, rng.randint(0, 59))
            back = made + timedelta(hours=rng.randint(1, 48)) if status == "cancelled" else None
            expires = made + timedelta(minutes=15) if status == "expired" else None
            appointments.append(
                AppointmentFact(
                    session_id, channel, status, made, back, expires, channel != "window"
                )
            )
            if channel != "window":
                attempt(session_id, channel, made, "booked", 1)
            if status in ("completed", "checked_in"):
                checked_in = at_local(day, rng.randint(7, 16), rng.randint(0, 59))
                called = checked_in + timedelta(minutes=rng.randint(2, 90))
                finished = (
                    called + timedelta(minutes=rng.randint(3, 20))
                    if status == "completed"
                    else None
                )
                visits.append(VisitFact(session_id, checked_in, called, finished))
            if rng.random() < 0.3 and status not in ("expired",):
                provider = rng.choice(("wechatpay", "alipay"))
                money.append(
                    MoneyFact(
                        session_id, channel, provider, made + timedelta(minutes=1), 5000, False
                    )
                )
                if status == "cancelled" and back is not None:
                    money.append(MoneyFact(session_id, channel, provider, back, 5000, True))
        # A popular session: after its 08:00 release sells out, the refusals keep coming.
        if rng.random() < 0.3:
            released = at_local(day - timedelta(days=7), 8, 0)
            for channel in rng.sample(CHANNELS[:-1], 4):
                attempt(session_id, channel, released, "sold_out", rng.randint(5, 200))
                attempt(session_id, channel, released + timedelta(hours=1), "sold_out", 10)
            attempt(session_id, "app", released, "limit_exceeded", rng.randint(0, 5))
        if rng.random() < 0.2:
            for _ in range(rng.randint(1, 5)):
                made = at_local(day - timedelta(days=rng.randint(0, 6)), rng.randint(8, 20), 0)
                waitlist.append(
                    WaitlistFact(
                        session_id,
                        rng.choice(CHANNELS),
                        rng.choice(("accepted", "lapsed", "waiting")),
                        made,
                    )
                )
    facts = [AttemptFact(*key, n) for key, n in attempts.items()]
    return DayFacts(day, sessions, appointments, waitlist, visits, money, facts)


async def load(
    pg: asyncpg.Connection, schema: str, hospital: uuid.UUID, appointments: int, seed: int
) -> dict[str, int]:
    rng = random.Random(seed)
    doctors = []
    for _ in range(DEPARTMENTS):
        department = uuid.uuid4()
        for _ in range(DOCTORS_PER_DEPARTMENT):
            doctors.append((department, uuid.uuid4(), uuid.uuid4()))
    per_day = appointments // DAYS
    tables = {
        ReportDay.__tablename__: "day_rows",
        ReportPlaces.__tablename__: "place_rows",
        ReportDemand.__tablename__: "demand_rows",
        ReportWaits.__tablename__: "wait_rows",
        ReportMoney.__tablename__: "money_rows",
        ReportSession.__tablename__: "session_rows",
    }
    loaded = dict.fromkeys(tables, 0)
    columns: dict[str, list[str]] = {}
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        summary = rules.summarise_day(
            one_day(rng, day, doctors, per_day), hospital_id=hospital, timezone="Asia/Shanghai"
        )
        for table, attribute in tables.items():
            rows: list[dict[str, Any]] = getattr(summary, attribute)
            if not rows:
                continue
            names = columns.setdefault(table, ["id", *rows[0].keys()])
            await pg.copy_records_to_table(
                table,
                records=[(uuid.uuid4(), *row.values()) for row in rows],
                columns=names,
                schema_name=schema,
            )
            loaded[table] += len(rows)
    for table in tables:
        await pg.execute(f'ANALYZE "{schema}"."{table}"')
    return loaded


async def time_reports(
    db: Database, hospital: uuid.UUID, runs: int
) -> list[tuple[str, str, float]]:
    actor = Actor(
        hospital_id=hospital,
        kind=ActorKind.STAFF,
        id="bench",
        channel=Channel.WINDOW,
        roles=frozenset({Role.ADMIN}),
    )
    ranges = {
        "year": ReportFilters(date_from=FIRST_DAY, date_to=FIRST_DAY + timedelta(days=DAYS - 1)),
        "month": ReportFilters(date_from=date(2026, 6, 1), date_to=date(2026, 6, 30)),
        "year, one channel": ReportFilters(
            date_from=FIRST_DAY,
            date_to=FIRST_DAY + timedelta(days=DAYS - 1),
            channel=Channel.WECHAT,
        ),
    }
    out = []
    for label, filters in ranges.items():
        for name in ReportName:
            timings = []
            for _ in range(runs):
                started = time.perf_counter()
                async with db.read() as session:
                    table = await service.report(
                        session, actor=actor, name=name, filters=filters, locale="zh-CN"
                    )
                timings.append((time.perf_counter() - started) * 1000)
            assert table.rows, name
            out.append((label, name.value, statistics.median(timings)))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()
    plain = args.url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(plain)
    schema = f"yuyue_bench_reports_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    connect_args = {"server_settings": {"search_path": schema}}
    db = Database(args.url, connect_args=connect_args, pool_size=2)
    try:
        await migrate.upgrade(args.url, connect_args=connect_args)
        hospital = uuid.uuid4()
        started = time.perf_counter()
        loaded = await load(admin, schema, hospital, args.appointments, seed=7)
        print(
            f"{args.appointments:,} appointments over {DAYS} days → summary rows {loaded} "
            f"(generated and loaded in {time.perf_counter() - started:.0f} s)"
        )
        for label, name, ms in await time_reports(db, hospital, args.runs):
            print(f"{label:<18} {name:<20} {ms:8.1f} ms")
    finally:
        await db.dispose()
        if not args.keep:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
