"""The patient's pages over HTTP: sign in, family patients, booking, voucher, cancel, and
clear refusals that change nothing."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.helpers import pool_state, row_counts
from tests.portal.conftest import Browser, latest_code, sign_in
from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus
from yuyue.kit.clock import FixedClock
from yuyue.patients.models import Patient
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import BookingPolicy, TimeSlot
from yuyue.web.context import AppContext

FATHER_ID = f.resident_id(sex="M")


async def add_father(browser: Browser) -> None:
    await browser.page("/patients/new")
    response = await browser.submit(
        "/patients", {"name": "王建国", "id_type": "resident_id", "id_number": FATHER_ID}
    )
    assert response.status_code == 303, response.text
    listing = await browser.page("/patients")
    assert "王建国" in listing.text
    assert FATHER_ID not in listing.text  # masked on screen


async def first_slot(ctx: AppContext, world: World) -> uuid.UUID:
    async with ctx.db.read() as session:
        slot = await session.scalar(
            select(TimeSlot.id)
            .where(TimeSlot.session_id == world.session.id)
            .order_by(TimeSlot.ordinal)
            .limit(1)
        )
    assert slot is not None
    return slot


async def account_patient(ctx: AppContext, name: str) -> Patient:
    async with ctx.db.read() as session:
        patient = await session.scalar(select(Patient).where(Patient.name == name))
    assert patient is not None
    return patient


class TestSignIn:
    async def test_pages_that_need_an_account_send_you_to_sign_in(self, portal: Browser) -> None:
        response = await portal.page("/appointments")
        assert response.status_code == 303
        assert response.headers["location"] == "/signin?next=/appointments"

    async def test_sign_in_with_the_texted_code(self, portal: Browser, ctx: AppContext) -> None:
        await sign_in(portal, ctx)
        home = await portal.page("/")
        assert "139****5678" in home.text
        assert (await portal.page("/appointments")).status_code == 200

    async def test_invalid_phone_is_explained_and_nothing_is_sent(
        self, portal: Browser, ctx: AppContext
    ) -> None:
        before = await row_counts(ctx.db)
        response = await portal.http.post("/signin/code", data={"phone": "1234", "next": "/"})
        assert response.status_code == 422
        assert "手机号" in response.text and 'role="alert"' in response.text
        assert await row_counts(ctx.db) == before

    async def test_wrong_code_says_how_many_tries_are_left(
        self, portal: Browser, ctx: AppContext
    ) -> None:
        await portal.http.post("/signin/code", data={"phone": "13912345678", "next": "/"})
        code = await latest_code(ctx)
        wrong = "000000" if code != "000000" else "111111"
        response = await portal.http.post(
            "/signin", data={"phone": "13912345678", "code": wrong, "next": "/"}
        )
        assert response.status_code == 400
        assert "还可以再试 4 次" in response.text
        assert "yuyue_session" not in response.headers.get("set-cookie", "")

    async def test_too_many_codes_are_refused_with_the_wait(
        self, portal: Browser, ctx: AppContext
    ) -> None:
        await portal.http.post("/signin/code", data={"phone": "13912345678", "next": "/"})
        response = await portal.http.post(
            "/signin/code", data={"phone": "13912345678", "next": "/"}
        )
        assert response.status_code == 429
        assert "60 秒后再试" in response.text

    async def test_next_never_leaves_the_site(self, portal: Browser, ctx: AppContext) -> None:
        await portal.http.post("/signin/code", data={"phone": "13912345678", "next": "/"})
        response = await portal.http.post(
            "/signin",
            data={
                "phone": "13912345678",
                "code": await latest_code(ctx),
                "next": "//evil.example/phish",
            },
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/"

    async def test_signing_out_ends_the_session_on_the_server(self, signed_in: Browser) -> None:
        cookie = signed_in.http.cookies.get("yuyue_session")
        assert cookie
        await signed_in.submit("/signout")
        signed_in.http.cookies.set("yuyue_session", cookie)  # a stolen copy of the cookie
        assert (await signed_in.page("/appointments")).status_code == 303


class TestFamilyPatients:
    async def test_add_a_family_member(self, signed_in: Browser, ctx: AppContext) -> None:
        await add_father(signed_in)
        father = await account_patient(ctx, "王建国")
        assert father.birth_date.year == 1990

    async def test_invalid_id_number_is_explained_and_nothing_is_saved(
        self, signed_in: Browser, ctx: AppContext
    ) -> None:
        await signed_in.page("/patients/new")
        before = await row_counts(ctx.db)
        bad = FATHER_ID[:-1] + ("0" if FATHER_ID[-1] != "0" else "1")
        response = await signed_in.submit(
            "/patients", {"name": "王建国", "id_type": "resident_id", "id_number": bad}
        )
        assert response.status_code == 422
        assert 'aria-invalid="true"' in response.text
        assert "王建国" in response.text  # what was typed is kept
        assert await row_counts(ctx.db) == before

    async def test_a_form_without_the_page_token_changes_nothing(
        self, signed_in: Browser, ctx: AppContext
    ) -> None:
        before = await row_counts(ctx.db)
        response = await signed_in.http.post(
            "/patients", data={"name": "王建国", "id_type": "resident_id", "id_number": FATHER_ID}
        )
        assert response.status_code == 403
        assert "页面已过期" in response.text
        assert await row_counts(ctx.db) == before


class TestBooking:
    async def test_book_for_a_family_member_see_the_voucher_and_cancel(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        await add_father(signed_in)
        father = await account_patient(ctx, "王建国")
        slot = await first_slot(ctx, world)
        session_page = await signed_in.page(f"/sessions/{world.session.id}")
        assert "余 " in session_page.text and "王建国" in session_page.text
        confirm = await signed_in.page(
            f"/sessions/{world.session.id}/confirm",
            params={"slot": str(slot), "patient": str(father.id)},
        )
        assert confirm.status_code == 200 and "王建国" in confirm.text
        booked = await signed_in.submit(
            f"/sessions/{world.session.id}/book", {"slot": str(slot), "patient": str(father.id)}
        )
        assert booked.status_code == 303, booked.text
        voucher = await signed_in.page(booked.headers["location"])
        async with ctx.db.read() as session:
            appointment = await session.scalar(
                select(Appointment).where(Appointment.patient_id == father.id)
            )
        assert appointment is not None and appointment.status == AppointmentStatus.BOOKED
        assert "<svg" in voucher.text  # the QR code
        code = appointment.voucher_code
        assert f"{code[:4]} {code[4:]}" in voucher.text
        assert f'data-testid="sequence">{appointment.sequence_number}<' in voucher.text
        assert "取消截止" in voucher.text
        # The visit starts Monday 08:00: the 1-day reminder is due Sunday 08:00.
        assert 'data-testid="reminders"' in voucher.text and "11月22日 周日 08:00" in voucher.text

        await signed_in.page(f"/appointments/{appointment.id}/cancel")
        cancelled = await signed_in.submit(f"/appointments/{appointment.id}/cancel")
        assert cancelled.status_code == 303
        async with ctx.db.read() as session:
            refreshed = await session.get(Appointment, appointment.id)
        assert refreshed is not None and refreshed.status == AppointmentStatus.CANCELLED
        after = await signed_in.page(f"/appointments/{appointment.id}")
        assert 'data-testid="reminders"' not in after.text  # withdrawn with the booking
        assert all(taken == 0 for _, taken, _, _ in await pool_state(ctx.db))

    async def test_sold_out_offers_alternatives_and_the_waitlist(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            full = await f.make_session(
                s,
                hospital=world.hospital,
                department=world.department,
                level=world.free_level,
                doctor=world.doctor,
                day=VISIT_DAY,
                start=world.session.start_time.replace(hour=14),
                end=world.session.end_time.replace(hour=17),
                capacity=1,
                now=NOW,
            )
        from yuyue.booking import service as booking_service
        from yuyue.staff.rules import system_actor

        actor = system_actor(world.hospital.id)
        # The only web-bookable place goes to someone else.
        async with ctx.db.session_scope() as s:
            from dataclasses import replace

            from yuyue.scheduling.enums import Channel

            await booking_service.book(
                s,
                actor=replace(actor, channel=Channel.WEB),
                patient_id=world.other_patient.id,
                session_id=full.id,
                slot_id=None,
                now=NOW,
            )
        await add_father(signed_in)
        father = await account_patient(ctx, "王建国")
        before = await row_counts(ctx.db)
        refused = await signed_in.submit(
            f"/sessions/{full.id}/book", {"slot": "", "patient": str(father.id)}
        )
        assert refused.status_code == 409
        assert 'data-testid="alternatives"' in refused.text
        assert f"/sessions/{world.session.id}" in refused.text  # same doctor, morning
        assert 'data-testid="join-waitlist"' in refused.text
        assert await row_counts(ctx.db) == before
        # The next attempt is answered from the sold-out memory, alternatives included.
        assert ctx.sold_out.peek((full.id, ("web", "appointment"), None)) is not None
        again = await signed_in.submit(
            f"/sessions/{full.id}/book", {"slot": "", "patient": str(father.id)}
        )
        assert again.status_code == 409 and f"/sessions/{world.session.id}" in again.text

    async def test_someone_elses_patient_or_appointment_is_not_yours(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        refused = await signed_in.submit(
            f"/sessions/{world.session.id}/book", {"slot": "", "patient": str(world.patient.id)}
        )
        assert refused.status_code == 422
        assert await row_counts(ctx.db) == before
        from yuyue.booking import service as booking_service
        from yuyue.staff.rules import system_actor

        async with ctx.db.session_scope() as s:
            booked = await booking_service.book(
                s,
                actor=system_actor(world.hospital.id),
                patient_id=world.patient.id,
                session_id=world.session.id,
                slot_id=None,
                now=NOW,
            )
        page = await signed_in.page(f"/appointments/{booked.appointment.id}")
        assert page.status_code == 404
        assert booked.appointment.voucher_code not in page.text
        cancel = await signed_in.submit(f"/appointments/{booked.appointment.id}/cancel")
        assert cancel.status_code == 404

    async def test_a_refusal_writes_its_times_the_way_the_page_writes_the_day(
        self, signed_in: Browser, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        await add_father(signed_in)
        father = await account_patient(ctx, "王建国")
        await signed_in.page(f"/sessions/{world.session.id}")
        clock.advance(timedelta(days=2, hours=7))  # Sunday 17:00 Shanghai: after the cut-off
        before = await row_counts(ctx.db)
        refused = await signed_in.submit(
            f"/sessions/{world.session.id}/book", {"slot": "", "patient": str(father.id)}
        )
        assert refused.status_code == 409
        assert "截止时间 11月22日 周日 16:00" in refused.text
        assert "当日挂号将于 11月23日 周一 07:00 开放" in refused.text
        assert not re.search(r"\d{4}-\d{2}-\d{2}", refused.text)
        assert await row_counts(ctx.db) == before


class TestBrowsing:
    async def test_departments_are_searchable_by_pinyin_initials(
        self, portal: Browser, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            department = await s.get(type(world.department), world.department.id)
            assert department is not None
            department.pinyin = "nk"
        hit = await portal.page("/departments", params={"q": "nk"}, headers={"HX-Request": "1"})
        assert world.department.name in hit.text and "<html" not in hit.text
        miss = await portal.page("/departments", params={"q": "zzz"})
        assert world.department.name not in miss.text.split("<main", 1)[1]

    async def test_doctors_and_unlabelled_departments_are_found_by_initials(
        self, portal: Browser, world: World
    ) -> None:
        page = await portal.page("/departments", params={"q": "wys"})  # 王医生
        assert f"/doctors/{world.doctor.id}" in page.text
        page = await portal.page("/departments", params={"q": "nk"})  # 内科, no pinyin stored
        assert f"/departments/{world.department.id}" in page.text
        none = await portal.page("/departments", params={"q": "qqq"})
        assert f"/doctors/{world.doctor.id}" not in none.text
        assert f"/departments/{world.department.id}" not in none.text

    async def test_doctor_page_shows_the_schedule_with_places_left(
        self, portal: Browser, world: World
    ) -> None:
        page = await portal.page(f"/doctors/{world.doctor.id}")
        assert page.status_code == 200
        assert f"/sessions/{world.session.id}" in page.text
        assert "余 " in page.text

    async def test_rules_page_is_written_from_the_hospital_settings(
        self, portal: Browser, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            await s.execute(
                update(BookingPolicy)
                .where(BookingPolicy.hospital_id == world.hospital.id)
                .values(limit_per_day=4, hold_minutes=12)
            )
        page = await portal.page("/rules")
        assert "每天最多 4 个号" in page.text
        assert "保留 12 分钟" in page.text

    async def test_english_on_request(self, portal: Browser) -> None:
        await portal.http.post("/preferences", data={"lang": "en", "next": "/"})
        page = await portal.page("/")
        assert "Book an outpatient visit" in page.text and 'lang="en"' in page.text

    async def test_large_text_mode(self, portal: Browser) -> None:
        await portal.http.post("/preferences", data={"size": "large", "next": "/"})
        assert 'class="large"' in (await portal.page("/")).text

    async def test_unknown_page_is_a_page_not_json(self, portal: Browser) -> None:
        response = await portal.page(f"/doctors/{uuid.uuid4()}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")


class TestMaintenance:
    async def test_the_booking_page_refuses_with_the_notice_and_changes_nothing(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        from yuyue.operations import service as operations_service
        from yuyue.staff.enums import Role
        from yuyue.staff.rules import Actor, ActorKind

        await add_father(signed_in)
        father = await account_patient(ctx, "王建国")
        admin = Actor(
            world.hospital.id,
            ActorKind.STAFF,
            "admin",
            Channel.WINDOW,
            roles=frozenset({Role.ADMIN}),
        )
        async with ctx.db.session_scope() as s:
            await operations_service.start(
                s, actor=admin, message="系统升级，请稍后再约", message_en="", now=NOW
            )
        before = await row_counts(ctx.db)
        refused = await signed_in.submit(
            f"/sessions/{world.session.id}/book", {"slot": "", "patient": str(father.id)}
        )
        assert refused.status_code == 503 and "系统升级，请稍后再约" in refused.text
        assert await row_counts(ctx.db) == before
