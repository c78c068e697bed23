"""Shared set-up of the visit-day tests: actors, bookings and local times on the visit day."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.booking.views import voucher_token
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import TimeSlot
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, ActorKind
from yuyue.visits.models import Visit
from yuyue.web.context import AppContext

TZ = "Asia/Shanghai"


def local(hh: int, mm: int = 0, *, day: date = VISIT_DAY) -> datetime:
    """A wall-clock time in the hospital on the visit day, as a UTC instant."""
    return datetime.combine(day, time(hh, mm), tzinfo=ZoneInfo(TZ)).astimezone(UTC)


def staff(world: World, *roles: Role, name: str = "护士") -> Actor:
    return Actor(
        hospital_id=world.hospital.id,
        kind=ActorKind.STAFF,
        id=f"staff-{name}-{'-'.join(sorted(roles))}",
        channel=Channel.WINDOW,
        roles=frozenset(roles),
        name=name,
    )


def nurse(world: World) -> Actor:
    return staff(world, Role.NURSE)


def doctor(world: World) -> Actor:
    """The world's doctor, signed in: they call their own sessions."""
    return replace(staff(world, Role.DOCTOR, name="医生"), doctor_id=world.doctor.id)


def kiosk(world: World) -> Actor:
    return Actor(
        hospital_id=world.hospital.id, kind=ActorKind.CHANNEL, id="kiosk-1", channel=Channel.KIOSK
    )


def app_actor(world: World) -> Actor:
    return Actor(
        hospital_id=world.hospital.id, kind=ActorKind.CHANNEL, id="app", channel=Channel.APP
    )


async def slot_id(ctx: AppContext, world: World, ordinal: int) -> uuid.UUID | None:
    async with ctx.db.read() as s:
        return await s.scalar(
            select(TimeSlot.id).where(
                TimeSlot.session_id == world.session.id, TimeSlot.ordinal == ordinal
            )
        )


async def book(
    ctx: AppContext,
    world: World,
    *,
    ordinal: int = 0,
    name: str = "张三",
    birth: date = date(1990, 1, 1),
) -> Appointment:
    """A new patient booked from the app (before the visit day) into the slot `ordinal`."""
    slot = await slot_id(ctx, world, ordinal)
    async with ctx.db.session_scope() as s:
        patient = await f.make_patient(
            s, hospital=world.hospital, cipher=ctx.cipher, now=NOW, name=name, birth=birth
        )
        booked = await booking_service.book(
            s,
            actor=app_actor(world),
            patient_id=patient.id,
            session_id=world.session.id,
            slot_id=slot,
            now=NOW,
        )
        return booked.appointment


def token(ctx: AppContext, appointment: Appointment) -> str:
    return voucher_token(ctx.voucher_signer, appointment, timezone=TZ)


async def visits_in_line(ctx: AppContext, world: World) -> list[Visit]:
    async with ctx.db.read() as s:
        rows = await s.scalars(
            select(Visit)
            .where(Visit.session_id == world.session.id, Visit.position.is_not(None))
            .order_by(Visit.position)
        )
        return list(rows)


async def book_patient_only(session: AsyncSession, ctx: AppContext, world: World) -> uuid.UUID:
    """A new patient registered at the desk (for a walk-in); returns the patient id."""
    patient = await f.make_patient(
        session, hospital=world.hospital, cipher=ctx.cipher, now=NOW, name="孙八"
    )
    return patient.id
