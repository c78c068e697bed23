"""The reports' use cases: rebuilding visit days' summary rows, and answering a report from
them. Services never commit; the CLI, the job and the routes own the transaction.

A report reads only the summary tables: one grouped query each on an index over
(hospital, day), so a year of a large hospital answers in well under a second (bench/reports.py).
The price is freshness: the rows are as new as the last refresh, which the periodic job
runs every few minutes over the days that still change (docs/reports.md)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.reports import rules, sources
from yuyue.reports.models import (
    ReportDay,
    ReportDemand,
    ReportMoney,
    ReportPlaces,
    ReportRefresh,
    ReportSession,
    ReportWaits,
)
from yuyue.reports.rules import ReportFilters, ReportName, ReportTable
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, require_staff

# Who reads reports (administrators hold every role): finance for revenue and refunds, the
# scheduler for demand, places and waits, which is what they plan sessions and quotas from.
REPORT_ROLES = (Role.FINANCE, Role.SCHEDULER)
# Days before today the frequent refresh rebuilds (no-shows are marked after the session,
# refunds finish a day or two later) and days after today (bookings for the coming weeks).
RECENT_DAYS_BEFORE = 3
RECENT_DAYS_AFTER = 31
# The nightly refresh reaches back this far (late refunds, appeals that lift a no-show).
SETTLED_DAYS_BEFORE = 45
_TABLES = (ReportDay, ReportPlaces, ReportDemand, ReportWaits, ReportMoney, ReportSession)


def require_reader(actor: Actor) -> None:
    require_staff(actor, *REPORT_ROLES)


# --- refresh ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refreshed:
    hospital_id: uuid.UUID
    days: int
    rows: int


async def refresh_day(
    session: AsyncSession, *, hospital_id: uuid.UUID, day: date, timezone: str, now: datetime
) -> int:
    """Rebuilds one visit day's summary rows: deletes them and inserts them again from what
    the other contexts record now. Idempotent; returns the rows written."""
    facts = await sources.day_facts(session, hospital_id=hospital_id, day=day)
    summary = rules.summarise_day(facts, hospital_id=hospital_id, timezone=timezone)
    for table in _TABLES:
        await session.execute(
            delete(table).where(table.hospital_id == hospital_id, table.day == day)
        )
    written = 0
    for table, rows in (
        (ReportDay, summary.day_rows),
        (ReportPlaces, summary.place_rows),
        (ReportDemand, summary.demand_rows),
        (ReportWaits, summary.wait_rows),
        (ReportMoney, summary.money_rows),
        (ReportSession, summary.session_rows),
    ):
        if rows:
            await session.execute(insert(table), [{"id": uuid.uuid4(), **row} for row in rows])
            written += len(rows)
    await session.execute(
        delete(ReportRefresh).where(
            ReportRefresh.hospital_id == hospital_id, ReportRefresh.day == day
        )
    )
    session.add(ReportRefresh(hospital_id=hospital_id, day=day, refreshed_at=now))
    await session.flush()
    return written


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def recent_days(today: date) -> list[date]:
    return days_between(
        today - timedelta(days=RECENT_DAYS_BEFORE), today + timedelta(days=RECENT_DAYS_AFTER)
    )


def settled_days(today: date) -> list[date]:
    return days_between(
        today - timedelta(days=SETTLED_DAYS_BEFORE), today - timedelta(days=RECENT_DAYS_BEFORE + 1)
    )


async def hospitals(session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    return [
        (hospital_id, await sources.hospital_timezone(session, hospital_id))
        for hospital_id in await sources.hospital_ids(session)
    ]


async def timezone_of(session: AsyncSession, hospital_id: uuid.UUID) -> str:
    return await sources.hospital_timezone(session, hospital_id)


async def last_refreshed(
    session: AsyncSession, *, hospital_id: uuid.UUID, date_from: date, date_to: date
) -> datetime | None:
    """The oldest refresh among the visit days in the range that were ever refreshed."""
    oldest: datetime | None = await session.scalar(
        select(func.min(ReportRefresh.refreshed_at)).where(
            ReportRefresh.hospital_id == hospital_id,
            ReportRefresh.day >= date_from,
            ReportRefresh.day <= date_to,
        )
    )
    return oldest


# --- reports ------------------------------------------------------------------------------


def _where(
    table: Any, filters: ReportFilters, *, day: Any, channel: bool = True
) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [day >= filters.date_from, day <= filters.date_to]
    if filters.campus_id is not None:
        clauses.append(table.campus_id == filters.campus_id)
    if filters.department_id is not None:
        clauses.append(table.department_id == filters.department_id)
    if filters.doctor_id is not None:
        clauses.append(table.doctor_id == filters.doctor_id)
    if channel and filters.channel is not None:
        clauses.append(table.channel == filters.channel.value)
    return clauses


def _sums(table: Any, names: Iterable[str]) -> list[Any]:
    return [func.coalesce(func.sum(getattr(table, name)), 0).label(name) for name in names]


def _name(names: dict[uuid.UUID, tuple[str, str]], key: uuid.UUID | None, locale: str) -> str:
    if key is None or key not in names:
        return "-"
    zh, en = names[key]
    return en if locale == "en" else zh


async def report(
    session: AsyncSession, *, actor: Actor, name: ReportName, filters: ReportFilters, locale: str
) -> ReportTable:
    """One report over the summary rows, with names in `locale`. Refused (403) to anyone
    without a reports role, before anything is read."""
    require_reader(actor)
    rules.check_range(filters.date_from, filters.date_to)
    hospital_id = actor.hospital_id
    known = await sources.names(session, hospital_id=hospital_id)
    departments = known["department"]

    if name is ReportName.BOOKINGS_BY_CHANNEL:
        t = ReportDay
        rows = await session.execute(
            select(t.channel, t.level_id, *_sums(t, rules.DAY_COUNTS))
            .where(t.hospital_id == hospital_id, *_where(t, filters, day=t.day))
            .group_by(t.channel, t.level_id)
        )
        return rules.bookings_by_channel(
            [{**row._mapping, "level": _name(known["level"], row.level_id, locale)} for row in rows]
        )

    if name is ReportName.DEMAND_HEATMAP:
        d = ReportDemand
        where = _where(d, filters, day=d.request_day, channel=False)
        if filters.channel is not None:
            # Sell-outs are the session's, whatever the channel: kept under a filter.
            where.append(d.channel.in_((filters.channel.value, rules.NO_CHANNEL)))
        rows = await session.execute(
            select(d.department_id, d.weekday, d.hour, *_sums(d, rules.DEMAND_COUNTS))
            .where(d.hospital_id == hospital_id, *where)
            .group_by(d.department_id, d.weekday, d.hour)
        )
        return rules.demand_heatmap(
            [
                {**row._mapping, "department": _name(departments, row.department_id, locale)}
                for row in rows
            ]
        )

    if name is ReportName.UTILISATION:
        t, p = ReportDay, ReportPlaces
        used = await session.execute(
            select(t.department_id, *_sums(t, rules.DAY_COUNTS))
            .where(t.hospital_id == hospital_id, *_where(t, filters, day=t.day))
            .group_by(t.department_id)
        )
        offered = await session.execute(
            select(p.department_id, *_sums(p, rules.PLACE_COUNTS))
            .where(p.hospital_id == hospital_id, *_where(p, filters, day=p.day, channel=False))
            .group_by(p.department_id)
        )
        return rules.utilisation(
            [
                {**row._mapping, "department": _name(departments, row.department_id, locale)}
                for row in used
            ],
            {_name(departments, row.department_id, locale): dict(row._mapping) for row in offered},
            with_capacity=filters.channel is None,
        )

    if name is ReportName.NO_SHOWS:
        t = ReportDay
        rows = await session.execute(
            select(t.department_id, *_sums(t, rules.DAY_COUNTS))
            .where(t.hospital_id == hospital_id, *_where(t, filters, day=t.day))
            .group_by(t.department_id)
        )
        return rules.no_shows(
            [
                {**row._mapping, "department": _name(departments, row.department_id, locale)}
                for row in rows
            ]
        )

    if name is ReportName.WAITS:
        w = ReportWaits
        rows = await session.execute(
            select(w.department_id, w.hour, *_sums(w, rules.WAIT_COUNTS))
            .where(w.hospital_id == hospital_id, *_where(w, filters, day=w.day, channel=False))
            .group_by(w.department_id, w.hour)
        )
        return rules.waits(
            [
                {**row._mapping, "department": _name(departments, row.department_id, locale)}
                for row in rows
            ]
        )

    if name is ReportName.SELL_OUTS:
        return await _sell_outs(
            session, hospital_id=hospital_id, filters=filters, names=departments, locale=locale
        )

    m = ReportMoney
    rows = await session.execute(
        select(m.money_day, m.provider, *_sums(m, rules.MONEY_COUNTS))
        .where(m.hospital_id == hospital_id, *_where(m, filters, day=m.money_day))
        .group_by(m.money_day, m.provider)
    )
    return rules.revenue([dict(row._mapping) for row in rows], filters)


async def _sell_outs(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    filters: ReportFilters,
    names: dict[uuid.UUID, tuple[str, str]],
    locale: str,
) -> ReportTable:
    """Sessions and sell-outs per department from report_session, with the fastest, median
    and 90th-percentile minutes to the sell-out. PostgreSQL computes the percentiles itself
    (`percentile_disc`: the same real sessions `rules.sellout_figures` picks), so a year of
    a large hospital sends a row per department; elsewhere the minutes come as a histogram
    per department (equal minutes collapse) and `rules` computes them. A sell-out is the
    session's, not a channel's: the channel filter does not apply."""
    s = ReportSession
    where = [s.hospital_id == hospital_id, *_where(s, filters, day=s.day, channel=False)]
    counts = (
        func.count().label("sessions"),
        func.count(s.sold_out_at).label("sold_out"),
    )

    def named(row: Any) -> dict[str, Any]:
        return {**row._mapping, "department": _name(names, row.department_id, locale)}

    if session.get_bind().dialect.name == "postgresql":
        figures = (
            func.min(s.sellout_minutes).label("fastest_minutes"),
            func.percentile_disc(0.5).within_group(s.sellout_minutes).label("median_minutes"),
            func.percentile_disc(rules.SELLOUT_PERCENTILE)
            .within_group(s.sellout_minutes)
            .label("p90_minutes"),
        )
        grouped = await session.execute(
            select(s.department_id, *counts, *figures).where(*where).group_by(s.department_id)
        )
        overall = (await session.execute(select(*figures).where(*where))).one()
        return rules.sell_outs_of([named(row) for row in grouped], dict(overall._mapping))

    counted = await session.execute(
        select(s.department_id, *counts).where(*where).group_by(s.department_id)
    )
    histogram = await session.execute(
        select(s.department_id, s.sellout_minutes.label("minutes"), func.count().label("count"))
        .where(*where, s.sellout_minutes.is_not(None))
        .group_by(s.department_id, s.sellout_minutes)
    )
    return rules.sell_outs([named(row) for row in counted], [named(row) for row in histogram])


async def filter_choices(session: AsyncSession, *, actor: Actor) -> dict[str, Any]:
    """Campuses, departments and doctors for the filter menus."""
    require_reader(actor)
    known = await sources.names(session, hospital_id=actor.hospital_id)
    doctors = await sources.department_doctors(session, hospital_id=actor.hospital_id)
    return {"names": known, "doctors": doctors}


def sorted_names(
    names: dict[uuid.UUID, tuple[str, str]], locale: str
) -> Sequence[tuple[uuid.UUID, str]]:
    return sorted(
        ((key, en if locale == "en" else zh) for key, (zh, en) in names.items()), key=lambda x: x[1]
    )
