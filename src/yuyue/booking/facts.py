"""What the booking path needs to know about a session and the policy in force, loaded in
one query each and kept in memory for a few seconds.

A cached "open" can never book a stopped clinic: the claim re-checks `is_open` on the pool
row it locks. Everything else here (names, fee, age and sex rules, policy) changes only
by a scheduler's hand, and this process forgets its copy at once when it makes the change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import rules
from yuyue.kit.cache import TtlCache
from yuyue.kit.errors import NotFound
from yuyue.scheduling.enums import Period, SessionStatus
from yuyue.scheduling.models import (
    BookingPolicy,
    ClinicSession,
    Department,
    Doctor,
    Hospital,
    RegistrationLevel,
)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: uuid.UUID
    hospital_id: uuid.UUID
    date: date
    period: Period
    start_time: time
    end_time: time
    department_id: uuid.UUID
    doctor_id: uuid.UUID | None
    level_id: uuid.UUID
    fee_fen: int
    status: SessionStatus
    department_name: str
    department_name_en: str
    location: str
    location_en: str
    min_age: int | None
    max_age: int | None
    sex_restriction: str | None
    doctor_name: str | None
    doctor_title: str
    doctor_title_en: str
    level_name: str
    level_name_en: str
    timezone: str

    @property
    def facts(self) -> rules.SessionFacts:
        return rules.SessionFacts(
            id=self.id,
            date=self.date,
            start_time=self.start_time,
            end_time=self.end_time,
            department_id=self.department_id,
            doctor_id=self.doctor_id,
            status=self.status,
            timezone=self.timezone,
        )


SessionInfoCache = TtlCache[uuid.UUID, SessionInfo]
PolicyCache = TtlCache[tuple[uuid.UUID, uuid.UUID | None], rules.Policy]

_INFO_COLUMNS = (
    ClinicSession.id,
    ClinicSession.hospital_id,
    ClinicSession.date,
    ClinicSession.period,
    ClinicSession.start_time,
    ClinicSession.end_time,
    ClinicSession.department_id,
    ClinicSession.doctor_id,
    ClinicSession.level_id,
    ClinicSession.fee_fen,
    ClinicSession.status,
    Department.name,
    Department.name_en,
    Department.location,
    Department.location_en,
    Department.min_age_years,
    Department.max_age_years,
    Department.sex_restriction,
    Doctor.name,
    Doctor.title,
    Doctor.title_en,
    RegistrationLevel.name,
    RegistrationLevel.name_en,
    Hospital.timezone,
)


# A cache miss loads the facts of every session of the hospital from this many days before
# the one asked for to this many after: at the release peak bookings spread over hundreds
# of sessions, and one query for all of them beats one per session in every process.
_NEIGHBOURS_BEFORE = timedelta(days=1)
_NEIGHBOURS_AFTER = timedelta(days=21)


def _info_query() -> Select[*tuple[Any, ...]]:
    """A session's facts with its department, doctor, level and hospital."""
    return (
        select(*_INFO_COLUMNS)
        .join(Department, Department.id == ClinicSession.department_id)
        .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
        .join(RegistrationLevel, RegistrationLevel.id == ClinicSession.level_id)
        .join(Hospital, Hospital.id == ClinicSession.hospital_id)
    )


def _info(row: Sequence[Any]) -> SessionInfo:
    values = list(row)
    values[3] = Period(values[3])
    values[10] = SessionStatus(values[10])
    values[19] = values[19] or ""
    values[20] = values[20] or ""
    return SessionInfo(*values)


async def session_info(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    session_id: uuid.UUID,
    cache: SessionInfoCache | None = None,
) -> SessionInfo:
    cached = cache.get(session_id) if cache is not None else None
    if cached is not None and cached.hospital_id == hospital_id:
        return cached
    query = _info_query()
    row = (
        await session.execute(
            query.where(ClinicSession.id == session_id, ClinicSession.hospital_id == hospital_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(what="session")
    info = _info(row)
    if cache is not None:
        cache.put(session_id, info)
        neighbours = await session.execute(
            query.where(
                ClinicSession.hospital_id == hospital_id,
                ClinicSession.date >= info.date - _NEIGHBOURS_BEFORE,
                ClinicSession.date <= info.date + _NEIGHBOURS_AFTER,
            ).limit(cache.limit // 2)
        )
        for other in neighbours:
            cache.put(other[0], _info(other))
    return info


async def warm_session_infos(
    session: AsyncSession, *, cache: SessionInfoCache, around: date
) -> int:
    """Loads the facts of every hospital's sessions near `around` into `cache` (at start-up,
    so the first flood of bookings finds them in memory). Returns how many."""
    rows = await session.execute(
        _info_query()
        .where(
            ClinicSession.date >= around - _NEIGHBOURS_BEFORE,
            ClinicSession.date <= around + _NEIGHBOURS_AFTER,
        )
        .limit(cache.limit // 2)
    )
    count = 0
    for row in rows:
        cache.put(row[0], _info(row))
        count += 1
    return count


def policy_from_row(row: BookingPolicy | None) -> rules.Policy:
    if row is None:
        return rules.Policy()
    return rules.Policy(**{f: getattr(row, f) for f in rules.Policy.__dataclass_fields__})


async def load_policy(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    department_id: uuid.UUID | None,
    cache: PolicyCache | None = None,
) -> rules.Policy:
    """The department's override if it has one, else the hospital's rules."""
    key = (hospital_id, department_id)
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        return cached
    rows = (
        await session.scalars(
            select(BookingPolicy).where(
                BookingPolicy.hospital_id == hospital_id,
                (BookingPolicy.department_id == department_id)
                | BookingPolicy.department_id.is_(None),
            )
        )
    ).all()
    chosen = next((r for r in rows if r.department_id is not None), None) or next(iter(rows), None)
    policy = policy_from_row(chosen)
    if cache is not None:
        cache.put(key, policy)
    return policy
