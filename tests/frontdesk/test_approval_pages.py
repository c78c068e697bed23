"""The approvals page over HTTP: a supervisor approves or rejects what a registrar asked;
the one who asked may withdraw it; others are refused and nothing changes."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from tests.conftest import NOW
from tests.frontdesk.test_pages import Floor, book, floor, http, staff  # noqa: F401  (fixtures)
from tests.helpers import row_counts
from yuyue.booking import approvals
from yuyue.booking.models import Appointment, ChangeRequest
from yuyue.booking.rules import ChangeKind
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role
from yuyue.staff.models import StaffUser
from yuyue.staff.rules import STAFF_CHANNEL, Actor, ActorKind
from yuyue.web.context import AppContext

PAGE = "/desk/approvals"


async def add_staff(floor: Floor, username: str, role: Role) -> None:  # noqa: F811
    async with floor.ctx.db.session_scope() as s:
        await staff_service.create_staff(
            s,
            hospital_id=floor.world.hospital.id,
            username=username,
            display_name=username,
            password="secret-pass",
            roles=[role],
            doctor_id=None,
            now=NOW,
        )


async def asked(floor: Floor, appointment_id: uuid.UUID) -> uuid.UUID:  # noqa: F811
    """A registrar's request to cancel after the deadline, filed through the service."""
    ctx: AppContext = floor.ctx
    async with ctx.db.session_scope() as s:
        registrar = await s.scalar(select(StaffUser.id).where(StaffUser.username == "reg"))
        actor = Actor(
            hospital_id=floor.world.hospital.id,
            kind=ActorKind.STAFF,
            id=str(registrar),
            channel=STAFF_CHANNEL,
            roles=frozenset({Role.REGISTRAR}),
            name="reg",
        )
        request = await approvals.request_change(
            s,
            actor=actor,
            appointment_id=appointment_id,
            kind=ChangeKind.CANCEL_LATE,
            reason="患者突发高烧住院",
            now=ctx.clock.now(),
        )
        return request.id


async def status_of(floor: Floor, appointment_id: uuid.UUID) -> str:  # noqa: F811
    async with floor.ctx.db.read() as s:
        found = await s.get(Appointment, appointment_id)
    assert found is not None
    return found.status


class TestApprovalsPage:
    async def test_a_supervisor_approves_and_the_booking_is_cancelled(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        booked = await book(floor)
        await add_staff(floor, "reg", Role.REGISTRAR)
        await add_staff(floor, "boss", Role.SUPERVISOR)
        request_id = await asked(floor, booked.id)
        boss = await staff(http, "boss")
        page = await boss.page(PAGE)
        assert page.status_code == 200
        assert page.text.count('data-testid="change-request"') == 1
        assert "逾期退号" in page.text and "患者突发高烧住院" in page.text
        done = await boss.submit(f"{PAGE}/{request_id}/approve", {"note": "已核实"})
        assert done.status_code == 303, done.text
        after = await boss.page(done.headers["location"])
        assert "已批准" in after.text
        assert await status_of(floor, booked.id) == "cancelled"

    async def test_rejecting_needs_a_note_and_leaves_the_booking(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        booked = await book(floor)
        await add_staff(floor, "reg", Role.REGISTRAR)
        await add_staff(floor, "boss", Role.SUPERVISOR)
        request_id = await asked(floor, booked.id)
        boss = await staff(http, "boss")
        await boss.page(PAGE)
        before = await row_counts(floor.ctx.db)
        refused = await boss.submit(f"{PAGE}/{request_id}/reject", {"note": ""})
        assert refused.status_code == 422
        assert await row_counts(floor.ctx.db) == before
        done = await boss.submit(f"{PAGE}/{request_id}/reject", {"note": "无证明"})
        assert done.status_code == 303
        assert await status_of(floor, booked.id) == "booked"
        async with floor.ctx.db.read() as s:
            request = await s.get(ChangeRequest, request_id)
        assert request is not None and request.state == "rejected"

    async def test_the_registrar_sees_and_withdraws_but_cannot_approve(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        booked = await book(floor)
        await add_staff(floor, "reg", Role.REGISTRAR)
        request_id = await asked(floor, booked.id)
        reg = await staff(http, "reg")
        page = await reg.page(PAGE)
        assert 'data-testid="approve"' not in page.text
        before = await row_counts(floor.ctx.db)
        refused = await reg.submit(f"{PAGE}/{request_id}/approve", {"note": ""})
        assert refused.status_code == 403
        assert await row_counts(floor.ctx.db) == before
        withdrawn = await reg.submit(f"{PAGE}/{request_id}/withdraw")
        assert withdrawn.status_code == 303
        assert await status_of(floor, booked.id) == "booked"

    async def test_others_are_refused(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        doctor = await staff(http, "doctor")
        assert (await doctor.page(PAGE)).status_code == 403
