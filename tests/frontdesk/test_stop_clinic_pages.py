"""The stop-clinic wizard over HTTP: the outpatient office picks a session, sees its bookings,
previews the stop with a substitute (nothing changes), then confirms it."""

from __future__ import annotations

from datetime import time

import httpx
from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY
from tests.frontdesk.test_pages import Floor, book, floor, http, staff  # noqa: F401  (fixtures)
from tests.helpers import row_counts
from yuyue.booking.models import Appointment
from yuyue.booking.states import ACTIVE_STATUSES
from yuyue.scheduling.models import ClinicSession

PAGE = "/desk/stop-clinic"


async def colleague(floor: Floor) -> ClinicSession:  # noqa: F811
    world = floor.world
    async with floor.ctx.db.session_scope() as s:
        doctor = await f.make_doctor(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.free_level,
            name="李医生",
        )
        return await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.free_level,
            doctor=doctor,
            day=VISIT_DAY,
            start=time(8, 0),
            end=time(12, 0),
            now=NOW,
        )


async def active_in(floor: Floor, session_id: object) -> list[Appointment]:  # noqa: F811
    async with floor.ctx.db.read() as s:
        return list(
            (
                await s.scalars(
                    select(Appointment).where(
                        Appointment.session_id == session_id,
                        Appointment.status.in_(ACTIVE_STATUSES),
                    )
                )
            ).all()
        )


class TestStopClinicWizard:
    async def test_the_office_previews_then_stops_a_clinic_with_a_substitute(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        substitute = await colleague(floor)
        booked = await book(floor)
        office = await staff(http, "scheduler")
        listed = await office.page(f"{PAGE}?day={VISIT_DAY.isoformat()}")
        assert listed.status_code == 200
        assert f'href="{PAGE}/{floor.world.session.id}"' in listed.text
        wizard = await office.page(f"{PAGE}/{floor.world.session.id}")
        assert wizard.status_code == 200
        assert wizard.text.count('data-testid="stop-booking"') == 1
        assert "张三" not in wizard.text and "张*" in wizard.text  # names masked
        assert f'value="{substitute.id}"' in wizard.text and "李医生" in wizard.text

        before = await row_counts(floor.ctx.db)
        preview = await office.submit(
            f"{PAGE}/{floor.world.session.id}/preview",
            {"substitute": str(substitute.id), "reason": "医生临时外出会诊"},
        )
        assert preview.status_code == 200, preview.text
        assert 'data-testid="stop-plan-summary"' in preview.text
        assert "号序和时间不变" in preview.text
        assert await row_counts(floor.ctx.db) == before  # a preview changes nothing

        stopped = await office.submit(
            f"{PAGE}/{floor.world.session.id}",
            {"substitute": str(substitute.id), "reason": "医生临时外出会诊"},
        )
        assert stopped.status_code == 303, stopped.text
        after = await office.page(stopped.headers["location"])
        assert "已停诊：1 个预约由替诊医生接诊，0 个已取消" in after.text
        [moved] = await active_in(floor, substitute.id)
        assert moved.patient_id == booked.patient_id
        assert moved.sequence_number == booked.sequence_number
        assert await active_in(floor, floor.world.session.id) == []

    async def test_without_a_substitute_every_booking_is_cancelled(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        await book(floor)
        office = await staff(http, "scheduler")
        await office.page(f"{PAGE}/{floor.world.session.id}")
        stopped = await office.submit(
            f"{PAGE}/{floor.world.session.id}", {"substitute": "none", "reason": "医生出差"}
        )
        assert stopped.status_code == 303, stopped.text
        after = await office.page(stopped.headers["location"])
        assert "0 个预约由替诊医生接诊，1 个已取消" in after.text
        assert await active_in(floor, floor.world.session.id) == []

    async def test_a_missing_reason_is_refused_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        await book(floor)
        office = await staff(http, "scheduler")
        await office.page(f"{PAGE}/{floor.world.session.id}")
        before = await row_counts(floor.ctx.db)
        refused = await office.submit(
            f"{PAGE}/{floor.world.session.id}", {"substitute": "none", "reason": " "}
        )
        assert refused.status_code == 422
        assert "请填写停诊原因" in refused.text
        assert await row_counts(floor.ctx.db) == before

    async def test_an_unsuitable_substitute_is_explained_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        await book(floor)
        office = await staff(http, "scheduler")
        await office.page(f"{PAGE}/{floor.world.session.id}")
        before = await row_counts(floor.ctx.db)
        refused = await office.submit(
            f"{PAGE}/{floor.world.session.id}",
            {"substitute": str(floor.world.session.id), "reason": "医生出差"},
        )
        assert refused.status_code == 409
        assert "不能由该出诊替诊" in refused.text
        assert await row_counts(floor.ctx.db) == before

    async def test_only_the_office_may_stop_clinics(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        await book(floor)
        nurse = await staff(http, "nurse")
        assert (await nurse.page(PAGE)).status_code == 403
        await nurse.page("/desk")
        before = await row_counts(floor.ctx.db)
        refused = await nurse.submit(
            f"{PAGE}/{floor.world.session.id}", {"substitute": "none", "reason": "医生出差"}
        )
        assert refused.status_code == 403
        assert await row_counts(floor.ctx.db) == before

    async def test_a_form_without_its_token_is_refused(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        await book(floor)
        await staff(http, "scheduler")
        before = await row_counts(floor.ctx.db)
        forged = await http.post(
            f"{PAGE}/{floor.world.session.id}", data={"substitute": "none", "reason": "医生出差"}
        )
        assert forged.status_code == 403
        assert await row_counts(floor.ctx.db) == before
