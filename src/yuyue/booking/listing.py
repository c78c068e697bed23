"""Sessions as a channel sees them: with the places left in its pools and the window in
which it may book. Booking's read side, shared by the JSON API, the patient pages and the
desk."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import rules as booking_rules
from yuyue.booking import service as booking_service
from yuyue.booking.facts import policy_from_row
from yuyue.scheduling import service as scheduling_service
from yuyue.scheduling.enums import Channel, SessionStatus
from yuyue.scheduling.models import (
    BookingPolicy,
    ClinicSession,
    Department,
    Doctor,
    RegistrationLevel,
)
from yuyue.scheduling.rules import pools_for_channel


@dataclass(frozen=True, slots=True)
class ListedSession:
    clinic: ClinicSession
    department: Department
    doctor: Doctor | None
    level: RegistrationLevel
    remaining: int
    window: booking_rules.BookingWindow

    @property
    def is_open(self) -> bool:
        return self.clinic.status == SessionStatus.OPEN


async def policies(
    session: AsyncSession, hospital_id: uuid.UUID
) -> tuple[booking_rules.Policy, dict[uuid.UUID, booking_rules.Policy]]:
    """The hospital's policy and the departments' overrides."""
    rows = (
        await session.scalars(select(BookingPolicy).where(BookingPolicy.hospital_id == hospital_id))
    ).all()
    default = policy_from_row(next((r for r in rows if r.department_id is None), None))
    return default, {r.department_id: policy_from_row(r) for r in rows if r.department_id}


async def list_sessions(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    channel: Channel,
    start: date,
    end: date,
    department_id: uuid.UUID | None = None,
    doctor_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
) -> list[ListedSession]:
    timezone = await scheduling_service.hospital_timezone(session, hospital_id)
    default_policy, by_department = await policies(session, hospital_id)
    in_range = [
        ClinicSession.hospital_id == hospital_id,
        ClinicSession.date >= start,
        ClinicSession.date <= end,
    ]
    if department_id is not None:
        in_range.append(ClinicSession.department_id == department_id)
    if doctor_id is not None:
        in_range.append(ClinicSession.doctor_id == doctor_id)
    if session_id is not None:
        in_range.append(ClinicSession.id == session_id)
    remaining = booking_service.remaining_by_session(pools_for_channel(channel), *in_range)
    query = (
        select(ClinicSession, Department, Doctor, RegistrationLevel, remaining.c.remaining)
        .join(Department, Department.id == ClinicSession.department_id)
        .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
        .join(RegistrationLevel, RegistrationLevel.id == ClinicSession.level_id)
        .outerjoin(remaining, remaining.c.session_id == ClinicSession.id)
        .where(*in_range)
        .order_by(ClinicSession.date, ClinicSession.start_time, Department.sort_order, Doctor.code)
    )
    listed: list[ListedSession] = []
    for clinic, department, doctor, level, left in await session.execute(query):
        facts = booking_rules.SessionFacts(
            clinic.id,
            clinic.date,
            clinic.start_time,
            clinic.end_time,
            clinic.department_id,
            clinic.doctor_id,
            SessionStatus(clinic.status),
            timezone,
        )
        policy = by_department.get(department.id, default_policy)
        listed.append(
            ListedSession(
                clinic=clinic,
                department=department,
                doctor=doctor,
                level=level,
                remaining=int(left or 0) if clinic.status == SessionStatus.OPEN else 0,
                window=booking_rules.booking_window(policy, facts),
            )
        )
    return listed
