"""Past visits for the no-show tests: a session of its own on a given day and one
appointment in it, written directly so any status and any day is possible."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from itertools import count

from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW, World
from yuyue.attendance import service as attendance_service
from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus
from yuyue.patients.models import Patient
from yuyue.scheduling.enums import SessionStatus
from yuyue.scheduling.models import ClinicSession, SlotPool
from yuyue.staff.rules import system_actor
from yuyue.web.context import AppContext

_numbers = count(1)


async def visit(
    ctx: AppContext,
    world: World,
    *,
    day: date,
    patient: Patient | None = None,
    status: AppointmentStatus = AppointmentStatus.BOOKED,
    start: time = time(8, 0),
    end: time = time(9, 0),
    session_status: SessionStatus = SessionStatus.OPEN,
) -> uuid.UUID:
    """An appointment of `patient` (the world's first) in a new session on `day`."""
    who = patient or world.patient
    async with ctx.db.session_scope() as s:
        clinic = await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.free_level,
            day=day,
            start=start,
            end=end,
            capacity=4,
            now=NOW,
        )
        pool = await s.scalar(
            select(SlotPool).where(SlotPool.session_id == clinic.id).order_by(SlotPool.slot_ordinal)
        )
        assert pool is not None
        number = next(_numbers)
        # Booked a few days ahead, so old visits do not count against booking limits now.
        made = min(NOW, datetime.combine(day - timedelta(days=3), time(0), tzinfo=UTC))
        appointment = Appointment(
            hospital_id=world.hospital.id,
            patient_id=who.id,
            session_id=clinic.id,
            slot_id=pool.slot_id,
            pool_id=pool.id,
            department_id=world.department.id,
            doctor_id=None,
            visit_date=day,
            channel="app",
            status=status,
            sequence_number=pool.first_number,
            fee_fen=0,
            voucher_code=f"{number:08d}",
            booked_at=made,
            created_by="test",
            created_at=made,
            updated_at=made,
        )
        s.add(appointment)
        if session_status is not SessionStatus.OPEN:
            stopped = await s.get(ClinicSession, clinic.id)
            assert stopped is not None
            stopped.status = session_status
        await s.flush()
        return appointment.id


async def sweep(
    ctx: AppContext, world: World, *, now: datetime | None = None
) -> attendance_service.SweepResult:
    actor = system_actor(world.hospital.id, "no-show-sweep")
    async with ctx.db.session_scope() as s:
        return await attendance_service.mark_no_shows(s, actor=actor, now=now or ctx.clock.now())
