"""The patient pages never offer what the web channel cannot book now: schedules, the
session page, the confirmation step and the choices for a new time all follow the
listing's answer (`booking.rules.bookability`), the same the API gives.

The world's session is Monday 2026-11-23 08:00–12:00 in Shanghai; advance booking closes
Sunday 16:00 and same-day registration opens Monday 07:00.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.portal.conftest import Browser
from tests.portal.test_pages import account_patient, add_father
from yuyue.booking import service as booking_service
from yuyue.kit.clock import FixedClock
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import ClinicSession, SlotPool
from yuyue.staff.rules import system_actor
from yuyue.web.context import AppContext

EVENING_BEFORE = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)  # Sunday 18:00
EARLY_MORNING = datetime(2026, 11, 22, 22, 59, tzinfo=UTC)  # Monday 06:59
SAME_DAY_OPENS = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # Monday 07:00
GAP = pytest.mark.parametrize(
    "moment", [EVENING_BEFORE, EARLY_MORNING], ids=["18:00-the-day-before", "06:59-on-the-day"]
)
OPENS_ZH = "11月23日 周一 07:00 开放预约"


def session_line(page: str, session_id: uuid.UUID) -> str:
    """The schedule line (the link and its badge) of one session."""
    found = re.search(rf'<a [^>]*href="/sessions/{session_id}"[^>]*>.*?</a>', page, re.S)
    assert found, f"no line for {session_id}"
    return found.group(0)


async def make_session_on(
    ctx: AppContext, world: World, *, days_after_visit: int, capacity: int = 25
) -> ClinicSession:
    async with ctx.db.session_scope() as s:
        return await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.free_level,
            doctor=world.doctor,
            day=VISIT_DAY + timedelta(days=days_after_visit),
            capacity=capacity,
            now=NOW,
        )


class TestSchedulesInTheGap:
    @GAP
    async def test_department_and_doctor_schedules_say_when_booking_opens(
        self, portal: Browser, clock: FixedClock, world: World, moment: datetime
    ) -> None:
        clock.set(moment)

        for path in (f"/departments/{world.department.id}", f"/doctors/{world.doctor.id}"):
            page = await portal.page(path)
            line = session_line(page.text, world.session.id)
            assert 'data-state="same_day_later"' in line, path
            assert OPENS_ZH in line and "余 " not in line, path

    async def test_in_english_too(self, portal: Browser, clock: FixedClock, world: World) -> None:
        clock.set(EVENING_BEFORE)
        portal.http.cookies.set("yuyue_lang", "en")

        page = await portal.page(f"/doctors/{world.doctor.id}")

        assert "Opens at Mon 23 Nov 07:00" in session_line(page.text, world.session.id)

    async def test_when_bookable_the_schedule_shows_the_places_left(
        self, portal: Browser, clock: FixedClock, world: World
    ) -> None:
        for moment in (NOW, SAME_DAY_OPENS):
            clock.set(moment)
            page = await portal.page(f"/departments/{world.department.id}")
            line = session_line(page.text, world.session.id)
            assert 'data-state="open"' in line and "余 " in line
            assert "开放预约" not in line


class TestSessionPageInTheGap:
    @GAP
    async def test_no_time_or_button_is_offered_only_when_it_opens(
        self, signed_in: Browser, ctx: AppContext, clock: FixedClock, world: World, moment: datetime
    ) -> None:
        await add_father(signed_in)
        clock.set(moment)

        page = await signed_in.page(f"/sessions/{world.session.id}")

        assert page.status_code == 200
        assert 'data-testid="opens-at"' in page.text
        assert "当日挂号将于 11月23日 周一 07:00 开放预约" in page.text
        assert 'data-testid="slot"' not in page.text and 'data-testid="next"' not in page.text
        assert f'action="/sessions/{world.session.id}/confirm"' not in page.text

    @GAP
    async def test_the_confirmation_step_sends_you_back(
        self, signed_in: Browser, ctx: AppContext, clock: FixedClock, world: World, moment: datetime
    ) -> None:
        await add_father(signed_in)
        father = await account_patient(ctx, "王建国")
        clock.set(moment)

        response = await signed_in.page(
            f"/sessions/{world.session.id}/confirm", params={"patient": str(father.id)}
        )

        assert response.status_code == 303
        assert response.headers["location"] == f"/sessions/{world.session.id}"

    async def test_at_same_day_opening_the_page_books_again(
        self, signed_in: Browser, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        await add_father(signed_in)
        clock.set(SAME_DAY_OPENS)

        page = await signed_in.page(f"/sessions/{world.session.id}")

        assert 'data-testid="next"' in page.text and 'data-testid="opens-at"' not in page.text
        enabled = re.findall(r'<input[^>]*data-testid="slot"[^>]*>', page.text)
        assert enabled and any("disabled" not in tag for tag in enabled)


class TestRescheduleInTheGap:
    @GAP
    async def test_only_sessions_bookable_now_are_offered_as_a_new_time(
        self, signed_in: Browser, ctx: AppContext, clock: FixedClock, world: World, moment: datetime
    ) -> None:
        await add_father(signed_in)
        father = await account_patient(ctx, "王建国")
        tuesday = await make_session_on(ctx, world, days_after_visit=1)
        wednesday = await make_session_on(ctx, world, days_after_visit=2)
        async with ctx.db.session_scope() as s:
            booked = await booking_service.book(
                s,
                actor=replace(system_actor(world.hospital.id), channel=Channel.WEB),
                patient_id=father.id,
                session_id=wednesday.id,
                slot_id=None,
                now=NOW,
            )
        appointment = booked.appointment.id
        clock.set(moment)

        choices = await signed_in.page(f"/appointments/{appointment}/reschedule")

        offered = re.findall(r'/reschedule/([0-9a-f-]{36})"', choices.text)
        assert str(tuesday.id) in offered
        assert str(world.session.id) not in offered
        slots_page = await signed_in.page(
            f"/appointments/{appointment}/reschedule/{world.session.id}"
        )
        assert 'data-testid="opens-at"' in slots_page.text
        assert 'data-testid="confirm-reschedule"' not in slots_page.text


class TestFullSessionPage:
    async def test_a_full_session_offers_the_nearest_alternatives_and_the_waitlist(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        await add_father(signed_in)
        later = await make_session_on(ctx, world, days_after_visit=1)
        async with ctx.db.session_scope() as s:
            await s.execute(
                update(SlotPool)
                .where(SlotPool.session_id == world.session.id)
                .values(taken=SlotPool.capacity)
            )

        page = await signed_in.page(f"/sessions/{world.session.id}")

        assert "该出诊已约满" in page.text
        alternatives = re.search(r'data-testid="alternatives".*?</ul>', page.text, re.S)
        assert alternatives and f'href="/sessions/{later.id}"' in alternatives.group(0)
        assert 'data-testid="join-waitlist"' in page.text
        assert 'data-testid="next"' not in page.text
