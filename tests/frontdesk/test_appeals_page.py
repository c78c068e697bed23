"""Registrars decide no-show appeals on a page: accept lifts the ban, reject needs a note;
other roles cannot open it; bad input changes nothing."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tests.attendance.test_api import appeal, ban_world_patient
from tests.conftest import NOW
from tests.frontdesk.test_pages import Floor, floor, http, staff  # noqa: F401  (fixtures)
from tests.helpers import row_counts
from yuyue.attendance.models import AppealStatus, BlacklistAppeal
from yuyue.booking.models import BlacklistEntry
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role


async def registrar(floor: Floor, http: httpx.AsyncClient):  # noqa: F811
    async with floor.ctx.db.session_scope() as s:
        await staff_service.create_staff(
            s,
            hospital_id=floor.world.hospital.id,
            username="registrar",
            display_name="registrar",
            password="secret-pass",
            roles=[Role.REGISTRAR],
            now=NOW,
        )
    return await staff(http, "registrar")


class TestAppealsPage:
    async def test_accepting_lifts_the_ban(self, floor: Floor, http: httpx.AsyncClient) -> None:  # noqa: F811
        entry_id = await ban_world_patient(floor.ctx, floor.world)
        appeal_id = await appeal(floor.ctx, floor.world, entry_id, "那天孩子突发高烧，实在去不了。")
        desk = await registrar(floor, http)
        assert 'data-testid="appeals-link"' in (await desk.page("/desk")).text
        page = await desk.page("/desk/appeals")
        assert page.status_code == 200
        assert 'data-testid="appeal"' in page.text and "孩子突发高烧" in page.text
        done = await desk.submit(f"/desk/appeals/{appeal_id}/decide", {"decision": "accept"})
        assert done.status_code == 303
        async with floor.ctx.db.read() as s:
            entry = await s.get(BlacklistEntry, entry_id)
            decided = await s.get(BlacklistAppeal, appeal_id)
        assert entry is not None and entry.lifted_at is not None
        assert decided is not None and decided.status == AppealStatus.ACCEPTED
        assert "孩子突发高烧" not in (await desk.page("/desk/appeals")).text.split("最近处理")[0]

    async def test_rejecting_without_a_note_or_nonsense_changes_nothing(
        self,
        floor: Floor,  # noqa: F811
        http: httpx.AsyncClient,  # noqa: F811
    ) -> None:
        entry_id = await ban_world_patient(floor.ctx, floor.world)
        appeal_id = await appeal(floor.ctx, floor.world, entry_id, "我当天在外地出差，无法赶回。")
        desk = await registrar(floor, http)
        await desk.page("/desk/appeals")
        before = await row_counts(floor.ctx.db)
        for data in ({"decision": "reject"}, {"decision": "maybe"}):
            refused = await desk.submit(f"/desk/appeals/{appeal_id}/decide", data)
            assert refused.status_code in (409, 422), refused.text
            assert 'role="alert"' in refused.text
        assert await row_counts(floor.ctx.db) == before
        async with floor.ctx.db.read() as s:
            still = await s.scalar(
                select(BlacklistEntry.lifted_at).where(BlacklistEntry.id == entry_id)
            )
        assert still is None

    async def test_a_nurse_cannot_open_it(self, floor: Floor, http: httpx.AsyncClient) -> None:  # noqa: F811
        nurse = await staff(http, "nurse")
        assert (await nurse.page("/desk/appeals")).status_code == 403
