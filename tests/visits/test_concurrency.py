"""Two nurses moving the same patient at the same moment leave one consistent line."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import World
from tests.visits import support as v
from yuyue.kit.clock import FixedClock
from yuyue.staff.models import AuditEntry
from yuyue.visits import service
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
