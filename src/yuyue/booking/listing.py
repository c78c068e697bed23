"""Sessions and slots as a channel sees them: the places left in its pools, and whether it
can book them now or when it can (`booking.rules.bookability`, the window booking enforces).
Booking's read side: the JSON API (through the read path's cache, `booking/readpath.py`),
the patient pages and the desk all list through here, so they always say the same.

This is the availability read path, written for the release peak: one SQL statement per
list, built once and executed with parameters (no ORM objects, no per-call statement
construction), and the hospital's time zone and policies from a short-lived cache.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import BindParameter, Select, String, bindparam, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from yuyue.booking import rules as booking_rules
from yuyue.booking.facts import policy_from_row
from yuyue.kit.cache import TtlCache
from yuyue.kit.db import Database
from yuyue.kit.errors import NotFound
from yuyue.scheduling.enums import Channel, Period, SessionStatus
from yuyue.scheduling.models import (
    BookingPolicy,
    ClinicSession,
    Department,
    Doctor,
    Hospital,
    RegistrationLevel,
    SlotPool,
    TimeSlot,
)
from yuyue.scheduling.rules import pools_for_channel

DEFAULT_TIMEZONE = "Asia/Shanghai"


# --- the hospital's rules -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HospitalRules:
    """What every listing of a hospital needs besides the sessions themselves."""

    timezone: str
    default: booking_rules.Policy
    by_department: dict[uuid.UUID, booking_rules.Policy]

    def policy_for(self, department_id: uuid.UUID) -> booking_rules.Policy:
        return self.by_department.get(department_id, self.default)


RulesCache = TtlCache[uuid.UUID, HospitalRules]

_POLICY_FIELDS = tuple(booking_rules.Policy.__dataclass_fields__)
_RULES = (
    select(
        Hospital.timezone,
        BookingPolicy.id,
        BookingPolicy.department_id,
        *(getattr(BookingPolicy, name) for name in _POLICY_FIELDS),
    )
    .select_from(Hospital)
    .outerjoin(BookingPolicy, BookingPolicy.hospital_id == Hospital.id)
    .where(Hospital.id == bindparam("hospital"))
)


async def hospital_rules(
    conn: AsyncConnection, hospital_id: uuid.UUID, *, cache: RulesCache | None = None
) -> HospitalRules:
    """Time zone, policy and department overrides in one statement (or from `cache`)."""
    cached = cache.get(hospital_id) if cache is not None else None
    if cached is not None:
        return cached
    timezone = DEFAULT_TIMEZONE
    default = booking_rules.Policy()
    by_department: dict[uuid.UUID, booking_rules.Policy] = {}
    for row in await conn.execute(_RULES, {"hospital": hospital_id}):
        timezone = row[0] or DEFAULT_TIMEZONE
        if row[1] is None:  # the hospital has no policy row: the defaults
            continue
        policy = booking_rules.Policy(**dict(zip(_POLICY_FIELDS, row[3:], strict=True)))
        if row[2] is None:
            default = policy
        else:
            by_department[row[2]] = policy
    found = HospitalRules(timezone, default, by_department)
    if cache is not None:
        cache.put(hospital_id, found)
    return found


async def policies(
    session: AsyncSession, hospital_id: uuid.UUID
) -> tuple[booking_rules.Policy, dict[uuid.UUID, booking_rules.Policy]]:
    """The hospital's policy and the departments' overrides."""
    rows = (
        await session.scalars(select(BookingPolicy).where(BookingPolicy.hospital_id == hospital_id))
    ).all()
    default = policy_from_row(next((r for r in rows if r.department_id is None), None))
    return default, {r.department_id: policy_from_row(r) for r in rows if r.department_id}


def read_connection(db: Database) -> Any:
    """A plain read connection (no ORM session) for the lean statements below; it rolls
    back when the block ends."""
    return db.read_engine.connect()


# --- what a listing holds ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepartmentNames:
    id: uuid.UUID
    name: str
    name_en: str
    location: str
    location_en: str


@dataclass(frozen=True, slots=True)
class DoctorNames:
    id: uuid.UUID
    name: str
    title: str
    title_en: str


@dataclass(frozen=True, slots=True)
class LevelNames:
    code: str
    name: str
    name_en: str
    fee_fen: int


@dataclass(frozen=True, slots=True)
class ListedSession:
    id: uuid.UUID
    date: date
    period: Period
    start_time: time
    end_time: time
    status: SessionStatus
    stop_reason: str | None
    is_extra: bool
    capacity: int
    fee_fen: int
    room: str
    doctor_id: uuid.UUID | None
    department: DepartmentNames
    doctor: DoctorNames | None
    level: LevelNames
    # Places left in the channel's pools (0 once stopped).
    remaining: int
    window: booking_rules.BookingWindow
    bookability: booking_rules.Bookability

    @property
    def bookable_now(self) -> bool:
        return self.bookability.bookable_now

    @property
    def opens_at(self) -> datetime | None:
        return self.bookability.opens_at


@dataclass(frozen=True, slots=True)
class ListedSlot:
    id: uuid.UUID
    start_time: time
    end_time: time
    remaining: int
    bookability: booking_rules.Bookability

    @property
    def bookable_now(self) -> bool:
        return self.bookability.bookable_now

    @property
    def opens_at(self) -> datetime | None:
        return self.bookability.opens_at


@dataclass(frozen=True, slots=True)
class SlotListing:
    session_id: uuid.UUID
    # The session's own answer (its places summed over the slots).
    bookability: booking_rules.Bookability
    slots: list[ListedSlot]


# --- the statements, built once ---------------------------------------------------------------

_POOLS: BindParameter[Any] = bindparam("pools", expanding=True)
_SESSION_REMAINING = (
    select(func.coalesce(func.sum(SlotPool.capacity - SlotPool.taken), 0))
    .where(
        SlotPool.session_id == ClinicSession.id,
        SlotPool.pool.in_(_POOLS),
        SlotPool.is_open.is_(True),
    )
    .scalar_subquery()
)
_SLOT_REMAINING = (
    select(func.coalesce(func.sum(SlotPool.capacity - SlotPool.taken), 0))
    .where(SlotPool.slot_id == TimeSlot.id, SlotPool.pool.in_(_POOLS), SlotPool.is_open.is_(True))
    .scalar_subquery()
)
_SESSION_COLUMNS = (
    ClinicSession.id,
    ClinicSession.date,
    ClinicSession.period,
    ClinicSession.start_time,
    ClinicSession.end_time,
    ClinicSession.status,
    ClinicSession.stop_reason,
    ClinicSession.is_extra,
    ClinicSession.capacity,
    ClinicSession.fee_fen,
    ClinicSession.room,
    ClinicSession.department_id,
    Department.name,
    Department.name_en,
    Department.location,
    Department.location_en,
    ClinicSession.doctor_id,
    Doctor.name,
    Doctor.title,
    Doctor.title_en,
    RegistrationLevel.code,
    RegistrationLevel.name,
    RegistrationLevel.name_en,
    RegistrationLevel.fee_fen,
    _SESSION_REMAINING,
)
# One statement per combination of filters, so each keeps its own index-friendly shape.
_SESSION_STATEMENTS: dict[tuple[bool, bool, bool], Select[Any]] = {}


def _sessions_statement(*, department: bool, doctor: bool, session: bool) -> Select[Any]:
    flags = (department, doctor, session)
    statement = _SESSION_STATEMENTS.get(flags)
    if statement is None:
        statement = (
            select(*_SESSION_COLUMNS)
            .join(Department, Department.id == ClinicSession.department_id)
            .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
            .join(RegistrationLevel, RegistrationLevel.id == ClinicSession.level_id)
            .where(
                ClinicSession.hospital_id == bindparam("hospital"),
                ClinicSession.date >= bindparam("start"),
                ClinicSession.date <= bindparam("end"),
            )
            .order_by(
                ClinicSession.date, ClinicSession.start_time, Department.sort_order, Doctor.code
            )
        )
        if department:
            statement = statement.where(ClinicSession.department_id == bindparam("department"))
        if doctor:
            statement = statement.where(ClinicSession.doctor_id == bindparam("doctor"))
        if session:
            statement = statement.where(ClinicSession.id == bindparam("session"))
        _SESSION_STATEMENTS[flags] = statement
    return statement


_SLOTS = (
    select(
        ClinicSession.status,
        ClinicSession.date,
        ClinicSession.start_time,
        ClinicSession.end_time,
        ClinicSession.department_id,
        ClinicSession.doctor_id,
        TimeSlot.id,
        TimeSlot.start_time,
        TimeSlot.end_time,
        _SLOT_REMAINING,
    )
    .select_from(ClinicSession)
    .outerjoin(TimeSlot, TimeSlot.session_id == ClinicSession.id)
    .where(
        ClinicSession.id == bindparam("session"), ClinicSession.hospital_id == bindparam("hospital")
    )
    .order_by(TimeSlot.ordinal)
)


_RANGE_SESSIONS = (
    select(*_SESSION_COLUMNS[:-1])
    .join(Department, Department.id == ClinicSession.department_id)
    .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
    .join(RegistrationLevel, RegistrationLevel.id == ClinicSession.level_id)
    .where(
        ClinicSession.hospital_id == bindparam("hospital"),
        ClinicSession.date >= bindparam("start"),
        ClinicSession.date <= bindparam("end"),
    )
    .order_by(ClinicSession.date, ClinicSession.start_time, Department.sort_order, Doctor.code)
)
# The ids as stored (text on SQLite), turned into UUIDs through `_ID_CACHE`: a board reads
# thousands of slot rows a second, and parsing their ids again was most of its cost.
_RANGE_SLOTS = (
    select(
        type_coerce(TimeSlot.session_id, String),
        type_coerce(TimeSlot.id, String),
        TimeSlot.start_time,
        TimeSlot.end_time,
        _SLOT_REMAINING,
    )
    .join(ClinicSession, ClinicSession.id == TimeSlot.session_id)
    .where(
        ClinicSession.hospital_id == bindparam("hospital"),
        ClinicSession.date >= bindparam("start"),
        ClinicSession.date <= bindparam("end"),
    )
    .order_by(TimeSlot.session_id, TimeSlot.ordinal)
)


# --- the reads ----------------------------------------------------------------------------------


def _listed(
    row: Sequence[Any],
    remaining: int,
    *,
    rules: HospitalRules,
    channel: Channel,
    now: datetime,
) -> ListedSession:
    """One session from its row (the `_SESSION_COLUMNS` before the places)."""
    status = SessionStatus(row[5])
    facts = booking_rules.SessionFacts(
        row[0], row[1], row[3], row[4], row[11], row[16], status, rules.timezone
    )
    policy = rules.policy_for(row[11])
    left = remaining if status is SessionStatus.OPEN else 0
    return ListedSession(
        id=row[0],
        date=row[1],
        period=Period(row[2]),
        start_time=row[3],
        end_time=row[4],
        status=status,
        stop_reason=row[6],
        is_extra=bool(row[7]),
        capacity=row[8],
        fee_fen=row[9],
        room=row[10] or "",
        doctor_id=row[16],
        department=DepartmentNames(row[11], row[12], row[13], row[14], row[15]),
        doctor=DoctorNames(row[16], row[17], row[18] or "", row[19] or "")
        if row[16] is not None
        else None,
        level=LevelNames(row[20], row[21], row[22], row[23]),
        remaining=left,
        window=booking_rules.booking_window(policy, facts),
        bookability=booking_rules.bookability(policy, facts, channel=channel, now=now, places=left),
    )


SlotRow = tuple[uuid.UUID, time, time, int]


def _slot_listing(
    facts: booking_rules.SessionFacts,
    slots: Sequence[SlotRow],
    *,
    rules: HospitalRules,
    channel: Channel,
    now: datetime,
) -> SlotListing:
    session = booking_rules.bookability(
        rules.policy_for(facts.department_id),
        facts,
        channel=channel,
        now=now,
        places=sum(s[3] for s in slots),
    )
    return SlotListing(
        facts.id,
        session,
        [
            ListedSlot(slot_id, start, end, left, session.for_places(left))
            for slot_id, start, end, left in slots
        ],
    )


async def list_sessions(
    conn: AsyncConnection,
    *,
    hospital_id: uuid.UUID,
    rules: HospitalRules,
    channel: Channel,
    start: date,
    end: date,
    now: datetime,
    department_id: uuid.UUID | None = None,
    doctor_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
) -> list[ListedSession]:
    statement = _sessions_statement(
        department=department_id is not None,
        doctor=doctor_id is not None,
        session=session_id is not None,
    )
    params: dict[str, Any] = {
        "hospital": hospital_id,
        "start": start,
        "end": end,
        "pools": list(pools_for_channel(channel)),
    }
    if department_id is not None:
        params["department"] = department_id
    if doctor_id is not None:
        params["doctor"] = doctor_id
    if session_id is not None:
        params["session"] = session_id
    return [
        _listed(row, int(row[24] or 0), rules=rules, channel=channel, now=now)
        for row in await conn.execute(statement, params)
    ]


async def list_slots(
    conn: AsyncConnection,
    *,
    hospital_id: uuid.UUID,
    rules: HospitalRules,
    channel: Channel,
    session_id: uuid.UUID,
    now: datetime,
) -> SlotListing:
    """The session's time slots with the places left for the channel, in order."""
    params = {
        "session": session_id,
        "hospital": hospital_id,
        "pools": list(pools_for_channel(channel)),
    }
    rows = (await conn.execute(_SLOTS, params)).all()
    if not rows:
        raise NotFound(what="session")
    first = rows[0]
    facts = booking_rules.SessionFacts(
        session_id,
        first[1],
        first[2],
        first[3],
        first[4],
        first[5],
        SessionStatus(first[0]),
        rules.timezone,
    )
    slots = [(row[6], row[7], row[8], int(row[9] or 0)) for row in rows if row[6] is not None]
    return _slot_listing(facts, slots, rules=rules, channel=channel, now=now)


