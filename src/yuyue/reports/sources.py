"""Reading what the other contexts recorded for one visit day, as the facts of
`reports.rules`. Read-only, and the one module of reports that touches another context's
tables (allow-listed in pyproject.toml): aggregation over every appointment of a day would
cost a public function per row otherwise. Every query starts from the day's clinic sessions
(`ix_clinic_session_hospital_date`) and reaches the rows of those sessions through their
session indexes, so a day costs the same whatever the size of the history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import demand as booking_demand
from yuyue.booking.models import Appointment
from yuyue.booking.waitlist.models import WaitlistEntry
from yuyue.payments.models import PaymentOrder, Refund
from yuyue.payments.states import RefundState
from yuyue.reports.rules import (
    AppointmentFact,
    AttemptFact,
    DayFacts,
    MoneyFact,
    SessionFact,
    VisitFact,
    WaitlistFact,
    release_instant,
)
from yuyue.scheduling.models import (
    BookingPolicy,
    Campus,
    ClinicSession,
    Department,
    Doctor,
    Hospital,
    RegistrationLevel,
    SlotPool,
)
from yuyue.scheduling.rules import ONSITE, RESERVED
from yuyue.scheduling.service import policy_values
from yuyue.visits.models import Visit

# Session ids per IN (...) list: well below SQLite's and asyncpg's parameter limits.
_CHUNK = 500
_LOCAL_POOLS = (ONSITE, RESERVED)


def _chunks(ids: Sequence[uuid.UUID]) -> list[Sequence[uuid.UUID]]:
    return [ids[start : start + _CHUNK] for start in range(0, len(ids), _CHUNK)]


async def hospital_ids(session: AsyncSession) -> list[uuid.UUID]:
    return list((await session.scalars(select(Hospital.id))).all())


async def hospital_timezone(session: AsyncSession, hospital_id: uuid.UUID) -> str:
    tz = await session.scalar(select(Hospital.timezone).where(Hospital.id == hospital_id))
    return tz or "Asia/Shanghai"


async def release_policies(
    session: AsyncSession, hospital_id: uuid.UUID
) -> tuple[tuple[int, time], dict[uuid.UUID, tuple[int, time]]]:
    """(days ahead, time) of the release: the hospital's, and the departments' overrides, as
    the booking policy says now (a sell-out is measured from today's rule)."""
    rows = (
        await session.execute(
            select(
                BookingPolicy.department_id,
                BookingPolicy.release_days_ahead,
                BookingPolicy.release_time,
            ).where(BookingPolicy.hospital_id == hospital_id)
        )
    ).all()
    defaults = policy_values(None)
    hospital = next(
        ((days, at) for department, days, at in rows if department is None),
        (int(defaults["release_days_ahead"]), defaults["release_time"]),
    )
    return hospital, {department: (days, at) for department, days, at in rows if department}


async def day_facts(session: AsyncSession, *, hospital_id: uuid.UUID, day: date) -> DayFacts:
    remote = case((SlotPool.pool.in_(_LOCAL_POOLS), 0), else_=SlotPool.capacity)
    session_rows = (
        await session.execute(
            select(
                ClinicSession.id,
                Department.campus_id,
                ClinicSession.department_id,
                ClinicSession.doctor_id,
                ClinicSession.level_id,
                ClinicSession.status,
                ClinicSession.created_at,
                func.coalesce(func.sum(SlotPool.capacity), 0),
                func.coalesce(func.sum(remote), 0),
            )
            .join(Department, Department.id == ClinicSession.department_id)
            .outerjoin(SlotPool, SlotPool.session_id == ClinicSession.id)
            .where(ClinicSession.hospital_id == hospital_id, ClinicSession.date == day)
            .group_by(
                ClinicSession.id,
                Department.campus_id,
                ClinicSession.department_id,
                ClinicSession.doctor_id,
                ClinicSession.level_id,
                ClinicSession.status,
                ClinicSession.created_at,
            )
        )
    ).all()
    timezone = await hospital_timezone(session, hospital_id)
    default_release, release_by_department = await release_policies(session, hospital_id)

    def released(department_id: uuid.UUID, created_at: datetime) -> datetime:
        days_ahead, at = release_by_department.get(department_id, default_release)
        return release_instant(
            day, days_ahead=days_ahead, release_time=at, timezone=timezone, created_at=created_at
        )

    sessions = [
        SessionFact(
            id=row[0],
            day=day,
            campus_id=row[1],
            department_id=row[2],
            doctor_id=row[3],
            level_id=row[4],
            stopped=row[5] == "stopped",
            capacity=int(row[7]),
            remote_capacity=int(row[8]),
            released_at=released(row[2], row[6]),
        )
        for row in session_rows
    ]
    appointments: list[AppointmentFact] = []
    waitlist: list[WaitlistFact] = []
    visits: list[VisitFact] = []
    money: list[MoneyFact] = []
    # Booking attempts through booking's public read (it owns the counts and their table).
    attempts = [
        AttemptFact(a.session_id, a.channel, a.day, a.hour, a.outcome, a.attempts)
        for a in await booking_demand.session_attempts(
            session, hospital_id=hospital_id, session_ids=[item.id for item in sessions]
        )
    ]
    for ids in _chunks([item.id for item in sessions]):
        for a in await session.execute(
            select(
                Appointment.session_id,
                Appointment.channel,
                Appointment.status,
                Appointment.created_at,
                Appointment.cancelled_at,
                Appointment.hold_expires_at,
                SlotPool.pool.not_in(_LOCAL_POOLS),
            )
            .join(SlotPool, SlotPool.id == Appointment.pool_id)
            .where(Appointment.session_id.in_(ids))
        ):
            appointments.append(AppointmentFact(*a))
        for w in await session.execute(
            select(
                WaitlistEntry.session_id,
                WaitlistEntry.channel,
                WaitlistEntry.status,
                WaitlistEntry.created_at,
            ).where(WaitlistEntry.session_id.in_(ids))
        ):
            waitlist.append(WaitlistFact(*w))
        for v in await session.execute(
            select(Visit.session_id, Visit.checked_in_at, Visit.called_at, Visit.finished_at).where(
                Visit.session_id.in_(ids)
            )
        ):
            visits.append(VisitFact(*v))
        money.extend(await _money(session, ids))
    return DayFacts(day, sessions, appointments, waitlist, visits, money, attempts)


async def _money(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[MoneyFact]:
    found: list[MoneyFact] = []
    paid = (
        select(
            Appointment.session_id,
            Appointment.channel,
            PaymentOrder.provider,
            PaymentOrder.paid_at,
            PaymentOrder.amount_fen,
        )
        .join(PaymentOrder, PaymentOrder.appointment_id == Appointment.id)
        .where(Appointment.session_id.in_(ids), PaymentOrder.paid_at.is_not(None))
    )
    for row in await session.execute(paid):
        if row[3] is not None:
            found.append(MoneyFact(row[0], row[1], row[2], row[3], int(row[4]), refund=False))
    # A refund counts once its money is back: finished, and not failed.
    refunded = (
        select(
            Appointment.session_id,
            Appointment.channel,
            func.coalesce(Refund.provider, PaymentOrder.provider),
            Refund.finished_at,
            Refund.amount_fen,
        )
        .join(PaymentOrder, PaymentOrder.id == Refund.order_id)
        .join(Appointment, Appointment.id == PaymentOrder.appointment_id)
        .where(
            Appointment.session_id.in_(ids),
            Refund.finished_at.is_not(None),
            Refund.state != RefundState.FAILED.value,
        )
    )
    for r in await session.execute(refunded):
        if r[3] is not None:
            found.append(MoneyFact(r[0], r[1], r[2], r[3], int(r[4]), refund=True))
    return found


async def names(
    session: AsyncSession, *, hospital_id: uuid.UUID
) -> dict[str, dict[uuid.UUID, tuple[str, str]]]:
    """(zh-CN, English) names of the hospital's campuses, departments, doctors and levels."""
    out: dict[str, dict[uuid.UUID, tuple[str, str]]] = {}
    tables: dict[str, Any] = {
        "campus": Campus,
        "department": Department,
        "doctor": Doctor,
        "level": RegistrationLevel,
    }
    for kind, table in tables.items():
        english = table.name_en if kind != "doctor" else table.name
        rows = await session.execute(
            select(table.id, table.name, english).where(table.hospital_id == hospital_id)
        )
        out[kind] = {row[0]: (row[1], row[2] or row[1]) for row in rows}
    return out


async def department_doctors(
    session: AsyncSession, *, hospital_id: uuid.UUID
) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """(department, doctor, name) of every doctor, for the filter menus."""
    rows = await session.execute(
        select(Doctor.department_id, Doctor.id, Doctor.name)
        .where(Doctor.hospital_id == hospital_id)
        .order_by(Doctor.name)
    )
    return [(row[0], row[1], row[2]) for row in rows]
