"""A doctor calls only their own queue; nurses act on any queue of the hospital."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests import factories as f
from tests.conftest import World
from tests.helpers import row_counts
from tests.visits.support import book, doctor, local, nurse, visits_in_line
from yuyue.kit.errors import Forbidden
from yuyue.visits import service as visits
from yuyue.web.context import AppContext


async def checked_in(ctx: AppContext, world: World) -> None:
    appointment = await book(ctx, world)
    async with ctx.db.session_scope() as s:
        await visits.check_in(
            s, actor=nurse(world), appointment_id=appointment.id, now=local(7, 30)
        )


class TestOwnSessions:
    async def test_another_doctor_cannot_call_or_act_on_this_queue(
        self, ctx: AppContext, world: World
    ) -> None:
        await checked_in(ctx, world)
        async with ctx.db.session_scope() as s:
            colleague = await f.make_doctor(
                s, hospital=world.hospital, department=world.department, level=world.free_level
            )
        stranger = replace(doctor(world), id="staff-other", doctor_id=colleague.id)
        unlinked = replace(doctor(world), id="staff-unlinked", doctor_id=None)
        visit = (await visits_in_line(ctx, world))[0]
        before = await row_counts(ctx.db)
        for actor in (stranger, unlinked):
            with pytest.raises(Forbidden):
                async with ctx.db.session_scope() as s:
                    await visits.call_next(
                        s, actor=actor, session_id=world.session.id, now=local(8)
                    )
            with pytest.raises(Forbidden):
                async with ctx.db.session_scope() as s:
                    await visits.skip(s, actor=actor, visit_id=visit.id, now=local(8))
        assert await row_counts(ctx.db) == before

    async def test_the_sessions_doctor_and_a_nurse_can(self, ctx: AppContext, world: World) -> None:
        await checked_in(ctx, world)
        await checked_in(ctx, world)
        for actor in (doctor(world), nurse(world)):
            async with ctx.db.session_scope() as s:
                called = await visits.call_next(
                    s, actor=actor, session_id=world.session.id, now=local(8)
                )
            assert called.status == "called"
