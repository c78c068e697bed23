"""The voucher page shows the patient's live place in the line once checked in, and when to
leave home before that (where the hospital turned it on)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests import factories as f
from tests.conftest import NOW, World
from tests.portal.conftest import Browser
from tests.portal.test_journey_pages import add_patient, book_directly, patient_named
from yuyue.kit.clock import FixedClock
from yuyue.scheduling.enums import Channel
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, ActorKind
from yuyue.visits import service as visits
from yuyue.visits.models import VisitPolicy
from yuyue.web.context import AppContext

# Monday 08:30 in Shanghai: check-in is open for the slots until 09:30.
MORNING = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
# Monday 06:30: nobody has left home yet.
EARLY = datetime(2026, 11, 22, 22, 30, tzinfo=UTC)


def nurse(world: World) -> Actor:
    return Actor(
        hospital_id=world.hospital.id,
        kind=ActorKind.STAFF,
        id="nurse-1",
        channel=Channel.WINDOW,
        roles=frozenset({Role.NURSE}),
        name="nurse",
    )


async def check_in(ctx: AppContext, world: World, appointment_id) -> None:
    async with ctx.db.session_scope() as s:
        await visits.check_in(s, actor=nurse(world), appointment_id=appointment_id, now=MORNING)


class TestLivePosition:
    async def test_checked_in_patient_sees_people_ahead_and_the_come_back_notice(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        await add_patient(signed_in, "王建国")
        father = await patient_named(ctx, "王建国")
        async with ctx.db.session_scope() as s:
            others = [
                await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
                for _ in range(5)
            ]
        ahead = [await book_directly(ctx, world, p.id, world.session.id) for p in others]
        mine = await book_directly(ctx, world, father.id, world.session.id)
        clock = ctx.clock
        assert isinstance(clock, FixedClock)
        clock.set(MORNING)
        for appointment in ahead:
            await check_in(ctx, world, appointment.id)
        await check_in(ctx, world, mine.id)

        page = await signed_in.page(f"/appointments/{mine.id}")
        assert 'data-testid="live-position"' in page.text
        assert "前面还有 5 人" in page.text
        assert 'data-testid="live-notice"' not in page.text
        assert f'data-live="/appointments/{mine.id}/live"' in page.text

        async with ctx.db.session_scope() as s:
            doctor = Actor(
                hospital_id=world.hospital.id,
                kind=ActorKind.STAFF,
                id="doctor-1",
                channel=nurse(world).channel,
                roles=frozenset({Role.DOCTOR}),
                name="doctor",
                doctor_id=world.doctor.id,
            )
            for _ in range(2):
                await visits.call_next(s, actor=doctor, session_id=world.session.id, now=MORNING)
        page = await signed_in.page(f"/appointments/{mine.id}")
        assert "前面还有 3 人" in page.text
        assert 'data-testid="live-notice"' in page.text and "快到您了" in page.text

    async def test_leave_home_notice_before_check_in_when_turned_on(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        await add_patient(signed_in, "王建国")
        father = await patient_named(ctx, "王建国")
        mine = await book_directly(ctx, world, father.id, world.session.id)
        clock = ctx.clock
        assert isinstance(clock, FixedClock)
        clock.set(EARLY)
        page = await signed_in.page(f"/appointments/{mine.id}")
        assert 'data-testid="leave-home"' not in page.text  # off by default
        async with ctx.db.session_scope() as s:
            s.add(VisitPolicy(hospital_id=world.hospital.id, travel_minutes=45))
        page = await signed_in.page(f"/appointments/{mine.id}")
        assert 'data-testid="leave-home"' in page.text
        assert "07:15" in page.text  # the 08:00 slot less 45 minutes

    async def test_someone_elses_live_stream_is_not_yours(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        theirs = await book_directly(ctx, world, world.patient.id, world.session.id)
        response = await signed_in.page(f"/appointments/{theirs.id}/live")
        assert response.status_code == 404
        assert "text/event-stream" not in response.headers.get("content-type", "")
