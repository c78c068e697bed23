"""What the browser tests arrange in the demo hospital's database before the browser acts:
find a doctor's session, register a family's patients, take a session's last places."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

from sqlalchemy import select

from tests import factories as f
from tests.e2e.conftest import NOW, TODAY
from yuyue.booking import listing
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.patients import service as patient_service
from yuyue.patients.rules import IdType
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import ClinicSession, Doctor, Hospital
from yuyue.staff.rules import system_actor
from yuyue.web.context import AppContext


async def demo_hospital(ctx: AppContext) -> Hospital:
    async with ctx.db.read() as session:
        hospital = await session.scalar(select(Hospital).where(Hospital.code == "demo"))
    assert hospital is not None
    return hospital


async def session_of(ctx: AppContext, *, doctor_code: str, day: date) -> uuid.UUID:
    """The demo doctor's (only) session on that day."""
    async with ctx.db.read() as session:
        found = await session.scalar(
            select(ClinicSession.id)
            .join(Doctor, Doctor.id == ClinicSession.doctor_id)
            .where(Doctor.code == doctor_code, ClinicSession.date == day)
        )
    assert found is not None, f"{doctor_code} has no session on {day}"
    return found


async def web_places_left(ctx: AppContext, session_id: uuid.UUID) -> int:
    hospital = await demo_hospital(ctx)
    async with listing.read_connection(ctx.db) as conn:
        found = await listing.listed_session(
            conn,
            hospital_id=hospital.id,
            rules=await listing.hospital_rules(conn, hospital.id),
            channel=Channel.WEB,
            session_id=session_id,
            now=ctx.clock.now(),
        )
    return found.remaining


async def register(ctx: AppContext, *, name: str, account_phone: str) -> uuid.UUID:
    """A patient on the account of `account_phone` (the account is made if needed)."""
    hospital = await demo_hospital(ctx)
    async with ctx.db.session_scope() as session:
        patient = await patient_service.register_patient(
            session,
            hospital_id=hospital.id,
            cipher=ctx.cipher,
            name=name,
            id_type=IdType.RESIDENT_ID,
            id_number=f.resident_id(),
            phone=account_phone,
            account_phone=account_phone,
            birth_date=None,
            sex=None,
            account_patients_max=5,
            today=TODAY,
            now=NOW,
        )
        return patient.id


async def book_on_web(ctx: AppContext, *, patient_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """Books a place the way another website visitor would (the web channel's pools)."""
    hospital = await demo_hospital(ctx)
    actor = replace(system_actor(hospital.id, "e2e"), channel=Channel.WEB)
    async with ctx.db.session_scope() as session:
        await booking_service.book(
            session,
            actor=actor,
            patient_id=patient_id,
            session_id=session_id,
            slot_id=None,
            now=NOW,
        )


async def take_every_web_place(ctx: AppContext, session_id: uuid.UUID) -> int:
    """Other patients book every place the website can still reach; returns how many."""
    left = await web_places_left(ctx, session_id)
    for _ in range(left):
        stranger = await register(ctx, name="周围人", account_phone=f.phone())
        await book_on_web(ctx, patient_id=stranger, session_id=session_id)
    assert await web_places_left(ctx, session_id) == 0
    return left


async def patients_named(ctx: AppContext, name: str) -> int:
    from yuyue.patients.models import Patient

    async with ctx.db.read() as session:
        return len((await session.scalars(select(Patient.id).where(Patient.name == name))).all())


async def appointments_in(ctx: AppContext, session_id: uuid.UUID) -> list[Appointment]:
    async with ctx.db.read() as session:
        return list(
            (
                await session.scalars(
                    select(Appointment).where(Appointment.session_id == session_id)
                )
            ).all()
        )
