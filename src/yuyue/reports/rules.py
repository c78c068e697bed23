"""What the reports count, as pure functions: a visit day's facts (read by `sources`) become
the summary rows the reports context keeps, and grouped summary rows become a report's
table. No database and no I/O here; docs/reports.md says the same in words.

A visit day is the partition: every summary row belongs to the clinic day of the
appointment it counts, so refreshing a day is "delete that day's rows, insert them again".
Rows that count events on another day (a request made days before the visit, money that
moved after it) carry that event's day as well, and reports filter on it."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from yuyue.booking.states import AppointmentStatus
from yuyue.booking.waitlist.states import WaitlistStatus
from yuyue.kit.errors import ValidationFailed
from yuyue.kit.localtime import local_instant
from yuyue.reports.quota.rules import median, percentile
from yuyue.scheduling.enums import Channel

# The longest range one report answers: a year and a bit (a leap year plus a margin).
MAX_RANGE_DAYS = 400
# Revenue is shown per day up to this many days, per month beyond.
DAILY_UP_TO_DAYS = 62
# No channel: the session's sell-outs belong to no channel (see `sellout_instant`).
NO_CHANNEL = ""
# The demand heat map's page lists this many of its busiest cells (the files hold them all).
HEAT_TABLE_ROWS = 20
# The sell-out report's slow end: this share of the sold-out sessions went at least this fast.
SELLOUT_PERCENTILE = 0.9


class ReportName(StrEnum):
    BOOKINGS_BY_CHANNEL = "bookings-by-channel"
    DEMAND_HEATMAP = "demand-heatmap"
    UTILISATION = "utilisation"
    NO_SHOWS = "no-shows"
    WAITS = "waits"
    REVENUE = "revenue"
    SELL_OUTS = "sell-outs"


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


@dataclass(frozen=True, slots=True)
class ReportFilters:
    date_from: date
    date_to: date
    campus_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = None
    doctor_id: uuid.UUID | None = None
    channel: Channel | None = None


def check_range(date_from: date, date_to: date) -> None:
    """A range runs forwards and spans at most MAX_RANGE_DAYS days."""
    if date_to < date_from:
        raise ValidationFailed(
            errors=[{"loc": ["query", "date_to"], "msg": "date_to is before date_from"}]
        )
    if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
        raise ValidationFailed(
            errors=[{"loc": ["query", "date_to"], "msg": f"at most {MAX_RANGE_DAYS} days"}]
        )


# --- a visit day's facts, as the sources read them ----------------------------------------


@dataclass(frozen=True, slots=True)
class SessionFact:
    id: uuid.UUID
    day: date
    campus_id: uuid.UUID | None
    department_id: uuid.UUID
    doctor_id: uuid.UUID | None
    level_id: uuid.UUID
    stopped: bool
    capacity: int  # every place of every pool, extra places included
    remote_capacity: int  # the places of the pools remote channels book (not on-site/reserved)
    # When remote channels could first book it (see `release_instant`); None: unknown.
    released_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AppointmentFact:
    session_id: uuid.UUID
    channel: str
    status: str
    created_at: datetime
    cancelled_at: datetime | None
    hold_expires_at: datetime | None
    remote_pool: bool  # its place came from a pool remote channels book


@dataclass(frozen=True, slots=True)
class WaitlistFact:
    session_id: uuid.UUID
    channel: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptFact:
    """Booking attempts (booking's counts of the booking POST) for one session from one
    channel in one local hour of the hospital's clock, with one outcome: `booked`,
    `sold_out` or another refusal's code."""

    session_id: uuid.UUID
    channel: str
    day: date
    hour: int
    outcome: str
    attempts: int


@dataclass(frozen=True, slots=True)
class VisitFact:
    session_id: uuid.UUID
    checked_in_at: datetime
    called_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class MoneyFact:
    """A payment taken (positive kind) or a refund finished, of one appointment."""

    session_id: uuid.UUID
    channel: str
    provider: str
    at: datetime
    amount_fen: int
    refund: bool


@dataclass(frozen=True, slots=True)
class DayFacts:
    day: date
    sessions: Sequence[SessionFact]
    appointments: Sequence[AppointmentFact] = ()
    waitlist: Sequence[WaitlistFact] = ()
    visits: Sequence[VisitFact] = ()
    money: Sequence[MoneyFact] = ()
    attempts: Sequence[AttemptFact] = ()


# --- the summary rows ---------------------------------------------------------------------

DAY_COUNTS = (
    "made",
    "held",
    "booked",
    "checked_in",
    "completed",
    "no_show",
    "cancelled",
    "expired",
    "waitlist_joined",
    "waitlist_accepted",
)
PLACE_COUNTS = ("sessions", "stopped_sessions", "capacity", "remote_capacity")
DEMAND_COUNTS = (
    "requests",
    "waitlist_joins",
    "sellouts",
    "attempts",
    "sold_out_refusals",
    "other_refusals",
)
# An attempt's outcomes (booking.demand): a place taken, or refused as sold out; any other
# outcome is another refusal's code (limits, closed, already booked…).
ATTEMPT_BOOKED = "booked"
ATTEMPT_SOLD_OUT = "sold_out"
WAIT_COUNTS = ("visits", "called", "wait_seconds", "finished", "consult_seconds")
MONEY_COUNTS = ("payments", "paid_fen", "refunds", "refund_fen")

_STATUS_COUNT = {
    AppointmentStatus.HELD: "held",
    AppointmentStatus.BOOKED: "booked",
    AppointmentStatus.CHECKED_IN: "checked_in",
    AppointmentStatus.COMPLETED: "completed",
    AppointmentStatus.NO_SHOW: "no_show",
    AppointmentStatus.CANCELLED: "cancelled",
    AppointmentStatus.EXPIRED: "expired",
}


@dataclass
class DaySummary:
    """The rows of each summary table for one visit day (plain dicts, column → value)."""

    day_rows: list[dict[str, Any]] = field(default_factory=list)
    place_rows: list[dict[str, Any]] = field(default_factory=list)
    demand_rows: list[dict[str, Any]] = field(default_factory=list)
    wait_rows: list[dict[str, Any]] = field(default_factory=list)
    money_rows: list[dict[str, Any]] = field(default_factory=list)
    session_rows: list[dict[str, Any]] = field(default_factory=list)


def _session_key(session: SessionFact) -> dict[str, Any]:
    return {
        "campus_id": session.campus_id,
        "department_id": session.department_id,
        "doctor_id": session.doctor_id,
    }


def _rows(
    counted: Mapping[tuple[Any, ...], dict[str, int]], names: Sequence[str], base: dict[str, Any]
) -> list[dict[str, Any]]:
    return [
        {**base, **dict(zip(names, key, strict=True)), **counts} for key, counts in counted.items()
    ]


def _counter(counts: Sequence[str]) -> defaultdict[tuple[Any, ...], dict[str, int]]:
    return defaultdict(lambda: dict.fromkeys(counts, 0))


def local_hour(instant: datetime, tz: ZoneInfo) -> tuple[date, int]:
    local = instant.astimezone(tz)
    return local.date(), local.hour


def sellout_instant(
    remote_capacity: int, appointments: Iterable[AppointmentFact]
) -> datetime | None:
    """The first moment every place of the session's remote pools was taken, or None.

    Each appointment from a remote pool took its place when it was made and gave it back
    when it was cancelled (cancelled_at) or its hold ran out (hold_expires_at). Replaying
    those steps in time order, the sell-out is the step that first brought the places taken
    to the capacity. At equal instants a place given back counts first: it was free."""
    if remote_capacity <= 0:
        return None
    steps: list[tuple[datetime, int]] = []
    for item in appointments:
        if not item.remote_pool:
            continue
        steps.append((item.created_at, 1))
        if item.status == AppointmentStatus.CANCELLED and item.cancelled_at is not None:
            steps.append((item.cancelled_at, -1))
        elif item.status == AppointmentStatus.EXPIRED and item.hold_expires_at is not None:
            steps.append((item.hold_expires_at, -1))
    taken = 0
    for at, step in sorted(steps):
        taken += step
        if taken >= remote_capacity:
            return at
    return None


def release_instant(
    day: date, *, days_ahead: int, release_time: time, timezone: str, created_at: datetime
) -> datetime:
    """When remote channels could first book a session on `day`: `days_ahead` days before at
    `release_time` on the hospital's clock (booking's window), or when the session was
    created, if that was later (an extra session added after the release)."""
    released = local_instant(day - timedelta(days=days_ahead), release_time, timezone)
    return max(released, created_at)


def sellout_minutes(released_at: datetime | None, sold_out_at: datetime | None) -> int | None:
    """Whole minutes from the release to the sell-out, never below 0 (a policy changed since
    may put the computed release after the sell-out)."""
    if released_at is None or sold_out_at is None:
        return None
    return max(0, int((sold_out_at - released_at).total_seconds() // 60))


_GIVEN_BACK = (AppointmentStatus.CANCELLED, AppointmentStatus.EXPIRED)
_ATTENDED = (AppointmentStatus.CHECKED_IN, AppointmentStatus.COMPLETED)


def _session_row(
    session: SessionFact,
    appointments: Sequence[AppointmentFact],
    waitlist: Sequence[WaitlistFact],
) -> dict[str, Any]:
    kept_rows = [a for a in appointments if a.status not in _GIVEN_BACK]
    sold_out = sellout_instant(session.remote_capacity, appointments)
    return {
        **_session_key(session),
        "session_id": session.id,
        "level_id": session.level_id,
        "capacity": session.capacity,
        "remote_capacity": session.remote_capacity,
        "remote_used": sum(1 for a in kept_rows if a.remote_pool),
        "local_used": sum(1 for a in kept_rows if not a.remote_pool),
        "attended": sum(1 for a in appointments if a.status in _ATTENDED),
        "no_show": sum(1 for a in appointments if a.status == AppointmentStatus.NO_SHOW),
        "waitlist_joined": len(waitlist),
        "waitlist_accepted": sum(1 for w in waitlist if w.status == WaitlistStatus.ACCEPTED),
        "released_at": session.released_at,
        "sold_out_at": sold_out,
        "sellout_minutes": sellout_minutes(session.released_at, sold_out),
    }


def summarise_day(facts: DayFacts, *, hospital_id: uuid.UUID, timezone: str) -> DaySummary:
    """Every summary row of one visit day, from that day's facts."""
    tz = ZoneInfo(timezone)
    sessions = {item.id: item for item in facts.sessions}
    base = {"hospital_id": hospital_id, "day": facts.day}
    out = DaySummary()

    places = _counter(PLACE_COUNTS)
    for item in facts.sessions:
        counts = places[(item.campus_id, item.department_id, item.doctor_id, item.level_id)]
        counts["sessions"] += 1
        if item.stopped:
            counts["stopped_sessions"] += 1
        else:
            counts["capacity"] += item.capacity
            counts["remote_capacity"] += item.remote_capacity
    out.place_rows = _rows(places, ("campus_id", "department_id", "doctor_id", "level_id"), base)

    day_keys = ("campus_id", "department_id", "doctor_id", "level_id", "channel")
    days = _counter(DAY_COUNTS)
    demand = _counter(DEMAND_COUNTS)
    demand_keys = (
        "request_day",
        "weekday",
        "hour",
        "campus_id",
        "department_id",
        "doctor_id",
        "channel",
    )
    by_session: defaultdict[uuid.UUID, list[AppointmentFact]] = defaultdict(list)
    waiting: defaultdict[uuid.UUID, list[WaitlistFact]] = defaultdict(list)

    def demand_key(session: SessionFact, at: datetime, channel: str) -> tuple[Any, ...]:
        request_day, hour = local_hour(at, tz)
        return local_demand_key(session, request_day, hour, channel)

    def local_demand_key(
        session: SessionFact, request_day: date, hour: int, channel: str
    ) -> tuple[Any, ...]:
        return (
            request_day,
            request_day.weekday(),
            hour,
            session.campus_id,
            session.department_id,
            session.doctor_id,
            channel,
        )

    for appointment in facts.appointments:
        session = sessions.get(appointment.session_id)
        if session is None:
            continue
        by_session[session.id].append(appointment)
        key = (*_session_key(session).values(), session.level_id, appointment.channel)
        counts = days[key]
        counts["made"] += 1
        status_count = _STATUS_COUNT.get(AppointmentStatus(appointment.status))
        if status_count:
            counts[status_count] += 1
        demand[demand_key(session, appointment.created_at, appointment.channel)]["requests"] += 1

    for entry in facts.waitlist:
        session = sessions.get(entry.session_id)
        if session is None:
            continue
        waiting[session.id].append(entry)
        key = (*_session_key(session).values(), session.level_id, entry.channel)
        days[key]["waitlist_joined"] += 1
        if entry.status == WaitlistStatus.ACCEPTED:
            days[key]["waitlist_accepted"] += 1
        demand[demand_key(session, entry.created_at, entry.channel)]["waitlist_joins"] += 1

    for session_id, appointments in by_session.items():
        session = sessions[session_id]
        sold_out = sellout_instant(session.remote_capacity, appointments)
        if sold_out is not None:
            demand[demand_key(session, sold_out, NO_CHANNEL)]["sellouts"] += 1

    # Attempts are counted by booking per local hour already.
    for attempt in facts.attempts:
        session = sessions.get(attempt.session_id)
        if session is None:
            continue
        counts = demand[local_demand_key(session, attempt.day, attempt.hour, attempt.channel)]
        counts["attempts"] += attempt.attempts
        if attempt.outcome == ATTEMPT_SOLD_OUT:
            counts["sold_out_refusals"] += attempt.attempts
        elif attempt.outcome != ATTEMPT_BOOKED:
            counts["other_refusals"] += attempt.attempts

    out.day_rows = _rows(days, day_keys, base)
    out.session_rows = [
        {**base, **_session_row(item, by_session[item.id], waiting[item.id])}
        for item in facts.sessions
        if not item.stopped
    ]
    out.demand_rows = _rows(demand, demand_keys, base)

    waits = _counter(WAIT_COUNTS)
    for visit in facts.visits:
        session = sessions.get(visit.session_id)
        if session is None:
            continue
        _, hour = local_hour(visit.checked_in_at, tz)
        counts = waits[(hour, *_session_key(session).values())]
        counts["visits"] += 1
        if visit.called_at is not None:
            counts["called"] += 1
            counts["wait_seconds"] += max(
                0, int((visit.called_at - visit.checked_in_at).total_seconds())
            )
            if visit.finished_at is not None:
                counts["finished"] += 1
                counts["consult_seconds"] += max(
                    0, int((visit.finished_at - visit.called_at).total_seconds())
                )
    out.wait_rows = _rows(waits, ("hour", "campus_id", "department_id", "doctor_id"), base)

    money = _counter(MONEY_COUNTS)
    for moved in facts.money:
        session = sessions.get(moved.session_id)
        if session is None:
            continue
        money_day, _ = local_hour(moved.at, tz)
        key = (
            money_day,
            *_session_key(session).values(),
            session.level_id,
            moved.channel,
            moved.provider,
        )
        counts = money[key]
        if moved.refund:
            counts["refunds"] += 1
            counts["refund_fen"] += moved.amount_fen
        else:
            counts["payments"] += 1
            counts["paid_fen"] += moved.amount_fen
    money_keys = (
        "money_day",
        "campus_id",
        "department_id",
        "doctor_id",
        "level_id",
        "channel",
        "provider",
    )
    out.money_rows = _rows(money, money_keys, base)
    return out


# --- shaping a report from grouped rows ---------------------------------------------------


class ColumnKind(StrEnum):
    TEXT = "text"
    COUNT = "count"
    RATE = "rate"  # a fraction 0..1, shown as a percentage
    MINUTES = "minutes"
    FEN = "fen"
    DATE = "date"


@dataclass(frozen=True, slots=True)
class ReportColumn:
    key: str
    kind: ColumnKind = ColumnKind.COUNT


@dataclass
class ReportTable:
    name: ReportName
    columns: tuple[ReportColumn, ...]
    rows: list[dict[str, Any]]
    totals: dict[str, Any]


def rate(part: int, whole: int) -> float | None:
    """part / whole rounded to four places; None when there is nothing to divide by."""
    return round(part / whole, 4) if whole else None


def minutes(seconds: int, count: int) -> float | None:
    return round(seconds / count / 60, 1) if count else None


def _sum(rows: Iterable[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, int]:
    totals = dict.fromkeys(keys, 0)
    for row in rows:
        for key in keys:
            totals[key] += int(row.get(key) or 0)
    return totals


def kept(row: Mapping[str, Any]) -> int:
    """Appointments still holding their place (or that used it): made less given back."""
    return int(row["made"]) - int(row["cancelled"]) - int(row["expired"])


def bookings_by_channel(grouped: Sequence[Mapping[str, Any]]) -> ReportTable:
    """`grouped`: per channel and level, the sums of made, cancelled, expired, no_show,
    checked_in, completed (report_day)."""
    rows = []
    for row in grouped:
        rows.append(
            {
                "channel": row["channel"],
                "level": row["level"],
                "made": int(row["made"]),
                "kept": kept(row),
                "cancelled": int(row["cancelled"]),
                "expired": int(row["expired"]),
                "attended": int(row["checked_in"]) + int(row["completed"]),
                "no_show": int(row["no_show"]),
            }
        )
    rows.sort(key=lambda r: (-r["made"], r["channel"], r["level"]))
    columns = (
        ReportColumn("channel", ColumnKind.TEXT),
        ReportColumn("level", ColumnKind.TEXT),
        ReportColumn("made"),
        ReportColumn("kept"),
        ReportColumn("cancelled"),
        ReportColumn("expired"),
        ReportColumn("attended"),
        ReportColumn("no_show"),
    )
    totals = _sum(rows, ("made", "kept", "cancelled", "expired", "attended", "no_show"))
    return ReportTable(ReportName.BOOKINGS_BY_CHANNEL, columns, rows, totals)


HEAT_COUNTS = (
    "attempts",
    "sold_out_refusals",
    "other_refusals",
    "requests",
    "waitlist_joins",
    "sellouts",
)


def _heat_row(row: Mapping[str, Any]) -> dict[str, Any]:
    counts = {key: int(row[key]) for key in HEAT_COUNTS}
    return {
        "department": row["department"],
        "weekday": int(row["weekday"]),
        "hour": int(row["hour"]),
        "attempts": counts["attempts"],
        "booked_attempts": counts["attempts"]
        - counts["sold_out_refusals"]
        - counts["other_refusals"],
        "sold_out_refusals": counts["sold_out_refusals"],
        "other_refusals": counts["other_refusals"],
        "sold_out_share": rate(counts["sold_out_refusals"], counts["attempts"]),
        "requests": counts["requests"],
        "waitlist_joins": counts["waitlist_joins"],
        "sellouts": counts["sellouts"],
    }


def demand_heatmap(grouped: Sequence[Mapping[str, Any]]) -> ReportTable:
    """`grouped`: per department, weekday (0 = Monday) and hour, the sums of attempts,
    sold_out_refusals, other_refusals, requests, waitlist_joins and sellouts
    (report_demand). An attempt is a booking POST a booking rule answered: booked (a place
    taken) or refused; the sell-out share is the attempts refused as sold out ÷ attempts."""
    rows = [_heat_row(row) for row in grouped]
    rows.sort(key=lambda r: (r["department"], r["weekday"], r["hour"]))
    columns = (
        ReportColumn("department", ColumnKind.TEXT),
        ReportColumn("weekday"),
        ReportColumn("hour"),
        ReportColumn("attempts"),
        ReportColumn("booked_attempts"),
        ReportColumn("sold_out_refusals"),
        ReportColumn("other_refusals"),
        ReportColumn("sold_out_share", ColumnKind.RATE),
        ReportColumn("requests"),
        ReportColumn("waitlist_joins"),
        ReportColumn("sellouts"),
    )
    summed = _sum(rows, ("booked_attempts", *HEAT_COUNTS))
    totals: dict[str, Any] = {
        "attempts": summed["attempts"],
        "booked_attempts": summed["booked_attempts"],
        "sold_out_refusals": summed["sold_out_refusals"],
        "other_refusals": summed["other_refusals"],
        "sold_out_share": rate(summed["sold_out_refusals"], summed["attempts"]),
        "requests": summed["requests"],
        "waitlist_joins": summed["waitlist_joins"],
        "sellouts": summed["sellouts"],
    }
    return ReportTable(ReportName.DEMAND_HEATMAP, columns, rows, totals)


def heat_grid(rows: Sequence[Mapping[str, Any]], value: str = "requests") -> list[list[int]]:
    """7 × 24 sums of `value` (weekday × hour) over every department in `rows`."""
    grid = [[0] * 24 for _ in range(7)]
    for row in rows:
        grid[int(row["weekday"])][int(row["hour"])] += int(row[value])
    return grid


def utilisation(
    appointments: Sequence[Mapping[str, Any]],
    places: Mapping[str, Mapping[str, Any]],
    *,
    with_capacity: bool,
) -> ReportTable:
    """Per department: places offered, taken and kept, still held, unused, given back.
    `appointments`: per department the sums of report_day; `places`: per department the
    sums of report_places. Without capacity (a channel filter: places are not per channel)
    the places and unused columns are None."""
    rows = []
    departments = {row["department"] for row in appointments} | set(places)
    by_department = {row["department"]: row for row in appointments}
    for department in sorted(departments):
        row = by_department.get(department)
        made = int(row["made"]) if row else 0
        returned = (int(row["cancelled"]) + int(row["expired"])) if row else 0
        used = made - returned
        held = int(row["held"]) if row else 0
        capacity = int(places[department]["capacity"]) if department in places else 0
        rows.append(
            {
                "department": department,
                "places": capacity if with_capacity else None,
                "used": used,
                "held": held,
                "unused": max(0, capacity - used) if with_capacity else None,
                "returned": returned,
                "utilisation": rate(used, capacity) if with_capacity else None,
            }
        )
    columns = (
        ReportColumn("department", ColumnKind.TEXT),
        ReportColumn("places"),
        ReportColumn("used"),
        ReportColumn("held"),
        ReportColumn("unused"),
        ReportColumn("returned"),
        ReportColumn("utilisation", ColumnKind.RATE),
    )
    totals: dict[str, Any] = _sum(rows, ("used", "held", "returned"))
    if with_capacity:
        totals.update(_sum(rows, ("places", "unused")))
        totals["utilisation"] = rate(totals["used"], totals["places"])
    return ReportTable(ReportName.UTILISATION, columns, rows, totals)


def _no_show_row(department: str, row: Mapping[str, Any]) -> dict[str, Any]:
    made, cancelled, no_show = int(row["made"]), int(row["cancelled"]), int(row["no_show"])
    attended = int(row["checked_in"]) + int(row["completed"])
    joined, accepted = int(row["waitlist_joined"]), int(row["waitlist_accepted"])
    return {
        "department": department,
        "made": made,
        "cancelled": cancelled,
        "cancellation_rate": rate(cancelled, made),
        "attended": attended,
        "no_show": no_show,
        "no_show_rate": rate(no_show, attended + no_show),
        "waitlist_joined": joined,
        "waitlist_accepted": accepted,
        "waitlist_success_rate": rate(accepted, joined),
    }


NO_SHOW_SUMS = (
    "made",
    "cancelled",
    "no_show",
    "checked_in",
    "completed",
    "waitlist_joined",
    "waitlist_accepted",
)


def no_shows(grouped: Sequence[Mapping[str, Any]]) -> ReportTable:
    """`grouped`: per department the sums of report_day."""
    rows = [_no_show_row(row["department"], row) for row in grouped]
    rows.sort(key=lambda r: r["department"])
    columns = (
        ReportColumn("department", ColumnKind.TEXT),
        ReportColumn("made"),
        ReportColumn("cancelled"),
        ReportColumn("cancellation_rate", ColumnKind.RATE),
        ReportColumn("attended"),
        ReportColumn("no_show"),
        ReportColumn("no_show_rate", ColumnKind.RATE),
        ReportColumn("waitlist_joined"),
        ReportColumn("waitlist_accepted"),
        ReportColumn("waitlist_success_rate", ColumnKind.RATE),
    )
    summed = _sum(grouped, NO_SHOW_SUMS)
    totals = _no_show_row("", summed)
    del totals["department"]
    return ReportTable(ReportName.NO_SHOWS, columns, rows, totals)


def _wait_row(department: str, hour: int | None, row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "department": department,
        "hour": hour,
        "visits": int(row["visits"]),
        "called": int(row["called"]),
        "wait_minutes": minutes(int(row["wait_seconds"]), int(row["called"])),
        "finished": int(row["finished"]),
        "consult_minutes": minutes(int(row["consult_seconds"]), int(row["finished"])),
    }


def waits(grouped: Sequence[Mapping[str, Any]]) -> ReportTable:
    """`grouped`: per department and check-in hour the sums of report_waits."""
    rows = [_wait_row(row["department"], int(row["hour"]), row) for row in grouped]
    rows.sort(key=lambda r: (r["department"], r["hour"]))
    columns = (
        ReportColumn("department", ColumnKind.TEXT),
        ReportColumn("hour"),
        ReportColumn("visits"),
        ReportColumn("called"),
        ReportColumn("wait_minutes", ColumnKind.MINUTES),
        ReportColumn("finished"),
        ReportColumn("consult_minutes", ColumnKind.MINUTES),
    )
    totals = _wait_row("", None, _sum(grouped, WAIT_COUNTS))
    del totals["department"], totals["hour"]
    return ReportTable(ReportName.WAITS, columns, rows, totals)


def waits_by_hour(
    rows: Sequence[Mapping[str, Any]],
) -> list[tuple[int, float | None, float | None]]:
    """(hour, average wait, average consultation) over every department, hour by hour."""
    per_hour: dict[int, dict[str, int]] = {}
    for row in rows:
        counts = per_hour.setdefault(int(row["hour"]), dict.fromkeys(WAIT_COUNTS, 0))
        for key in WAIT_COUNTS:
            counts[key] += int(row.get(key) or 0)
    return [
        (
            hour,
            minutes(c["wait_seconds"], c["called"]),
            minutes(c["consult_seconds"], c["finished"]),
        )
        for hour, c in sorted(per_hour.items())
    ]


def period_of(day: date, filters: ReportFilters) -> date:
    """The bucket a money day falls in: the day itself for short ranges, else its month."""
    if (filters.date_to - filters.date_from).days + 1 <= DAILY_UP_TO_DAYS:
        return day
    return day.replace(day=1)


def revenue(grouped: Sequence[Mapping[str, Any]], filters: ReportFilters) -> ReportTable:
    """`grouped`: per money day and provider the sums of report_money."""
    buckets: dict[tuple[date, str], dict[str, int]] = {}
    for row in grouped:
        key = (period_of(row["money_day"], filters), str(row["provider"]))
        counts = buckets.setdefault(key, dict.fromkeys(MONEY_COUNTS, 0))
        for name in MONEY_COUNTS:
            counts[name] += int(row[name])
    rows = [
        {
            "period": period,
            "provider": provider,
            **counts,
            "net_fen": counts["paid_fen"] - counts["refund_fen"],
        }
        for (period, provider), counts in sorted(buckets.items())
    ]
    columns = (
        ReportColumn("period", ColumnKind.DATE),
        ReportColumn("provider", ColumnKind.TEXT),
        ReportColumn("payments"),
        ReportColumn("paid_fen", ColumnKind.FEN),
        ReportColumn("refunds"),
        ReportColumn("refund_fen", ColumnKind.FEN),
        ReportColumn("net_fen", ColumnKind.FEN),
    )
    totals = _sum(rows, (*MONEY_COUNTS, "net_fen"))
    return ReportTable(ReportName.REVENUE, columns, rows, totals)


def revenue_by_period(rows: Sequence[Mapping[str, Any]]) -> list[tuple[date, int, int]]:
    """(period, paid fen, refunded fen) over every provider, in time order."""
    per: dict[date, list[int]] = {}
    for row in rows:
        sums = per.setdefault(row["period"], [0, 0])
        sums[0] += int(row["paid_fen"])
        sums[1] += int(row["refund_fen"])
    return [(period, paid, refunded) for period, (paid, refunded) in sorted(per.items())]


def busiest(rows: Sequence[dict[str, Any]], limit: int = HEAT_TABLE_ROWS) -> list[dict[str, Any]]:
    """The heat map's `limit` busiest cells (department × weekday × hour): most attempts
    first, then most requests, sell-outs and waitlist joins. A page shows these; a year of a
    large hospital has thousands of cells, which only the files hold whole."""
    ordered = sorted(
        rows,
        key=lambda r: (
            -int(r["attempts"]),
            -int(r["requests"]),
            -int(r["sellouts"]),
            -int(r["waitlist_joins"]),
            str(r["department"]),
            int(r["weekday"]),
            int(r["hour"]),
        ),
    )
    return ordered[:limit]


def _observed(counts: Mapping[int, int]) -> list[int]:
    """A histogram (minutes → sessions) back into its observations, in order."""
    return [value for value, count in sorted(counts.items()) for _ in range(int(count))]


def sellout_figures(counts: Mapping[int, int]) -> dict[str, int | None]:
    """The fastest, median (lower median) and 90th percentile (nearest rank) of a histogram
    of sell-out minutes (minutes → sessions): each a real session's figure."""
    observed = _observed(counts)
    return {
        "fastest_minutes": observed[0] if observed else None,
        "median_minutes": median(observed),
        "p90_minutes": percentile(observed, SELLOUT_PERCENTILE),
    }


def _sellout_row(
    department: str | None, sessions: int, sold_out: int, figures: Mapping[str, Any]
) -> dict[str, Any]:
    def whole(key: str) -> int | None:
        value = figures.get(key)
        return None if value is None else int(value)

    return {
        "department": department,
        "sessions": sessions,
        "sold_out": sold_out,
        "sold_out_rate": rate(sold_out, sessions),
        "fastest_minutes": whole("fastest_minutes"),
        "median_minutes": whole("median_minutes"),
        "p90_minutes": whole("p90_minutes"),
    }


def sell_outs(
    sessions: Sequence[Mapping[str, Any]], minutes_seen: Sequence[Mapping[str, Any]]
) -> ReportTable:
    """Per department: sessions (not stopped), those that sold every remote place, and the
    minutes from the release to the sell-out — the fastest, the median (lower median) and
    the 90th percentile (nearest rank), each a real session's figure, as the quota advice
    reads them. `sessions`: per department the count and the sold-out count
    (report_session); `minutes_seen`: per department and `minutes`, the number of sold-out
    sessions with that `sellout_minutes` (a histogram: fewer rows than sessions)."""
    per_department: dict[str, dict[int, int]] = defaultdict(dict)
    overall: dict[int, int] = defaultdict(int)
    for row in minutes_seen:
        value, count = int(row["minutes"]), int(row["count"])
        held = per_department[row["department"]]
        held[value] = held.get(value, 0) + count
        overall[value] += count
    figures = [
        {**row, **sellout_figures(per_department.get(row["department"], {}))} for row in sessions
    ]
    return sell_outs_of(figures, sellout_figures(overall))


def sell_outs_of(grouped: Sequence[Mapping[str, Any]], overall: Mapping[str, Any]) -> ReportTable:
    """The sell-out table from figures already computed (by `sellout_figures`, or by the
    database's `percentile_disc`, which picks the same sessions): `grouped` per department
    with sessions, sold_out and the three minutes; `overall` the three minutes over every
    session. Rows run from the fastest median to the slowest; departments that never sold
    out last."""
    rows = [
        _sellout_row(row["department"], int(row["sessions"]), int(row["sold_out"]), row)
        for row in grouped
    ]
    rows.sort(
        key=lambda r: (
            r["median_minutes"] is None,
            r["median_minutes"] or 0,
            r["department"],
        )
    )
    columns = (
        ReportColumn("department", ColumnKind.TEXT),
        ReportColumn("sessions"),
        ReportColumn("sold_out"),
        ReportColumn("sold_out_rate", ColumnKind.RATE),
        ReportColumn("fastest_minutes", ColumnKind.MINUTES),
        ReportColumn("median_minutes", ColumnKind.MINUTES),
        ReportColumn("p90_minutes", ColumnKind.MINUTES),
    )
    summed = _sum(rows, ("sessions", "sold_out"))
    totals = _sellout_row(None, summed["sessions"], summed["sold_out"], overall)
    del totals["department"]
    return ReportTable(ReportName.SELL_OUTS, columns, rows, totals)
