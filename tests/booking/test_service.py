"""Booking's public functions for the other contexts, on SQLite and PostgreSQL: a change of
an appointment's state is the transition, its audit row and its message, together or not at
all."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import NOW, World
from tests.helpers import row_counts
from yuyue.booking import rules
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.booking.service import StatusAction
from yuyue.booking.states import AppointmentStatus
from yuyue.notifications.models import OutboxMessage
from yuyue.scheduling.enums import Channel
from yuyue.staff.models import AuditEntry
from yuyue.staff.rules import Actor, ActorKind, system_actor
from yuyue.web.context import AppContext


async def booked(ctx: AppContext, world: World) -> uuid.UUID:
    actor = Actor(
        hospital_id=world.hospital.id, kind=ActorKind.CHANNEL, id="t", channel=Channel.APP
    )

    async def work(session: AsyncSession) -> uuid.UUID:
        done = await booking_service.book(
            session,
            actor=actor,
            patient_id=world.patient.id,
            session_id=world.session.id,
            slot_id=None,
            now=NOW,
        )
        return done.appointment.id

    return await ctx.db.transact(work)


async def change(ctx: AppContext, world: World, appointment_id: uuid.UUID, action: str) -> None:
    async def work(session: AsyncSession) -> None:
        appointment = await booking_service.lock_appointment(
            session, hospital_id=world.hospital.id, appointment_id=appointment_id
        )
        await booking_service.change_status(
            session,
            actor=system_actor(world.hospital.id, "test"),
            appointment=appointment,
            action=action,  # type: ignore[arg-type]
            now=NOW,
        )

    await ctx.db.transact(work)


async def trail(ctx: AppContext, appointment_id: uuid.UUID) -> list[tuple[str, str, str]]:
    async with ctx.db.read() as s:
        rows = await s.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity_id == appointment_id)
            .order_by(AuditEntry.at, AuditEntry.id)
        )
        return [
            (e.action, (e.before or {}).get("status", ""), (e.after or {}).get("status", ""))
            for e in rows
        ]


async def messages(ctx: AppContext, appointment_id: uuid.UUID) -> list[str]:
    async with ctx.db.read() as s:
        return list(
            await s.scalars(
                select(OutboxMessage.kind)
                .where(OutboxMessage.appointment_id == appointment_id)
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
            )
        )


async def status_of(ctx: AppContext, appointment_id: uuid.UUID) -> str:
    async with ctx.db.read() as s:
        status = await s.scalar(select(Appointment.status).where(Appointment.id == appointment_id))
        assert status is not None
        return str(status)


class TestChangeStatus:
    @pytest.mark.parametrize(
        ("actions", "status", "message"),
        [
            (["mark_no_show"], "no_show", "no_show"),
            (["check_in"], "checked_in", None),
            (["check_in", "complete"], "completed", None),
        ],
    )
    async def test_the_transition_is_audited_and_told_once(
        self,
        ctx: AppContext,
        world: World,
        actions: list[StatusAction],
        status: str,
        message: str | None,
    ) -> None:
        appointment_id = await booked(ctx, world)
        for action in actions:
            await change(ctx, world, appointment_id, action)

        assert await status_of(ctx, appointment_id) == status
        audited = await trail(ctx, appointment_id)
        assert [a for a, _, _ in audited] == ["book", *actions]
        assert audited[-1][2] == status
        expected = ["booking_confirmed", *([message] if message else [])]
        assert [k for k in await messages(ctx, appointment_id) if k != "reminder"] == expected

    @pytest.mark.parametrize(
        ("action", "refusal"),
        [
            # The rules refuse it: a booking is completed only after its check-in.
            ("complete", rules.InvalidTransition),
            # Cancelling and expiring return a place: never through this door.
            ("cancel", ValueError),
            ("expire", ValueError),
        ],
    )
    async def test_a_refused_change_changes_nothing(
        self, ctx: AppContext, world: World, action: str, refusal: type[Exception]
    ) -> None:
        appointment_id = await booked(ctx, world)
        before = await row_counts(ctx.db)

        with pytest.raises(refusal):
            await change(ctx, world, appointment_id, action)

        assert await status_of(ctx, appointment_id) == AppointmentStatus.BOOKED
        assert await row_counts(ctx.db) == before
