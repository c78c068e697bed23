"""What the waitlist tests share: a full session, actors, and calls in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.booking.states import ACTIVE_STATUSES
from yuyue.booking.waitlist import service as waitlist
from yuyue.booking.waitlist.models import WaitlistEntry
from yuyue.kit.clock import FixedClock
from yuyue.patients.models import Patient
from yuyue.scheduling.enums import Channel, Period
from yuyue.scheduling.models import ClinicSession, PoolRatio, SlotPool
from yuyue.staff.rules import Actor, ActorKind
from yuyue.web.context import AppContext


def channel_actor(world: World, channel: Channel = Channel.APP) -> Actor:
    return Actor(hospital_id=world.hospital.id, kind=ActorKind.CHANNEL, id="test", channel=channel)


@dataclass
class FullSession:
    clinic: ClinicSession
    # The patients holding its places, in booking order, and their appointments.
    holders: list[Patient]
    appointments: list[uuid.UUID]


async def full_session(
    ctx: AppContext,
    world: World,
    *,
    capacity: int = 2,
    fee: bool = False,
    days: int = 0,
    start: time = time(13, 30),
    ratios: dict[str, int] | None = None,
    fill: bool = True,
) -> FullSession:
    """An afternoon session with every place the app channel can reach booked (by default
    every place sits in the shared appointment pool)."""
    async with ctx.db.session_scope() as s:
        await s.execute(delete(PoolRatio).where(PoolRatio.hospital_id == world.hospital.id))
        for pool, percent in (ratios or {"appointment": 100}).items():
            s.add(PoolRatio(hospital_id=world.hospital.id, pool=pool, percent=percent))
        await s.flush()
        clinic = await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.fee_level if fee else world.free_level,
            doctor=world.doctor,
            day=VISIT_DAY + timedelta(days=days),
            period=Period.AFTERNOON,
            start=start,
            end=time(start.hour + 2, start.minute),
            capacity=capacity,
            now=NOW,
        )
        reachable = await s.scalar(
            select(func.sum(SlotPool.capacity)).where(
                SlotPool.session_id == clinic.id, SlotPool.pool.in_(("app", "appointment"))
            )
        )
        holders = [
            await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
            for _ in range(int(reachable or 0) if fill else 0)
        ]
    appointments: list[uuid.UUID] = []
    for holder in holders:
        booked = await call(
            ctx,
            booking_service.book,
            actor=channel_actor(world),
            patient_id=holder.id,
            session_id=clinic.id,
            slot_id=None,
            now=NOW,
        )
        appointments.append(booked.appointment.id)
    return FullSession(clinic, holders, appointments)


async def call(ctx: AppContext, use_case: Any, **arguments: Any) -> Any:
    """One use case in one transaction, as an entry point runs it."""

    async def work(session: AsyncSession) -> Any:
        return await use_case(session, **arguments)

    return await ctx.db.transact(work)


async def new_patients(ctx: AppContext, world: World, count: int, **fields: Any) -> list[Patient]:
    async with ctx.db.session_scope() as s:
        return [
            await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW, **fields)
            for _ in range(count)
        ]


async def entries(ctx: AppContext, clinic: ClinicSession) -> list[WaitlistEntry]:
    async with ctx.db.read() as s:
        return list(
            (
                await s.scalars(
                    select(WaitlistEntry)
                    .where(WaitlistEntry.session_id == clinic.id)
                    .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
                )
            ).all()
        )


async def active_appointments(ctx: AppContext, clinic: ClinicSession) -> list[Appointment]:
    async with ctx.db.read() as s:
        return list(
            (
                await s.scalars(
                    select(Appointment)
                    .where(
                        Appointment.session_id == clinic.id,
                        Appointment.status.in_(ACTIVE_STATUSES),
                    )
                    .order_by(Appointment.sequence_number)
                )
            ).all()
        )


async def taken(ctx: AppContext, clinic: ClinicSession) -> int:
    async with ctx.db.read() as s:
        return int(
            await s.scalar(select(func.sum(SlotPool.taken)).where(SlotPool.session_id == clinic.id))
            or 0
        )


async def join_in_order(
    ctx: AppContext, world: World, clinic: ClinicSession, patients: list[Patient]
) -> list[WaitlistEntry]:
    """Joins one after another, a second apart, so the line order is the list order."""
    joined = []
    for patient in patients:
        clock = ctx.clock
        assert isinstance(clock, FixedClock)
        clock.advance(timedelta(seconds=1))
        joined.append(
            await call(
                ctx,
                waitlist.join,
                actor=channel_actor(world),
                patient_id=patient.id,
                session_id=clinic.id,
                now=ctx.clock.now(),
            )
        )
    return joined