@dataclass(frozen=True, slots=True)
class RangeRead:
    """Every session of a hospital between two dates, with its slots and the places left in
    one channel's pools, read together: two statements answer every session list and slot
    list inside the range (the read path's board, `booking/readpath.py`)."""

    start: date
    end: date
    # Session rows in listing order, and by id.
    rows: list[Sequence[Any]]
    by_id: dict[uuid.UUID, Sequence[Any]]
    slots: dict[uuid.UUID, list[SlotRow]]

    def covers(self, start: date, end: date) -> bool:
        return self.start <= start and end <= self.end

    def sessions(
        self,
        *,
        rules: HospitalRules,
        channel: Channel,
        now: datetime,
        start: date,
        end: date,
        department_id: uuid.UUID | None = None,
        doctor_id: uuid.UUID | None = None,
    ) -> list[ListedSession]:
        """What `list_sessions` answers for a question inside the range."""
        if not self.covers(start, end):
            raise ValueError("the question reaches outside the range read")
        return [
            _listed(
                row,
                sum(slot[3] for slot in self.slots.get(row[0], ())),
                rules=rules,
                channel=channel,
                now=now,
            )
            for row in self.rows
            if start <= row[1] <= end
            and (department_id is None or row[11] == department_id)
            and (doctor_id is None or row[16] == doctor_id)
        ]

    def slot_listing(
        self, session_id: uuid.UUID, *, rules: HospitalRules, channel: Channel, now: datetime
    ) -> SlotListing | None:
        """What `list_slots` answers, or None for a session outside the range."""
        row = self.by_id.get(session_id)
        if row is None:
            return None
        facts = booking_rules.SessionFacts(
            row[0], row[1], row[3], row[4], row[11], row[16], SessionStatus(row[5]), rules.timezone
        )
        return _slot_listing(
            facts, self.slots.get(session_id, []), rules=rules, channel=channel, now=now
        )


