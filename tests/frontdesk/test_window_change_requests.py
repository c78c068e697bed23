"""Asking for a change from the window's slip (审批): a registrar asks a supervisor to move a
confirmed booking to another session of the department, or to give it to another patient.
The booking stays as it is until a supervisor approves; bad input is a sentence on the page
and files nothing."""

from __future__ import annotations

import uuid
from datetime import time, timedelta

import httpx
import pytest_asyncio
from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY
from tests.frontdesk.test_pages import Floor, book, floor, http, staff  # noqa: F401  (fixtures)
from tests.frontdesk.test_window_pages import audit, registrar_floor  # noqa: F401  (fixture)
from tests.helpers import row_counts
from yuyue.booking.models import Appointment, ChangeRequest
from yuyue.scheduling.models import ClinicSession

PAGE = "/desk/window/appointments"


@pytest_asyncio.fixture
async def later_session(registrar_floor: Floor) -> ClinicSession:  # noqa: F811
    """The same department the next afternoon, with room: where a booking may move."""
    world = registrar_floor.world
    async with registrar_floor.ctx.db.session_scope() as s:
        return await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.free_level,
            doctor=world.doctor,
            day=VISIT_DAY + timedelta(days=1),
            start=time(13, 30),
            end=time(17, 0),
            now=NOW,
        )


async def requests_of(floor: Floor, appointment_id: uuid.UUID) -> list[ChangeRequest]:  # noqa: F811
    async with floor.ctx.db.read() as s:
        rows = await s.scalars(
            select(ChangeRequest).where(ChangeRequest.appointment_id == appointment_id)
        )
        return list(rows.all())


async def status_and_session(floor: Floor, appointment_id: uuid.UUID) -> tuple[str, uuid.UUID]:  # noqa: F811
    async with floor.ctx.db.read() as s:
        found = await s.get(Appointment, appointment_id)
    assert found is not None
    return found.status, found.session_id


class TestAskForAChangeFromTheSlip:
    async def test_the_slip_offers_the_departments_sessions_with_room(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,  # noqa: F811
        later_session: ClinicSession,
    ) -> None:
        booked = await book(registrar_floor)
        window = await staff(http, "registrar")
        slip = await window.page(f"{PAGE}/{booked.id}")
        assert slip.status_code == 200
        assert 'data-testid="change-form"' in slip.text
        assert f'value="{later_session.id}"' in slip.text
        # The booking's own session is no place to move to.
        assert f'value="{registrar_floor.world.session.id}"' not in slip.text

    async def test_a_move_is_filed_for_a_supervisor_and_the_booking_stays(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,  # noqa: F811
        later_session: ClinicSession,
    ) -> None:
        booked = await book(registrar_floor)
        window = await staff(http, "registrar")
        await window.page(f"{PAGE}/{booked.id}")
        asked = await window.submit(
            f"{PAGE}/{booked.id}/change-request",
            {"kind": "move", "target": str(later_session.id), "reason": "患者周一要出差"},
        )
        assert asked.status_code == 303, asked.text
        assert asked.headers["location"].endswith("?done=change_requested")
        shown = await window.page(asked.headers["location"])
        assert "申请已提交，值班主管批准后生效" in shown.text
        [request] = await requests_of(registrar_floor, booked.id)
        assert (request.kind, request.state) == ("move", "pending")
        assert request.details["session_id"] == str(later_session.id)
        assert request.reason == "患者周一要出差"
        assert await status_and_session(registrar_floor, booked.id) == (
            "booked",
            registrar_floor.world.session.id,
        )
        assert await audit(registrar_floor, "change_request.created")

    async def test_a_change_of_patient_is_found_by_id_number_and_filed(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,  # noqa: F811
    ) -> None:
        booked = await book(registrar_floor)
        other = registrar_floor.world.other_patient
        number = registrar_floor.ctx.cipher.decrypt(other.id_cipher)
        window = await staff(http, "registrar")
        await window.page(f"{PAGE}/{booked.id}")
        asked = await window.submit(
            f"{PAGE}/{booked.id}/change-request",
            {"kind": "change_patient", "new_patient": number, "reason": "家属挂错了就诊人"},
        )
        assert asked.status_code == 303, asked.text
        [request] = await requests_of(registrar_floor, booked.id)
        assert (request.kind, request.details) == ("change_patient", {"patient_id": str(other.id)})
        status, _ = await status_and_session(registrar_floor, booked.id)
        assert status == "booked"

    async def test_bad_requests_are_sentences_and_file_nothing(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,  # noqa: F811
        later_session: ClinicSession,
    ) -> None:
        booked = await book(registrar_floor)
        window = await staff(http, "registrar")
        await window.page(f"{PAGE}/{booked.id}")
        before = await row_counts(registrar_floor.ctx.db)
        cases = [
            ({"kind": "move", "target": "", "reason": "患者要改期"}, 422, "请选择改约到的出诊"),
            ({"kind": "refund_everyone", "reason": "患者要改期"}, 422, "请选择改约到的出诊"),
            (
                {"kind": "move", "target": str(later_session.id), "reason": "x"},
                422,
                "请填写更改原因",
            ),
            (
                {"kind": "change_patient", "new_patient": "13800000000", "reason": "挂错人"},
                404,
                "没有找到该就诊人",
            ),
            (
                {"kind": "change_patient", "new_patient": "", "reason": "挂错人"},
                422,
                "",
            ),
            (
                {"kind": "move", "target": str(uuid.uuid4()), "reason": "患者要改期"},
                404,
                "",
            ),
        ]
        for form, status, sentence in cases:
            refused = await window.submit(f"{PAGE}/{booked.id}/change-request", form)
            assert refused.status_code == status, (form, refused.text)
            assert sentence in refused.text
            assert 'data-testid="slip"' in refused.text  # back on the slip
        assert await row_counts(registrar_floor.ctx.db) == before

    async def test_a_second_request_waits_for_the_first(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,  # noqa: F811
        later_session: ClinicSession,
    ) -> None:
        booked = await book(registrar_floor)
        window = await staff(http, "registrar")
        await window.page(f"{PAGE}/{booked.id}")
        form = {"kind": "move", "target": str(later_session.id), "reason": "患者要改期"}
        first = await window.submit(f"{PAGE}/{booked.id}/change-request", form)
        assert first.status_code == 303
        before = await row_counts(registrar_floor.ctx.db)
        again = await window.submit(f"{PAGE}/{booked.id}/change-request", form)
        assert again.status_code == 409
        assert await row_counts(registrar_floor.ctx.db) == before
        assert len(await requests_of(registrar_floor, booked.id)) == 1

    async def test_only_a_registrar_may_ask(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,  # noqa: F811
        later_session: ClinicSession,
    ) -> None:
        booked = await book(registrar_floor)
        nurse = await staff(http, "nurse")
        await nurse.page("/desk")
        before = await row_counts(registrar_floor.ctx.db)
        refused = await nurse.submit(
            f"{PAGE}/{booked.id}/change-request",
            {"kind": "move", "target": str(later_session.id), "reason": "患者要改期"},
        )
        assert refused.status_code == 403
        assert await row_counts(registrar_floor.ctx.db) == before
