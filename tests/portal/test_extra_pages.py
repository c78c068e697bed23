"""Extra clinics and extra places (加诊 / 加号) are shown to patients as such: the session
page marks an extra session and the slots with extra places left, and the voucher of a
booking in an extra place says so."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import time

from sqlalchemy import update

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.portal.conftest import HOLDER_PHONE, Browser
from tests.visits import support
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.scheduling import service as scheduling_service
from yuyue.scheduling.enums import Channel, Period
from yuyue.scheduling.models import SlotPool
from yuyue.staff.enums import Role
from yuyue.staff.rules import system_actor
from yuyue.web.context import AppContext


async def add_places(ctx: AppContext, world: World, count: int, pool: str = "appointment") -> None:
    async with ctx.db.session_scope() as s:
        await booking_service.add_extra_places(
            s,
            actor=support.staff(world, Role.SCHEDULER, name="排班"),
            session_id=world.session.id,
            count=count,
            pool=pool,
            slot_id=None,
            now=NOW,
        )


class TestExtraPlaces:
    async def test_the_slot_with_extra_places_is_marked_and_the_others_are_not(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        before = await signed_in.page(f"/sessions/{world.session.id}")
        assert 'data-testid="extra-places"' not in before.text
        await add_places(ctx, world, 2)
        page = await signed_in.page(f"/sessions/{world.session.id}")
        assert page.text.count('data-testid="extra-places"') == 1
        assert "含加号 2 个" in page.text
        # On-site extra places are no business of the web: not marked there.
        await add_places(ctx, world, 3, pool="onsite")
        again = await signed_in.page(f"/sessions/{world.session.id}")
        assert "含加号 2 个" in again.text and "含加号 3 个" not in again.text

    async def test_a_booking_in_an_extra_place_says_so_on_the_voucher(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            patient = await f.make_patient(
                s, hospital=world.hospital, cipher=ctx.cipher, now=NOW, account_phone=HOLDER_PHONE
            )
        regular = await self._book(ctx, world, patient.id)
        await add_places(ctx, world, 1)
        async with ctx.db.session_scope() as s:
            # Only the extra place is left to book.
            await s.execute(
                update(SlotPool)
                .where(SlotPool.session_id == world.session.id, SlotPool.is_extra.is_(False))
                .values(is_open=False)
            )
            other = await f.make_patient(
                s,
                hospital=world.hospital,
                cipher=ctx.cipher,
                now=NOW,
                name="冯十二",
                account_phone=HOLDER_PHONE,
            )
        extra = await self._book(ctx, world, other.id)
        async with ctx.db.read() as s:
            assert await scheduling_service.is_extra_place(s, pool_id=extra.pool_id)
            assert not await scheduling_service.is_extra_place(s, pool_id=regular.pool_id)
        shown = await signed_in.page(f"/appointments/{extra.id}")
        assert re.search(r'data-testid="extra-place">加号<', shown.text), shown.text
        plain = await signed_in.page(f"/appointments/{regular.id}")
        assert 'data-testid="extra-place"' not in plain.text

    @staticmethod
    async def _book(ctx: AppContext, world: World, patient_id: uuid.UUID) -> Appointment:
        actor = replace(system_actor(world.hospital.id, "test"), channel=Channel.WEB)
        async with ctx.db.session_scope() as s:
            booked = await booking_service.book(
                s,
                actor=actor,
                patient_id=patient_id,
                session_id=world.session.id,
                slot_id=None,
                now=NOW,
            )
        async with ctx.db.read() as s:
            found = await s.get(Appointment, booked.appointment.id)
        assert found is not None
        return found


class TestExtraSessions:
    async def test_an_extra_session_is_marked_on_its_page_and_in_the_schedule(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            extra = await scheduling_service.add_extra_session(
                s,
                actor=support.staff(world, Role.SCHEDULER, name="排班"),
                shape=scheduling_service.SessionShape(
                    department_id=world.department.id,
                    doctor_id=world.doctor.id,
                    level_id=world.free_level.id,
                    date=VISIT_DAY,
                    period=Period.EVENING,
                    start_time=time(18, 0),
                    end_time=time(20, 0),
                    capacity=8,
                    slot_minutes=30,
                ),
                today=NOW.date(),
                now=NOW,
            )
        page = await signed_in.page(f"/sessions/{extra.id}")
        assert "加诊" in page.text
        regular = await signed_in.page(f"/sessions/{world.session.id}")
        assert "加诊" not in regular.text