async def read_range(
    conn: AsyncConnection, *, hospital_id: uuid.UUID, channel: Channel, start: date, end: date
) -> RangeRead:
    params: dict[str, Any] = {"hospital": hospital_id, "start": start, "end": end}
    rows: list[Sequence[Any]] = list((await conn.execute(_RANGE_SESSIONS, params)).all())
    slots: dict[uuid.UUID, list[SlotRow]] = {}
    params["pools"] = list(pools_for_channel(channel))
    for session_id, slot_id, slot_start, slot_end, left in await conn.execute(_RANGE_SLOTS, params):
        slots.setdefault(_stored_id(session_id), []).append(
            (_stored_id(slot_id), slot_start, slot_end, int(left or 0))
        )
    return RangeRead(start, end, rows, {row[0]: row for row in rows}, slots)


_ID_CACHE: dict[Any, uuid.UUID] = {}


def _stored_id(raw: Any) -> uuid.UUID:
    """A UUID from an id as the database returned it (text or a UUID), parsed once."""
    found = _ID_CACHE.get(raw)
    if found is None:
        found = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
        if len(_ID_CACHE) >= 1_000_000:
            _ID_CACHE.clear()
        _ID_CACHE[raw] = found
    return found


async def listed_session(
    conn: AsyncConnection,
    *,
    hospital_id: uuid.UUID,
    rules: HospitalRules,
    channel: Channel,
    session_id: uuid.UUID,
    now: datetime,
) -> ListedSession:
    """One session as `list_sessions` shows it, or `not_found` outside the hospital."""
    found = await list_sessions(
        conn,
        hospital_id=hospital_id,
        rules=rules,
        channel=channel,
        start=date.min,
        end=date.max,
        now=now,
        session_id=session_id,
    )
    if not found:
        raise NotFound(what="session")
    return found[0]
