"""Waitlist use cases on SQLite and PostgreSQL: joining and its refusals, leaving, what the
pages read, and how a returned place travels down the line."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests import factories as f
from tests.booking.waitlist.support import (
    active_appointments,
    call,
    channel_actor,
    entries,
    full_session,
    join_in_order,
    new_patients,
    taken,
)
from tests.conftest import NOW, World
from tests.helpers import row_counts
from yuyue.booking import rules as booking_rules
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus, CancelReason
from yuyue.booking.waitlist import rules
from yuyue.booking.waitlist import service as waitlist
from yuyue.booking.waitlist.states import WaitlistStatus
from yuyue.kit.clock import FixedClock
from yuyue.kit.errors import InvalidState, NotFound, YuyueError
from yuyue.kit.localtime import local_instant
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.models import OutboxMessage
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import BookingPolicy
from yuyue.web.context import AppContext

W = WaitlistStatus


async def join(ctx: AppContext, world: World, clinic: Any, patient: Any, **extra: Any) -> Any:
    return await call(
        ctx,
        waitlist.join,
        actor=extra.pop("actor", channel_actor(world)),
        patient_id=patient.id,
        session_id=clinic.id,
        now=extra.pop("now", ctx.clock.now()),
    )


async def set_policy(ctx: AppContext, world: World, **values: Any) -> None:
    async with ctx.db.session_scope() as s:
        row = await s.scalar(
            select(BookingPolicy).where(BookingPolicy.hospital_id == world.hospital.id)
        )
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)


class TestJoin:
    async def test_a_patient_joins_a_full_session_and_nothing_is_booked(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        before_taken = await taken(ctx, full.clinic)
        entry = await join(ctx, world, full.clinic, world.patient)
        assert entry.status == W.WAITING
        assert entry.channel == "app"
        assert await taken(ctx, full.clinic) == before_taken == 2
        assert len(await active_appointments(ctx, full.clinic)) == 2

    @pytest.mark.parametrize(
        ("setup", "code"),
        [
            ("places_left", "waitlist_not_needed"),
            ("twice", "already_waiting"),
            ("cap", "waitlist_full"),
            ("closed", "waitlist_closed"),
            ("disabled", "waitlist_disabled"),
            ("booked_here", "already_booked"),
            ("daily_limit", "limit_exceeded"),
            ("blacklisted", "blacklisted"),
            ("too_old", "age_not_allowed"),
            ("stopped", "session_stopped"),
            ("before_release", "outside_release_window"),
        ],
    )
    async def test_join_is_refused_and_changes_nothing(
        self, ctx: AppContext, world: World, setup: str, code: str
    ) -> None:
        full = await full_session(ctx, world, capacity=3 if setup == "booked_here" else 2)
        clinic = full.clinic
        patient = world.patient
        now = NOW
        if setup == "places_left":
            await call(
                ctx,
                booking_service.cancel,
                actor=channel_actor(world),
                appointment_id=full.appointments[0],
                note=None,
                now=NOW,
            )
        elif setup == "twice":
            await join(ctx, world, clinic, patient)
        elif setup == "cap":
            await set_policy(ctx, world, waitlist_max_active=1)
            other = await full_session(ctx, world, days=1)
            await join(ctx, world, other.clinic, patient)
        elif setup == "closed":
            # 120 minutes before the 13:30 start (Shanghai) is 03:30 UTC on the day.
            now = clinic_start(clinic) - timedelta(minutes=120)
        elif setup == "disabled":
            await set_policy(ctx, world, waitlist_enabled=False)
        elif setup == "booked_here":
            patient = full.holders[0]
        elif setup == "daily_limit":
            await set_policy(
                ctx,
                world,
                limit_per_day=1,
                limit_per_department_per_day=5,
                limit_per_doctor_per_day=5,
            )
            async with ctx.db.session_scope() as s:
                other_department = await f.make_department(s, hospital=world.hospital, name="外科")
                other_session = await f.make_session(
                    s,
                    hospital=world.hospital,
                    department=other_department,
                    level=world.free_level,
                    day=clinic.date,
                    now=NOW,
                )
            await call(
                ctx,
                booking_service.book,
                actor=channel_actor(world),
                patient_id=patient.id,
                session_id=other_session.id,
                slot_id=None,
                now=NOW,
            )
        elif setup == "blacklisted":
            async with ctx.db.session_scope() as s:
                s.add(booking_models_blacklist(world, patient.id))
        elif setup == "too_old":
            async with ctx.db.session_scope() as s:
                department = await s.get(type(world.department), world.department.id)
                assert department is not None
                department.max_age_years = 14
            ctx.session_infos.clear()
        elif setup == "stopped":
            await call(
                ctx,
                booking_service.stop_clinic,
                actor=staff_actor(world),
                session_id=clinic.id,
                reason="ill",
                now=NOW,
            )
        elif setup == "before_release":
            # Not released yet: nobody may book it, so nobody may wait for it either.
            later = await full_session(ctx, world, days=8, fill=False)
            clinic = later.clinic
        ctx.session_infos.clear()
        ctx.policies.clear()
        before = await row_counts(ctx.db)
        with pytest.raises(YuyueError) as refused:
            await join(ctx, world, clinic, patient, now=now)
        assert refused.value.code == code, refused.value
        assert await row_counts(ctx.db) == before

    async def test_a_session_of_another_hospital_or_an_unknown_patient_is_not_found(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        async with ctx.db.session_scope() as s:
            elsewhere = await f.make_hospital(s, now=NOW)
        stranger = channel_actor(world)
        stranger = type(stranger)(
            hospital_id=elsewhere.id, kind=stranger.kind, id="x", channel=stranger.channel
        )
        before = await row_counts(ctx.db)
        with pytest.raises(NotFound):
            await join(ctx, world, full.clinic, world.patient, actor=stranger)
        with pytest.raises(NotFound):
            await join(ctx, world, full.clinic, type("P", (), {"id": f.new_uuid()})())
        assert await row_counts(ctx.db) == before

    async def test_a_channel_whose_pools_still_have_places_need_not_wait(
        self, ctx: AppContext, world: World
    ) -> None:
        # App places are gone, on-site places remain: the app waits, the window books.
        full = await full_session(ctx, world, capacity=4, ratios={"appointment": 50, "onsite": 50})
        entry = await join(ctx, world, full.clinic, world.patient)
        assert entry.status == W.WAITING
        with pytest.raises(rules.WaitlistNotNeeded) as refused:
            await join(
                ctx,
                world,
                full.clinic,
                world.other_patient,
                actor=channel_actor(world, Channel.WINDOW),
            )
        assert refused.value.values["remaining"] == 2


class TestLeaveAndRead:
    async def test_leaving_while_waiting_and_positions_in_line(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        patients = await new_patients(ctx, world, 3)
        joined = await join_in_order(ctx, world, full.clinic, patients)
        views = await read(ctx, world, patients)
        assert [v.position for v in by_patient(views, patients)] == [1, 2, 3]
        first = by_patient(views, patients)[0]
        assert first.date == full.clinic.date and first.period.value == "afternoon"
        assert first.department_name == world.department.name
        assert first.doctor_name == world.doctor.name
        assert first.offer_expires_at is None

        left = await call(
            ctx,
            waitlist.leave,
            actor=channel_actor(world),
            entry_id=joined[0].id,
            now=ctx.clock.now(),
        )
        assert left.status == W.LEFT
        views = await read(ctx, world, patients)
        assert [v.position for v in by_patient(views, patients)] == [None, 1, 2]
        before = await row_counts(ctx.db)
        with pytest.raises(InvalidState):
            await call(
                ctx,
                waitlist.leave,
                actor=channel_actor(world),
                entry_id=joined[0].id,
                now=ctx.clock.now(),
            )
        assert await row_counts(ctx.db) == before
        # Having left, the patient may join again, at the back of the line.
        again = await join(ctx, world, full.clinic, patients[0])
        views = await read(ctx, world, [patients[0]])
        assert next(v for v in views if v.id == again.id).position == 3

    async def test_entries_of_another_hospital_are_invisible(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        entry = await join(ctx, world, full.clinic, world.patient)
        async with ctx.db.session_scope() as s:
            elsewhere = await f.make_hospital(s, now=NOW)
        async with ctx.db.read() as s:
            assert (
                await waitlist.entries_for_patients(
                    s, hospital_id=elsewhere.id, patient_ids=[world.patient.id]
                )
                == []
            )
            with pytest.raises(NotFound):
                await waitlist.entry_view(s, hospital_id=elsewhere.id, entry_id=entry.id)
        stranger = channel_actor(world)
        stranger = type(stranger)(
            hospital_id=elsewhere.id, kind=stranger.kind, id="x", channel=stranger.channel
        )
        with pytest.raises(NotFound):
            await call(ctx, waitlist.leave, actor=stranger, entry_id=entry.id, now=NOW)


class TestOffers:
    async def test_a_cancelled_place_goes_to_the_first_waiter_as_a_hold(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        waiters = await new_patients(ctx, world, 2)
        joined = await join_in_order(ctx, world, full.clinic, waiters)
        now = ctx.clock.now()
        await cancel(ctx, world, full.appointments[0], now=now)
        # The place never went back to the pool: still every place taken.
        assert await taken(ctx, full.clinic) == 2
        line = await entries(ctx, full.clinic)
        assert [e.status for e in line] == [W.OFFERED, W.WAITING]
        offer = line[0]
        assert offer.id == joined[0].id
        assert offer.offer_expires_at == now + timedelta(minutes=30)
        held = await appointment(ctx, offer.offer_appointment_id)
        assert held.patient_id == waiters[0].id
        assert held.status == AppointmentStatus.HELD
        assert held.hold_expires_at == offer.offer_expires_at
        assert held.channel == "app"
        async with ctx.db.read() as s:
            messages = (
                await s.scalars(
                    select(OutboxMessage).where(OutboxMessage.kind == MessageKind.WAITLIST_OFFER)
                )
            ).all()
        assert len(messages) == 1
        payload = messages[0].payload
        assert messages[0].patient_id == waiters[0].id
        assert payload["waitlist_entry_id"] == str(offer.id)
        assert payload["appointment_id"] == str(held.id)
        assert payload["offer_expires_at"] == offer.offer_expires_at.isoformat()
        assert payload["minutes"] == 30
        assert payload["date"] == full.clinic.date.isoformat()
        assert payload["period"] == "afternoon"
        assert payload["department"] == world.department.name
        assert payload["doctor"] == world.doctor.name
        assert payload["slot_start"] == "13:30"
        # A normal booker finds the session still full.
        with pytest.raises(booking_rules.SoldOut):
            await call(
                ctx,
                booking_service.book,
                actor=channel_actor(world),
                patient_id=world.patient.id,
                session_id=full.clinic.id,
                slot_id=None,
                now=now,
            )

    async def test_a_lapsed_offer_passes_to_the_next_waiter_then_back_to_the_pool(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        waiters = await new_patients(ctx, world, 2)
        await join_in_order(ctx, world, full.clinic, waiters)
        await cancel(ctx, world, full.appointments[0], now=ctx.clock.now())
        advance(ctx, timedelta(minutes=31))
        returned = await call(
            ctx, booking_service.expire_holds, actor=system(world), now=ctx.clock.now()
        )
        assert returned == [full.clinic.id]
        line = await entries(ctx, full.clinic)
        assert [e.status for e in line] == [W.LAPSED, W.OFFERED]
        first = await appointment(ctx, line[0].offer_appointment_id)
        assert first.status == AppointmentStatus.EXPIRED
        # An offer never taken does not count against the patient's booking limits.
        assert first.cancel_reason == CancelReason.WAITLIST_OFFER.value
        assert (await appointment(ctx, line[1].offer_appointment_id)).patient_id == waiters[1].id
        assert await taken(ctx, full.clinic) == 2
        advance(ctx, timedelta(minutes=31))
        await call(ctx, booking_service.expire_holds, actor=system(world), now=ctx.clock.now())
        assert [e.status for e in await entries(ctx, full.clinic)] == [W.LAPSED, W.LAPSED]
        assert await taken(ctx, full.clinic) == 1  # nobody left in line: back to the pool

    async def test_declining_passes_the_place_on_and_accepting_a_free_offer_books_it(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        waiters = await new_patients(ctx, world, 2)
        joined = await join_in_order(ctx, world, full.clinic, waiters)
        await cancel(ctx, world, full.appointments[0], now=ctx.clock.now())
        declined = await call(
            ctx,
            waitlist.decline_offer,
            actor=channel_actor(world),
            entry_id=joined[0].id,
            now=ctx.clock.now(),
        )
        assert declined.status == W.DECLINED
        line = await entries(ctx, full.clinic)
        assert [e.status for e in line] == [W.DECLINED, W.OFFERED]
        accepted = await call(
            ctx,
            waitlist.accept_offer,
            actor=channel_actor(world),
            entry_id=joined[1].id,
            now=ctx.clock.now(),
        )
        assert accepted.entry.status == W.ACCEPTED
        assert accepted.appointment.status == AppointmentStatus.BOOKED
        assert accepted.appointment.booked_at == ctx.clock.now()
        assert accepted.appointment.hold_expires_at is None
        booked = await appointment(ctx, line[1].offer_appointment_id)
        assert booked.status == AppointmentStatus.BOOKED
        async with ctx.db.read() as s:
            kinds = (
                await s.scalars(
                    select(OutboxMessage.kind).where(OutboxMessage.appointment_id == booked.id)
                )
            ).all()
        # The offer, the confirmation, and the reminders a booked visit gets.
        assert kinds.count(MessageKind.WAITLIST_OFFER) == 1
        assert kinds.count(MessageKind.BOOKING_CONFIRMED) == 1
        assert kinds.count(MessageKind.REMINDER) >= 1
        assert await taken(ctx, full.clinic) == 2
        assert len(await active_appointments(ctx, full.clinic)) == 2
        # Accepting or declining twice is a wrong state, and changes nothing.
        before = await row_counts(ctx.db)
        for use_case in (waitlist.accept_offer, waitlist.decline_offer):
            with pytest.raises(InvalidState):
                await call(
                    ctx,
                    use_case,
                    actor=channel_actor(world),
                    entry_id=joined[1].id,
                    now=ctx.clock.now(),
                )
        assert await row_counts(ctx.db) == before

    async def test_a_paid_offer_stays_held_until_payment(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world, fee=True)
        # Pay the holders' fees so only the cancellation frees a place.
        for appointment_id in full.appointments:
            await call(
                ctx,
                booking_service.confirm_payment,
                actor=system(world),
                appointment_id=appointment_id,
                paid_fen=8000,
                payment_reference="p",
                now=NOW,
            )
        [waiter] = await new_patients(ctx, world, 1)
        [entry] = await join_in_order(ctx, world, full.clinic, [waiter])
        await call(
            ctx,
            booking_service.cancel,
            actor=staff_actor(world),
            appointment_id=full.appointments[0],
            note=None,
            now=ctx.clock.now(),
        )
        advance(ctx, timedelta(minutes=25))
        accepted = await call(
            ctx,
            waitlist.accept_offer,
            actor=channel_actor(world),
            entry_id=entry.id,
            now=ctx.clock.now(),
        )
        assert accepted.entry.status == W.ACCEPTED
        assert accepted.appointment.status == AppointmentStatus.HELD
        # Five minutes were left on the offer; paying gets the ordinary fifteen.
        assert accepted.appointment.hold_expires_at == ctx.clock.now() + timedelta(minutes=15)
        paid = await call(
            ctx,
            booking_service.confirm_payment,
            actor=system(world),
            appointment_id=accepted.appointment.id,
            paid_fen=8000,
            payment_reference="wx-1",
            now=ctx.clock.now(),
        )
        assert paid.status == AppointmentStatus.BOOKED

    async def test_an_offer_past_its_deadline_cannot_be_accepted(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        [waiter] = await new_patients(ctx, world, 1)
        [entry] = await join_in_order(ctx, world, full.clinic, [waiter])
        await cancel(ctx, world, full.appointments[0], now=ctx.clock.now())
        advance(ctx, timedelta(minutes=30))
        before = await row_counts(ctx.db)
        with pytest.raises(rules.OfferExpired):
            await call(
                ctx,
                waitlist.accept_offer,
                actor=channel_actor(world),
                entry_id=entry.id,
                now=ctx.clock.now(),
            )
        assert await row_counts(ctx.db) == before

    async def test_extra_places_go_to_several_waiters(self, ctx: AppContext, world: World) -> None:
        full = await full_session(ctx, world)
        waiters = await new_patients(ctx, world, 3)
        await join_in_order(ctx, world, full.clinic, waiters)
        await call(
            ctx,
            booking_service.add_extra_places,
            actor=staff_actor(world),
            session_id=full.clinic.id,
            count=2,
            pool="appointment",
            slot_id=None,
            now=ctx.clock.now(),
        )
        line = await entries(ctx, full.clinic)
        assert [e.status for e in line] == [W.OFFERED, W.OFFERED, W.WAITING]
        numbers = sorted(a.sequence_number for a in await active_appointments(ctx, full.clinic))
        assert numbers == [1, 2, 3, 4]
        assert await taken(ctx, full.clinic) == 4

    async def test_ineligible_waiters_are_skipped_with_the_reason(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        waiters = await new_patients(ctx, world, 2)
        await join_in_order(ctx, world, full.clinic, waiters)
        async with ctx.db.session_scope() as s:
            s.add(booking_models_blacklist(world, waiters[0].id))
        await cancel(ctx, world, full.appointments[0], now=ctx.clock.now())
        line = await entries(ctx, full.clinic)
        assert [(e.status, e.reason) for e in line] == [
            (W.SKIPPED, "blacklisted"),
            (W.OFFERED, None),
        ]

    async def test_a_waiter_whose_channel_cannot_use_the_pool_is_passed_over(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world, capacity=4, ratios={"appointment": 50, "onsite": 50})
        [app_waiter] = await new_patients(ctx, world, 1)
        await join_in_order(ctx, world, full.clinic, [app_waiter])
        # An on-site place comes back: the app waiter could not have booked it.
        async with ctx.db.session_scope() as s:
            onsite = await booking_service.book(
                s,
                actor=channel_actor(world, Channel.WINDOW),
                patient_id=world.patient.id,
                session_id=full.clinic.id,
                slot_id=None,
                now=NOW,
            )
        await cancel(ctx, world, onsite.appointment.id, now=ctx.clock.now())
        assert [e.status for e in await entries(ctx, full.clinic)] == [W.WAITING]
        await cancel(ctx, world, full.appointments[0], now=ctx.clock.now())
        assert [e.status for e in await entries(ctx, full.clinic)] == [W.OFFERED]

    async def test_after_the_close_the_place_returns_to_the_pool_and_the_line_closes(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        waiters = await new_patients(ctx, world, 2)
        await join_in_order(ctx, world, full.clinic, waiters)
        advance(ctx, clinic_start(full.clinic) - timedelta(minutes=120) - ctx.clock.now())
        # So late, only a supervisor's approval cancels (the approved request's call).
        await call(
            ctx,
            booking_service.cancel,
            actor=staff_actor(world),
            appointment_id=full.appointments[0],
            note=None,
            now=ctx.clock.now(),
            approved=True,
        )
        assert await taken(ctx, full.clinic) == 1
        line = await entries(ctx, full.clinic)
        assert [(e.status, e.reason) for e in line] == [(W.CLOSED, "waitlist_closed")] * 2

    async def test_the_sweep_closes_lines_at_their_closing_time_only(
        self, ctx: AppContext, world: World
    ) -> None:
        today = await full_session(ctx, world)
        tomorrow = await full_session(ctx, world, days=1)
        waiters = await new_patients(ctx, world, 2)
        await join_in_order(ctx, world, today.clinic, waiters)
        await join_in_order(ctx, world, tomorrow.clinic, waiters)
        at = clinic_start(today.clinic) - timedelta(minutes=121)
        assert await call(ctx, waitlist.close_waitlists, actor=system(world), now=at) == 0
        at += timedelta(minutes=1)
        assert await call(ctx, waitlist.close_waitlists, actor=system(world), now=at) == 2
        assert {e.status for e in await entries(ctx, today.clinic)} == {W.CLOSED}
        assert {e.status for e in await entries(ctx, tomorrow.clinic)} == {W.WAITING}
        assert await call(ctx, waitlist.close_waitlists, actor=system(world), now=at) == 0

    async def test_stop_clinic_closes_the_line_and_cancels_open_offers(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        waiters = await new_patients(ctx, world, 2)
        await join_in_order(ctx, world, full.clinic, waiters)
        await cancel(ctx, world, full.appointments[0], now=ctx.clock.now())
        await call(
            ctx,
            booking_service.stop_clinic,
            actor=staff_actor(world),
            session_id=full.clinic.id,
            reason="ill",
            now=ctx.clock.now(),
        )
        line = await entries(ctx, full.clinic)
        assert [(e.status, e.reason) for e in line] == [
            (W.CLOSED, "session_stopped"),
            (W.CLOSED, "session_stopped"),
        ]
        assert await active_appointments(ctx, full.clinic) == []


# --- small helpers -------------------------------------------------------------------------


def clinic_start(clinic: Any) -> Any:
    return local_instant(clinic.date, clinic.start_time, "Asia/Shanghai")


def staff_actor(world: World) -> Any:
    from yuyue.staff.enums import Role
    from yuyue.staff.rules import Actor, ActorKind

    return Actor(
        hospital_id=world.hospital.id,
        kind=ActorKind.STAFF,
        id="staff",
        channel=Channel.WINDOW,
        roles=frozenset({Role.ADMIN}),
    )


def booking_models_blacklist(world: World, patient_id: Any) -> Any:
    from yuyue.booking.models import BlacklistEntry

    return BlacklistEntry(
        hospital_id=world.hospital.id,
        patient_id=patient_id,
        reason="爽约",
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(days=30),
        created_by="test",
        created_at=NOW,
    )


async def read(ctx: AppContext, world: World, patients: list[Any]) -> list[waitlist.WaitlistView]:
    async with ctx.db.read() as s:
        return await waitlist.entries_for_patients(
            s, hospital_id=world.hospital.id, patient_ids=[p.id for p in patients]
        )


def by_patient(views: list[waitlist.WaitlistView], patients: list[Any]) -> list[Any]:
    """The newest entry of each patient, in the patients' order."""
    newest: dict[Any, Any] = {}
    for view in sorted(views, key=lambda v: v.created_at):
        newest[view.patient_id] = view
    return [newest[p.id] for p in patients]


async def cancel(ctx: AppContext, world: World, appointment_id: Any, *, now: Any) -> Any:
    return await call(
        ctx,
        booking_service.cancel,
        actor=channel_actor(world),
        appointment_id=appointment_id,
        note=None,
        now=now,
    )


async def appointment(ctx: AppContext, appointment_id: Any) -> Appointment:
    async with ctx.db.read() as s:
        found = await s.get(Appointment, appointment_id)
    assert found is not None
    return found


def advance(ctx: AppContext, delta: timedelta) -> None:
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    clock.advance(delta)


def system(world: World) -> Any:
    from yuyue.staff.rules import system_actor

    return system_actor(world.hospital.id, "test")
