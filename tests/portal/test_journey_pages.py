"""Inbox, demo phone, waitlist, reschedule and paying on the patient pages (the payment
journey itself is in test_paying_pages)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.helpers import row_counts
from tests.payments.support import install_double, order_for
from tests.portal.conftest import Browser, sign_in
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus
from yuyue.notifications.delivery import deliver_due
from yuyue.patients.models import Patient
from yuyue.payments import service as payments
from yuyue.payments.gateway import Provider
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import BookingPolicy, ClinicSession
from yuyue.staff.rules import system_actor
from yuyue.web.context import AppContext


async def add_patient(browser: Browser, name: str) -> None:
    await browser.page("/patients/new")
    response = await browser.submit(
        "/patients",
        {"name": name, "id_type": "resident_id", "id_number": f.resident_id()},
    )
    assert response.status_code == 303, response.text


async def patient_named(ctx: AppContext, name: str) -> Patient:
    async with ctx.db.read() as session:
        patient = await session.scalar(select(Patient).where(Patient.name == name))
    assert patient is not None
    return patient


async def one_place_session(ctx: AppContext, world: World, *, fee: bool = False) -> ClinicSession:
    async with ctx.db.session_scope() as s:
        return await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.fee_level if fee else world.free_level,
            doctor=world.doctor,
            day=VISIT_DAY,
            start=world.session.start_time.replace(hour=14),
            end=world.session.end_time.replace(hour=17),
            capacity=1,
            now=NOW,
        )


async def book_directly(ctx: AppContext, world: World, patient_id, session_id) -> Appointment:
    web = replace(system_actor(world.hospital.id), channel=Channel.WEB)
    async with ctx.db.session_scope() as s:
        booked = await booking_service.book(
            s, actor=web, patient_id=patient_id, session_id=session_id, slot_id=None, now=NOW
        )
    return booked.appointment


class TestMessages:
    async def test_confirmation_reaches_the_inbox_and_reading_clears_the_badge(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        await add_patient(signed_in, "王建国")
        father = await patient_named(ctx, "王建国")
        booked = await signed_in.submit(
            f"/sessions/{world.session.id}/book", {"slot": "", "patient": str(father.id)}
        )
        assert booked.status_code == 303
        await deliver_due(ctx)
        home = await signed_in.page("/")
        # A count badge, not "消息 (1)": words in brackets widen the header past a phone.
        header = home.text[home.text.index("<header") : home.text.index("</header>")]
        link = header[header.index('data-testid="inbox-link"') :]
        link = link[: link.index("</a>")]
        assert 'aria-label="消息，1 条未读"' in link
        assert '<span class="count" data-testid="unread-count">1</span>' in link
        assert "(" not in link and "（" not in link
        inbox = await signed_in.page("/inbox")
        assert 'data-kind="booking_confirmed"' in inbox.text
        async with ctx.db.read() as session:
            appointment = await session.scalar(
                select(Appointment).where(Appointment.patient_id == father.id)
            )
        assert appointment is not None and appointment.voucher_code in inbox.text
        read = (await signed_in.page("/")).text
        assert 'data-testid="inbox-link"' in read and 'data-testid="unread-count"' not in read

    async def test_demo_phone_shows_the_code_only_in_demo_mode(
        self, portal: Browser, ctx: AppContext
    ) -> None:
        assert (await portal.page("/demo/phone")).status_code == 404
        ctx.settings.demo_mode = True
        await portal.http.post("/signin/code", data={"phone": "13912345678", "next": "/"})
        await deliver_due(ctx)
        page = await portal.page("/demo/phone")
        assert page.status_code == 200
        assert "139****5678" in page.text and 'data-testid="sms"' in page.text


class TestWaitlist:
    async def test_offer_after_a_cancellation_is_accepted_into_a_booking(
        self, portal: Browser, ctx: AppContext, world: World
    ) -> None:
        full = await one_place_session(ctx, world)
        taken = await book_directly(ctx, world, world.other_patient.id, full.id)
        await sign_in(portal, ctx)
        await add_patient(portal, "王建国")
        father = await patient_named(ctx, "王建国")
        joined = await portal.submit(f"/sessions/{full.id}/waitlist", {"patient": str(father.id)})
        assert joined.status_code == 303
        waiting = await portal.page("/waitlist")
        assert 'data-status="waiting"' in waiting.text and "候补第 1 位" in waiting.text

        async with ctx.db.session_scope() as s:
            await booking_service.cancel(
                s,
                actor=replace(system_actor(world.hospital.id), channel=Channel.WEB),
                appointment_id=taken.id,
                note=None,
                now=NOW,
            )
        offered = await portal.page("/waitlist")
        assert 'data-status="offered"' in offered.text
        accepted = await portal.submit(_form_action(offered.text, "accept"))
        assert accepted.status_code == 303
        voucher = await portal.page(accepted.headers["location"])
        assert 'data-testid="voucher"' in voucher.text

    @pytest.mark.parametrize(
        ("locale", "sentence"),
        [("zh-CN", "请在45分钟内确认"), ("en", "Confirm within 45 minutes")],
    )
    async def test_the_offer_message_says_how_many_minutes_it_lasts(
        self, portal: Browser, ctx: AppContext, world: World, locale: str, sentence: str
    ) -> None:
        async with ctx.db.session_scope() as s:
            policy = await s.scalar(
                select(BookingPolicy).where(BookingPolicy.hospital_id == world.hospital.id)
            )
            assert policy is not None
            policy.waitlist_offer_minutes = 45
        full = await one_place_session(ctx, world)
        taken = await book_directly(ctx, world, world.other_patient.id, full.id)
        await sign_in(portal, ctx)
        await portal.page("/settings")
        saved = await portal.submit("/settings", {"email": "", "locale": locale})
        assert saved.status_code == 303
        await add_patient(portal, "王建国")
        father = await patient_named(ctx, "王建国")
        await portal.submit(f"/sessions/{full.id}/waitlist", {"patient": str(father.id)})
        async with ctx.db.session_scope() as s:
            await booking_service.cancel(
                s,
                actor=replace(system_actor(world.hospital.id), channel=Channel.WEB),
                appointment_id=taken.id,
                note=None,
                now=NOW,
            )
        await deliver_due(ctx)
        inbox = await portal.page("/inbox")
        assert 'data-kind="waitlist_offer"' in inbox.text
        assert sentence in inbox.text

    async def test_joining_a_session_with_places_left_is_refused(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        await add_patient(signed_in, "王建国")
        father = await patient_named(ctx, "王建国")
        before = await row_counts(ctx.db)
        refused = await signed_in.submit(
            f"/sessions/{world.session.id}/waitlist", {"patient": str(father.id)}
        )
        assert refused.status_code == 409
        assert 'role="alert"' in refused.text
        assert await row_counts(ctx.db) == before


def _form_action(html: str, action: str) -> str:
    start = html.index(f'/{action}"')
    return html[html.rindex('"', 0, start) + 1 : start + len(action) + 1]


class TestChangeAndPay:
    async def test_reschedule_moves_the_booking_and_frees_the_old_place(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        other = await one_place_session(ctx, world)
        await add_patient(signed_in, "王建国")
        father = await patient_named(ctx, "王建国")
        old = await book_directly(ctx, world, father.id, world.session.id)
        options = await signed_in.page(f"/appointments/{old.id}/reschedule")
        assert f"/appointments/{old.id}/reschedule/{other.id}" in options.text
        await signed_in.page(f"/appointments/{old.id}/reschedule/{other.id}")
        moved = await signed_in.submit(
            f"/appointments/{old.id}/reschedule", {"session": str(other.id), "slot": ""}
        )
        assert moved.status_code == 303
        async with ctx.db.read() as session:
            rows = (
                await session.scalars(
                    select(Appointment).where(Appointment.patient_id == father.id)
                )
            ).all()
        statuses = {a.session_id: a.status for a in rows}
        assert statuses == {
            world.session.id: AppointmentStatus.CANCELLED,
            other.id: AppointmentStatus.BOOKED,
        }

    async def test_an_unpaid_hold_is_not_titled_a_voucher_until_it_is_paid(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        paid_session = await one_place_session(ctx, world, fee=True)
        await add_patient(signed_in, "王建国")
        father = await patient_named(ctx, "王建国")
        held = await book_directly(ctx, world, father.id, paid_session.id)
        page = await signed_in.page(f"/appointments/{held.id}")
        assert '<h1 data-testid="heading">号源已保留 <span' in page.text
        assert "<title>号源已保留" in page.text
        assert "就诊凭证" not in page.text
        double = install_double(ctx, Provider.WECHATPAY)
        await signed_in.page(f"/appointments/{held.id}/pay")
        opened = await signed_in.submit(f"/appointments/{held.id}/pay", {"provider": "wechatpay"})
        assert opened.status_code == 200 and "请使用微信扫一扫" in opened.text  # a desktop
        headers, body = double.pay((await order_for(ctx, held.id)).out_trade_no)
        await payments.handle_notification(
            db=ctx.db,
            gateways=ctx.gateways,
            provider=Provider.WECHATPAY,
            headers=headers,
            body=body,
            clock=ctx.clock,
        )
        paid = await signed_in.page(f"/appointments/{held.id}")
        assert '<h1 data-testid="heading">就诊凭证 <span' in paid.text
        english = await signed_in.page(
            f"/appointments/{held.id}", headers={"accept-language": "en"}
        )
        assert '<h1 data-testid="heading">Visit voucher <span' in english.text


class TestSettings:
    async def test_email_and_message_language_are_saved(
        self, signed_in: Browser, ctx: AppContext
    ) -> None:
        await signed_in.page("/settings")
        saved = await signed_in.submit("/settings", {"email": "wang@example.com", "locale": "en"})
        assert saved.status_code == 303
        page = await signed_in.page("/settings")
        assert 'value="wang@example.com"' in page.text
        assert '<option value="en" selected>' in page.text

    async def test_bad_email_is_explained_and_nothing_changes(
        self, signed_in: Browser, ctx: AppContext
    ) -> None:
        await signed_in.page("/settings")
        before = await row_counts(ctx.db)
        refused = await signed_in.submit("/settings", {"email": "not-an-email", "locale": "zh-CN"})
        assert refused.status_code == 422
        assert 'role="alert"' in refused.text and 'value="not-an-email"' in refused.text
        assert await row_counts(ctx.db) == before
        refused = await signed_in.submit("/settings", {"email": "", "locale": "fr"})
        assert refused.status_code == 422


class TestBadInputOnForms:
    async def test_reschedule_to_nonsense_is_explained_and_changes_nothing(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        await add_patient(signed_in, "王建国")
        father = await patient_named(ctx, "王建国")
        booked = await book_directly(ctx, world, father.id, world.session.id)
        await signed_in.page(f"/appointments/{booked.id}/reschedule")
        before = await row_counts(ctx.db)
        for session_value in ("tomorrow", str(uuid.uuid4())):
            refused = await signed_in.submit(
                f"/appointments/{booked.id}/reschedule", {"session": session_value, "slot": ""}
            )
            assert refused.status_code in (404, 422), refused.text
            assert refused.headers["content-type"].startswith("text/html")
            assert 'role="alert"' in refused.text
        assert await row_counts(ctx.db) == before

    async def test_paying_twice_is_refused_with_a_sentence(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        ctx.settings.demo_mode = True
        await add_patient(signed_in, "王建国")
        father = await patient_named(ctx, "王建国")
        free = await book_directly(ctx, world, father.id, world.session.id)
        await signed_in.page(f"/appointments/{free.id}/pay")
        before = await row_counts(ctx.db)
        refused = await signed_in.submit(f"/appointments/{free.id}/pay")
        assert refused.status_code == 409
        assert 'role="alert"' in refused.text
        assert await row_counts(ctx.db) == before

    async def test_someone_elses_waitlist_entry_cannot_be_touched(
        self, portal: Browser, ctx: AppContext, world: World
    ) -> None:
        full = await one_place_session(ctx, world)
        await book_directly(ctx, world, world.other_patient.id, full.id)
        await sign_in(portal, ctx)
        await add_patient(portal, "王建国")
        father = await patient_named(ctx, "王建国")
        await portal.submit(f"/sessions/{full.id}/waitlist", {"patient": str(father.id)})
        page = await portal.page("/waitlist")
        leave = _form_action(page.text, "leave")
        # A second account tries to act on the first account's entry.
        portal.http.cookies.clear()
        await sign_in(portal, ctx, phone="13700001111")
        before = await row_counts(ctx.db)
        for action in ("leave", "accept", "decline"):
            refused = await portal.submit(leave.replace("/leave", f"/{action}"))
            assert refused.status_code == 404
        assert await row_counts(ctx.db) == before
