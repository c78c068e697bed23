"""Two nurses moving the same patient at the same moment leave one consistent line; walk-ins
registered at the same moment are numbered without gaps."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.visits import support as v
from yuyue.kit.clock import FixedClock
from yuyue.staff.models import AuditEntry
from yuyue.visits import service
from yuyue.visits.models import Visit
from yuyue.visits.rules import AppointmentUnpaid
from yuyue.web.context import AppContext


class TestConcurrentMoves:
    async def test_two_nurses_moving_the_same_patient_leave_a_consistent_line(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        names = ["甲一", "乙二", "丙三", "丁四"]
        booked = [
            await v.book(ctx, world, ordinal=o, name=n)
            for o, n in zip((0, 0, 1, 2), names, strict=True)
        ]
        clock.set(v.local(8, 29))
        for appointment in booked:
            async with ctx.db.session_scope() as s:
                await service.check_in_by_token(
                    s,
                    actor=v.kiosk(world),
                    token=v.token(ctx, appointment),
                    signer=ctx.voucher_signer,
                    now=ctx.clock.now(),
                )
        a, b, c, d = (x.id for x in await v.visits_in_line(ctx, world))

        def mover(**target: uuid.UUID) -> Callable[[AsyncSession], Awaitable[None]]:
            async def work(session: AsyncSession) -> None:
                await service.move(
                    session,
                    actor=v.nurse(world),
                    visit_id=d,
                    reason="护士调整",
                    now=v.local(8, 40),
                    **target,
                )

            return work

        for _ in range(5):
            await asyncio.gather(
                ctx.db.transact(mover(before=a)),
                ctx.db.transact(mover(after=b)),
            )
            line = await v.visits_in_line(ctx, world)
            assert [x.position for x in line] == [1, 2, 3, 4]
            # Applied one after the other: whichever came last decides.
            assert [x.id for x in line] in ([d, a, b, c], [a, b, d, c])
        async with ctx.db.read() as s:
            moves = await s.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "move")
            )
        assert moves == 10


class TestConcurrentWalkIns:
    async def test_walk_ins_at_once_are_numbered_one_to_n_and_refusals_burn_none(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        """Six desks register walk-ins into one paid session at the same moment, and three
        more are refused for want of a receipt: the six get 1..6, none twice, none skipped."""
        async with ctx.db.session_scope() as s:
            paid = await f.make_session(
                s,
                hospital=world.hospital,
                department=world.department,
                level=world.fee_level,
                day=VISIT_DAY,
                start=time(13, 30),
                end=time(17, 0),
                now=NOW,
            )
            patients = [
                (
                    await f.make_patient(
                        s,
                        hospital=world.hospital,
                        cipher=ctx.cipher,
                        now=NOW,
                        name="现场" + "甲乙丙丁戊己庚辛壬"[i],
                    )
                ).id
                for i in range(9)
            ]
        clock.set(v.local(13, 0))

        def registrar(patient_id: uuid.UUID, receipt: str | None) -> Callable[..., Any]:
            async def work(session: AsyncSession) -> int:
                checked = await service.walk_in(
                    session,
                    actor=v.nurse(world),
                    patient_id=patient_id,
                    session_id=paid.id,
                    slot_id=None,
                    now=ctx.clock.now(),
                    payment_reference=receipt,
                )
                return checked.visit.queue_number

            return work

        results = await asyncio.gather(
            *(
                ctx.db.transact(registrar(p, None if i % 3 == 2 else f"R{i}"))
                for i, p in enumerate(patients)
            ),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(refused) == 3 and all(isinstance(r, AppointmentUnpaid) for r in refused)
        assert sorted(r for r in results if isinstance(r, int)) == [1, 2, 3, 4, 5, 6]
        async with ctx.db.read() as s:
            numbers = (
                await s.scalars(
                    select(Visit.queue_number)
                    .where(Visit.session_id == paid.id, Visit.walk_in)
                    .order_by(Visit.checked_in_at, Visit.queue_number)
                )
            ).all()
        assert sorted(numbers) == [1, 2, 3, 4, 5, 6]
        # The next one, after the refusals, continues the run.
        assert await ctx.db.transact(registrar(patients[2], "R-late")) == 7
