"""The visit-day pages over HTTP: who may open which page, and every form refusing bad
input with a sentence while changing nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW, World
from tests.helpers import row_counts
from tests.portal.conftest import Browser, sign_in
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.kit.clock import FixedClock
from yuyue.scheduling.enums import Channel, Period
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role
from yuyue.staff.rules import system_actor
from yuyue.visits.models import Visit
from yuyue.web.context import AppContext

# Monday 2026-11-23 08:10 in Shanghai: the world's 08:00–12:00 session is running.
VISIT_MORNING = datetime(2026, 11, 23, 0, 10, tzinfo=UTC)


@dataclass
class Floor:
    app: FastAPI
    ctx: AppContext
    world: World
    kiosk_key: str
    app_key: str


@pytest_asyncio.fixture
async def floor(app: FastAPI, ctx: AppContext, world: World, clock: FixedClock) -> Floor:
    ctx.settings.hospital_code = world.hospital.code
    async with ctx.db.session_scope() as s:
        for username, roles, doctor_id in (
            ("nurse", [Role.NURSE], None),
            ("doctor", [Role.DOCTOR], world.doctor.id),
            ("scheduler", [Role.SCHEDULER], None),
        ):
            await staff_service.create_staff(
                s,
                hospital_id=world.hospital.id,
                username=username,
                display_name=username,
                password="secret-pass",
                roles=roles,
                doctor_id=doctor_id,
                now=NOW,
            )
        kiosk_key = await f.make_api_key(s, hospital=world.hospital, channel=Channel.KIOSK, now=NOW)
    clock.set(VISIT_MORNING)
    return Floor(app, ctx, world, kiosk_key, world.api_key)


@pytest_asyncio.fixture
async def http(floor: Floor) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=floor.app, client=("203.0.113.9", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


SIGN_IN_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


async def sign_in_form(http: httpx.AsyncClient, data: dict[str, str]) -> httpx.Response:
    """Posts the staff sign-in form as a browser does: with the CSRF token of its page."""
    page = await http.get("/staff/signin")
    found = SIGN_IN_CSRF.search(page.text)
    assert found is not None
    return await http.post("/staff/signin", data={"csrf": found.group(1), **data})


async def staff(http: httpx.AsyncClient, username: str) -> Browser:
    signed = await sign_in_form(
        http, {"username": username, "password": "secret-pass", "next": "/"}
    )
    assert signed.status_code == 303, signed.text
    browser = Browser(http)
    return browser


async def kiosk(http: httpx.AsyncClient, floor: Floor) -> Browser:
    saved = await http.post("/kiosk/setup", data={"key": floor.kiosk_key})
    assert saved.status_code == 303, saved.text
    browser = Browser(http)
    page = await browser.page("/kiosk")
    assert page.status_code == 200
    return browser


async def book(floor: Floor) -> Appointment:
    actor = replace(system_actor(floor.world.hospital.id, "test"), channel=Channel.APP)
    async with floor.ctx.db.session_scope() as s:
        booked = await booking_service.book(
            s,
            actor=actor,
            patient_id=floor.world.patient.id,
            session_id=floor.world.session.id,
            slot_id=None,
            now=NOW,
        )
        return booked.appointment


class TestWhoMayOpenWhat:
    @pytest.mark.parametrize("path", ["/desk", "/doctor"])
    async def test_no_cookie_is_sent_to_staff_sign_in(
        self, http: httpx.AsyncClient, path: str
    ) -> None:
        response = await http.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/staff/signin?next={path}"

    async def test_a_device_without_a_kiosk_key_is_sent_to_setup(
        self, http: httpx.AsyncClient
    ) -> None:
        response = await http.get("/kiosk")
        assert response.status_code == 303
        assert response.headers["location"] == "/kiosk/setup"

    async def test_the_screen_needs_staff_or_a_set_up_device(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        path = f"/screens/{floor.world.department.id}"
        assert (await http.get(path)).status_code == 303
        await kiosk(http, floor)
        assert (await http.get(path)).status_code == 200

    async def test_a_patient_cookie_cannot_open_the_desk(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        patient = Browser(http)
        await sign_in(patient, floor.ctx)
        response = await http.get("/desk")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/staff/signin")

    async def test_a_nurse_cannot_open_the_doctor_page(self, http: httpx.AsyncClient) -> None:
        await staff(http, "nurse")
        assert (await http.get("/desk")).status_code == 200
        response = await http.get("/doctor")
        assert response.status_code == 403
        assert "无权" in response.text

    async def test_a_doctor_cannot_open_the_desk(self, http: httpx.AsyncClient) -> None:
        await staff(http, "doctor")
        assert (await http.get("/doctor")).status_code == 200
        assert (await http.get("/desk")).status_code == 403

    async def test_a_scheduler_cannot_open_either(self, http: httpx.AsyncClient) -> None:
        await staff(http, "scheduler")
        assert (await http.get("/desk")).status_code == 403
        assert (await http.get("/doctor")).status_code == 403

    async def test_signing_out_ends_it(self, http: httpx.AsyncClient) -> None:
        nurse = await staff(http, "nurse")
        await nurse.page("/desk")
        assert (await nurse.submit("/staff/signout")).status_code == 303
        assert (await http.get("/desk")).status_code == 303


class TestSignInAndSetup:
    async def test_wrong_password_is_a_sentence(self, http: httpx.AsyncClient) -> None:
        response = await sign_in_form(http, {"username": "nurse", "password": "nope", "next": "/"})
        assert response.status_code == 401
        assert "用户名或密码不正确" in response.text
        assert "yuyue_staff" not in response.headers.get("set-cookie", "")

    async def test_missing_fields_are_a_sentence(self, http: httpx.AsyncClient) -> None:
        response = await sign_in_form(http, {"username": "", "password": ""})
        assert response.status_code == 422
        assert "请填写用户名和密码" in response.text

    async def test_staff_land_on_their_page(self, http: httpx.AsyncClient) -> None:
        signed = await sign_in_form(http, {"username": "doctor", "password": "secret-pass"})
        assert signed.headers["location"] == "/doctor"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie

    async def test_only_a_kiosk_key_sets_up_a_kiosk(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        for key in ("", "yk_not-a-key", floor.app_key):
            response = await http.post("/kiosk/setup", data={"key": key})
            assert response.status_code == 422
            assert "不是自助机密钥" in response.text
        assert (await http.get("/kiosk")).status_code == 303


class TestKiosk:
    async def test_scan_checks_in_and_shows_the_ticket_and_a_second_scan_is_harmless(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        appointment = await book(floor)
        token = await _token(floor, appointment)
        device = await kiosk(http, floor)
        scanned = await device.submit("/kiosk/scan", {"token": token})
        assert scanned.status_code == 303
        ticket_path = scanned.headers["location"]
        ticket = await http.get(ticket_path)
        assert ticket.status_code == 200
        number = re.search(r'data-testid="queue-number">(\d+)<', ticket.text)
        assert number and int(number.group(1)) == appointment.sequence_number
        before = await row_counts(floor.ctx.db)
        again = await device.submit("/kiosk/scan", {"token": token})
        assert again.headers["location"] == ticket_path + "?already=1"
        assert "您已报到" in (await http.get(again.headers["location"])).text
        assert await row_counts(floor.ctx.db) == before

    async def test_code_and_phone_digits_check_in(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        appointment = await book(floor)
        device = await kiosk(http, floor)
        last4 = floor.world.patient.phone_masked[-4:]
        done = await device.submit(
            "/kiosk/code", {"code": appointment.voucher_code, "last4": last4}
        )
        assert done.status_code == 303, done.text
        async with floor.ctx.db.read() as s:
            assert await s.scalar(select(Visit).where(Visit.appointment_id == appointment.id))

    @pytest.mark.parametrize(
        ("form", "sentence"),
        [
            ({"token": ""}, "没有读到二维码"),
            ({"token": "garbage.token"}, "无法识别该预约凭证"),
        ],
    )
    async def test_bad_scans_change_nothing(
        self, http: httpx.AsyncClient, floor: Floor, form: dict[str, str], sentence: str
    ) -> None:
        await book(floor)
        device = await kiosk(http, floor)
        before = await row_counts(floor.ctx.db)
        response = await device.submit("/kiosk/scan", form)
        assert response.status_code in (400, 404, 422)
        assert sentence in response.text
        assert await row_counts(floor.ctx.db) == before

    @pytest.mark.parametrize(
        "form", [{"code": "123", "last4": "1234"}, {"code": "12345678", "last4": "12a4"}, {}]
    )
    async def test_malformed_codes_change_nothing(
        self, http: httpx.AsyncClient, floor: Floor, form: dict[str, str]
    ) -> None:
        device = await kiosk(http, floor)
        before = await row_counts(floor.ctx.db)
        response = await device.submit("/kiosk/code", form)
        assert response.status_code == 422
        assert "请输入 8 位数字预约码" in response.text
        assert await row_counts(floor.ctx.db) == before

    async def test_a_wrong_code_is_counted_and_nothing_else_changes(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        await book(floor)
        device = await kiosk(http, floor)
        before = await row_counts(floor.ctx.db)
        response = await device.submit("/kiosk/code", {"code": "00000000", "last4": "0000"})
        assert "无法识别该预约凭证" in response.text
        after = await row_counts(floor.ctx.db)
        assert after.pop("check_in_failure") == before.pop("check_in_failure") + 1
        assert after == before

    async def test_a_form_without_the_device_token_is_refused(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        await kiosk(http, floor)
        response = await http.post("/kiosk/scan", data={"token": "x"})
        assert response.status_code == 403


class TestDesk:
    async def test_search_by_code_then_check_in(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        appointment = await book(floor)
        nurse = await staff(http, "nurse")
        await nurse.page("/desk")
        found = await nurse.submit("/desk/find", {"q": appointment.voucher_code})
        assert found.status_code == 200, found.text
        assert found.text.count('data-testid="match"') == 1
        assert floor.world.patient.name in found.text
        done = await nurse.submit("/desk/check-in", {"appointment": str(appointment.id)})
        assert done.status_code == 303
        page = await http.get(done.headers["location"])
        assert f"排队号 {appointment.sequence_number}" in page.text, done.headers["location"]

    async def test_nothing_found_is_said(self, http: httpx.AsyncClient) -> None:
        nurse = await staff(http, "nurse")
        await nurse.page("/desk")
        assert "没有找到今天的预约" in (await nurse.submit("/desk/find", {"q": "99999999"})).text

    async def test_the_search_form_posts_and_an_address_search_is_ignored(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        appointment = await book(floor)
        nurse = await staff(http, "nurse")
        page = await nurse.page(f"/desk?q={appointment.voucher_code}")
        # The page carries a POST search with its token; an address never searches.
        assert 'method="post" action="/desk/find"' in page.text
        assert 'method="get" action="/desk" class="card" role="search"' not in page.text
        assert 'data-testid="match"' not in page.text
        assert 'data-testid="none-found"' not in page.text

    async def test_a_search_without_the_forms_token_is_refused_and_not_logged(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        appointment = await book(floor)
        await staff(http, "nurse")
        before = await row_counts(floor.ctx.db)
        refused = await http.post("/desk/find", data={"q": appointment.voucher_code})
        assert refused.status_code == 403
        assert floor.world.patient.name not in refused.text
        assert await row_counts(floor.ctx.db) == before

    async def test_walk_in_registers_and_checks_in(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        nurse = await staff(http, "nurse")
        await nurse.page("/desk")
        done = await nurse.submit(
            "/desk/walk-in",
            {
                "session": str(floor.world.session.id),
                "name": "钱多多",
                "id_type": "resident_id",
                "id_number": f.resident_id(),
                "phone": f.phone(),
            },
        )
        assert done.status_code == 303, done.text
        assert "已挂号并报到" in (await http.get(done.headers["location"])).text
        async with floor.ctx.db.read() as s:
            walk_ins = (await s.scalars(select(Visit).where(Visit.walk_in.is_(True)))).all()
        assert len(walk_ins) == 1

    @pytest.mark.parametrize(
        ("change", "sentence"),
        [
            ({"session": ""}, "请选择出诊"),
            ({"id_type": "library_card"}, ""),
            ({"id_number": "110101199001011234"}, ""),
            ({"name": ""}, ""),
            ({"phone": "123"}, ""),
            ({"priority": "elderly", "reason": ""}, "请填写原因"),
            ({"priority": "vip", "reason": "x"}, ""),
        ],
    )
    async def test_bad_walk_ins_change_nothing(
        self, http: httpx.AsyncClient, floor: Floor, change: dict[str, str], sentence: str
    ) -> None:
        nurse = await staff(http, "nurse")
        await nurse.page("/desk")
        form = {
            "session": str(floor.world.session.id),
            "name": "钱多多",
            "id_type": "resident_id",
            "id_number": f.resident_id(),
            "phone": f.phone(),
            **change,
        }
        before = await row_counts(floor.ctx.db)
        response = await nurse.submit("/desk/walk-in", form)
        assert response.status_code >= 400
        assert 'class="notice bad" role="alert"' in response.text
        assert sentence in response.text
        assert await row_counts(floor.ctx.db) == before

    async def test_priority_and_move_need_a_reason(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        first, second = await book(floor), await _book_other(floor)
        nurse = await staff(http, "nurse")
        await nurse.page("/desk")
        for appointment in (first, second):
            await nurse.submit("/desk/check-in", {"appointment": str(appointment.id)})
        async with floor.ctx.db.read() as s:
            visits = {v.appointment_id: v.id for v in (await s.scalars(select(Visit))).all()}
        queue = f"/desk/queues/{floor.world.session.id}"
        await nurse.page(queue)
        before = await row_counts(floor.ctx.db)
        for path, form in (
            ("/priority", {"visit": str(visits[second.id]), "priority": "elderly"}),
            ("/move", {"visit": str(visits[second.id]), "other": str(visits[first.id])}),
        ):
            refused = await nurse.submit(queue + path, {**form, "reason": " "})
            assert refused.status_code == 422
            assert "请填写原因" in refused.text
        refused = await nurse.submit(
            queue + "/move", {"visit": str(visits[second.id]), "other": "", "reason": "x"}
        )
        assert refused.status_code == 422
        assert await row_counts(floor.ctx.db) == before
        moved = await nurse.submit(
            queue + "/move",
            {"visit": str(visits[second.id]), "other": str(visits[first.id]), "reason": "发热"},
        )
        assert moved.status_code == 200
        assert "已调整顺序" in moved.text


class TestDeskQueueList:
    async def test_the_list_is_filtered_by_department_and_period_kept_in_the_query(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        world = floor.world
        async with floor.ctx.db.session_scope() as s:
            other = await f.make_department(s, hospital=world.hospital, name="外科")
            afternoon = await f.make_session(
                s,
                hospital=world.hospital,
                department=world.department,
                level=world.free_level,
                day=world.session.date,
                period=Period.AFTERNOON,
                start=time(13, 30),
                end=time(17, 0),
                now=NOW,
            )
            surgery = await f.make_session(
                s,
                hospital=world.hospital,
                department=other,
                level=world.free_level,
                day=world.session.date,
                now=NOW,
            )
        nurse = await staff(http, "nurse")

        def listed(page: httpx.Response) -> set[str]:
            return set(re.findall(r'href="/desk/queues/([0-9a-f-]+)', page.text))

        everything = await nurse.page("/desk")
        assert listed(everything) == {str(world.session.id), str(afternoon.id), str(surgery.id)}
        mine = await nurse.page(f"/desk?department={world.department.id}")
        assert listed(mine) == {str(world.session.id), str(afternoon.id)}
        query = f"department={world.department.id}&period=afternoon"
        chosen = await nurse.page(f"/desk?{query}")
        assert listed(chosen) == {str(afternoon.id)}
        # The choice stays in the links and after a walk-in.
        assert f"/desk/queues/{afternoon.id}?{query.replace('&', '&amp;')}" in chosen.text
        done = await nurse.submit(
            "/desk/walk-in",
            {
                "session": str(world.session.id),
                "name": "钱多多",
                "id_type": "resident_id",
                "id_number": f.resident_id(),
                "phone": f.phone(),
                "department": str(world.department.id),
                "period": "afternoon",
            },
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"].endswith(f"&{query}")
        # A period or department that is not one lists everything, and says nothing wrong.
        odd = await nurse.page("/desk?period=night&department=nope")
        assert odd.status_code == 200 and len(listed(odd)) == 3

    async def test_called_first_then_the_line_then_not_arrived_by_number(
        self, http: httpx.AsyncClient, floor: Floor, clock: FixedClock
    ) -> None:
        world = floor.world
        actor = replace(system_actor(world.hospital.id, "test"), channel=Channel.APP)
        booked: list[Appointment] = []
        async with floor.ctx.db.session_scope() as s:
            for name in ("甲一", "乙二", "丙三", "丁四", "戊五"):
                patient = await f.make_patient(
                    s, hospital=world.hospital, cipher=floor.ctx.cipher, now=NOW, name=name
                )
                made = await booking_service.book(
                    s,
                    actor=actor,
                    patient_id=patient.id,
                    session_id=world.session.id,
                    slot_id=None,
                    now=NOW,
                )
                booked.append(made.appointment)
        nurse = await staff(http, "nurse")
        for appointment in (booked[2], booked[0], booked[1]):
            await nurse.page("/desk")
            done = await nurse.submit("/desk/check-in", {"appointment": str(appointment.id)})
            assert done.status_code == 303
        transport = httpx.ASGITransport(app=floor.app, client=("203.0.113.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
            doctor = await staff(other, "doctor")
            await doctor.page("/doctor")
            called = await doctor.submit(f"/doctor/sessions/{world.session.id}/call-next", {})
            assert called.status_code in (200, 303)
        page = await nurse.page(f"/desk/queues/{world.session.id}")
        rows = re.findall(r'data-testid="([a-z]+-row)" data-status="([a-z_]+)"', page.text)
        assert [kind for kind, _ in rows] == [
            "current-row",
            "queue-row",
            "queue-row",
            "awaited-row",
            "awaited-row",
        ]
        assert [status for _, status in rows][:1] == ["called"]
        # Not arrived: by sequence number.
        awaited = re.findall(
            r'data-testid="awaited-row"[^>]*>\s*<td></td>\s*<td class="num">(\d+)</td>', page.text
        )
        assert awaited == [str(booked[3].sequence_number), str(booked[4].sequence_number)]
        assert "未报到" in page.text


class TestDoctor:
    async def test_call_next_start_finish_and_the_screen_shows_the_call(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        appointment = await book(floor)
        device = await kiosk(http, floor)
        await device.submit("/kiosk/scan", {"token": await _token(floor, appointment)})
        doctor = await staff(http, "doctor")
        await doctor.page("/doctor")
        session = f"/doctor/sessions/{floor.world.session.id}"
        called = await doctor.http.post(
            session + "/call-next", data={"csrf": doctor.csrf}, headers={"HX-Request": "true"}
        )
        assert called.status_code == 200
        assert 'data-testid="current"' in called.text
        screen = await http.get(f"/screens/{floor.world.department.id}")
        assert f'<span class="number">{appointment.sequence_number}</span>' in screen.text
        assert floor.world.patient.name not in screen.text  # masked
        async with floor.ctx.db.read() as s:
            visit = await s.scalar(select(Visit).where(Visit.appointment_id == appointment.id))
        assert visit is not None
        for action in ("start", "return-visit", "finish"):
            done = await doctor.submit(f"{session}/{action}", {"visit": str(visit.id)})
            assert done.status_code == 303, (action, done.text)
        async with floor.ctx.db.read() as s:
            finished = await s.get(Visit, visit.id)
        assert finished is not None
        assert finished.status == "finished" and finished.return_visit_needed

    async def test_refusals_are_sentences_and_change_nothing(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        doctor = await staff(http, "doctor")
        await doctor.page("/doctor")
        session = f"/doctor/sessions/{floor.world.session.id}"
        before = await row_counts(floor.ctx.db)
        empty = await doctor.submit(session + "/call-next")
        assert empty.status_code == 409 or empty.status_code >= 400
        assert "当前没有候诊的患者" in empty.text
        assert (await doctor.submit(session + "/start", {"visit": "nope"})).status_code == 404
        assert (
            await doctor.submit(session + "/dance", {"visit": str(f.new_uuid())})
        ).status_code == 404
        other = await doctor.submit(f"/doctor/sessions/{f.new_uuid()}/call-next")
        assert other.status_code == 404
        assert await row_counts(floor.ctx.db) == before


async def _token(floor: Floor, appointment: Appointment) -> str:
    from yuyue.booking import views

    async with floor.ctx.db.read() as s:
        fresh = await s.get(Appointment, appointment.id)
        assert fresh is not None
        view = await views.appointment_view(
            s, appointment=fresh, voucher_signer=floor.ctx.voucher_signer, locale="zh-CN"
        )
    assert view.voucher is not None
    return view.voucher.token


async def _book_other(floor: Floor) -> Appointment:
    actor = replace(system_actor(floor.world.hospital.id, "test"), channel=Channel.APP)
    async with floor.ctx.db.session_scope() as s:
        booked = await booking_service.book(
            s,
            actor=actor,
            patient_id=floor.world.other_patient.id,
            session_id=floor.world.session.id,
            slot_id=None,
            now=NOW,
        )
        return booked.appointment
