"""Paying and refunds on the patient pages: the pay page offers the hospital's providers
with the method that suits the browser, the cashier is the provider's, the result page
asks the provider, and the voucher, the list, cancelling and changing say where the money
is. No page confirms a payment itself."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import NOW, World
from tests.helpers import row_counts
from tests.payments.gateway_double import GatewayDouble
from tests.payments.support import appointment, fee_session, hold, install_double, order_for
from tests.portal.conftest import Browser, sign_in
from tests.portal.test_journey_pages import add_patient, book_directly, patient_named
from yuyue.booking.states import AppointmentStatus, RefundShown
from yuyue.jobs import expire_holds_once, send_refunds_once
from yuyue.kit.clock import FixedClock
from yuyue.payments import service as payments
from yuyue.payments.gateway import (
    GatewayError,
    PayMethod,
    Provider,
    RefundState,
    TradeStatus,
)
from yuyue.payments.models import PaymentAttempt
from yuyue.payments.states import AttemptKind, OrderState
from yuyue.portal.paying import deadline_words, device_of, offers
from yuyue.web.context import AppContext

PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)
WECHAT_UA = PHONE_UA + " MicroMessenger/8.0.49.2600(0x28003137) NetType/WIFI Language/zh_CN"
DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
BOTH = {Provider.WECHATPAY, Provider.ALIPAY}
W, A = Provider.WECHATPAY, Provider.ALIPAY


def pairs(found: list) -> list[tuple[Provider, PayMethod]]:  # type: ignore[type-arg]
    return [(offer.provider, offer.method) for offer in found]


class TestWhichMethod:
    @pytest.mark.parametrize(
        ("configured", "agent", "openid", "expected"),
        [
            (BOTH, DESKTOP_UA, None, [(W, PayMethod.NATIVE), (A, PayMethod.PAGE)]),
            (BOTH, PHONE_UA, None, [(W, PayMethod.H5), (A, PayMethod.WAP)]),
            (BOTH, WECHAT_UA, "o-openid", [(W, PayMethod.JSAPI)]),
            # No openid inside WeChat: H5; WeChat's browser does not open Alipay's cashier.
            (BOTH, WECHAT_UA, None, [(W, PayMethod.H5)]),
            ({A}, WECHAT_UA, None, [(A, PayMethod.WAP)]),
            ({A}, DESKTOP_UA, None, [(A, PayMethod.PAGE)]),
            ({W}, PHONE_UA, None, [(W, PayMethod.H5)]),
            (set(), PHONE_UA, None, []),
            ({Provider.INSURANCE}, PHONE_UA, None, []),
        ],
    )
    def test_each_browser_gets_the_method_that_works_in_it(
        self, configured: set[Provider], agent: str, openid: str | None, expected: list[object]
    ) -> None:
        assert pairs(offers(configured, user_agent=agent, openid=openid)) == expected

    def test_phones_and_desktops_are_told_apart(self) -> None:
        assert device_of(PHONE_UA).mobile and not device_of(PHONE_UA).in_wechat
        assert device_of(WECHAT_UA).in_wechat
        assert not device_of(DESKTOP_UA).mobile
        assert device_of("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)").mobile
        assert not device_of("").mobile

    def test_the_deadline_reads_as_a_clock_time_today_and_with_the_day_otherwise(self) -> None:
        now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
        assert deadline_words(
            now + timedelta(minutes=15), now=now, timezone="Asia/Shanghai", locale="zh-CN"
        ) == ("10:15", 15)
        assert deadline_words(
            now + timedelta(seconds=59), now=now, timezone="Asia/Shanghai", locale="zh-CN"
        ) == ("10:00", 0)
        assert deadline_words(
            now - timedelta(minutes=5), now=now, timezone="Asia/Shanghai", locale="zh-CN"
        ) == ("09:55", 0)
        assert deadline_words(
            now + timedelta(hours=16), now=now, timezone="Asia/Shanghai", locale="en"
        ) == ("Sat 21 Nov 02:00", 960)


# --- the pages -----------------------------------------------------------------------------


async def held_for_holder(browser: Browser, ctx: AppContext, world: World) -> uuid.UUID:
    """A held, paid-level appointment of the signed-in account's family member."""
    await add_patient(browser, "王建国")
    father = await patient_named(ctx, "王建国")
    held = await book_directly(ctx, world, father.id, (await fee_session(ctx, world)).id)
    assert held.status == AppointmentStatus.HELD
    return held.id


async def press_pay(
    browser: Browser, appointment_id: uuid.UUID, provider: str, *, agent: str = PHONE_UA
) -> object:
    await browser.page(f"/appointments/{appointment_id}/pay", headers={"user-agent": agent})
    return await browser.http.post(
        f"/appointments/{appointment_id}/pay",
        data={"csrf": browser.csrf, "provider": provider},
        headers={"user-agent": agent},
    )


async def paid_through_notification(
    browser: Browser, ctx: AppContext, world: World, double: GatewayDouble
) -> uuid.UUID:
    held = await held_for_holder(browser, ctx, world)
    await press_pay(browser, held, "wechatpay")
    order = await order_for(ctx, held)
    headers, body = double.pay(order.out_trade_no)
    handled = await payments.handle_notification(
        db=ctx.db, gateways=ctx.gateways, provider=W, headers=headers, body=body, clock=ctx.clock
    )
    assert handled.result == payments.PAID
    return held


def advance(ctx: AppContext, delta: timedelta) -> None:
    assert isinstance(ctx.clock, FixedClock)
    ctx.clock.advance(delta)


class TestPayPage:
    async def test_without_a_provider_the_patient_is_sent_to_the_window(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        ctx.settings.demo_mode = True  # the demo cashier is gone, demo or not
        held = await held_for_holder(signed_in, ctx, world)
        page = await signed_in.page(f"/appointments/{held}/pay")
        assert page.status_code == 200
        assert "本院尚未开通在线支付" in page.text
        assert 'data-testid="pay-' not in page.text
        assert "请在 10:15 前完成支付（还剩 15 分钟）" in page.text
        before = await row_counts(ctx.db)
        refused = await signed_in.submit(f"/appointments/{held}/pay", {"provider": "wechatpay"})
        assert refused.status_code == 422 and 'role="alert"' in refused.text
        assert await row_counts(ctx.db) == before
        assert (await appointment(ctx, held)).status == AppointmentStatus.HELD

    async def test_a_phone_is_offered_h5_and_wap_and_pressing_pay_opens_the_cashier(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        install_double(ctx, A)
        held = await held_for_holder(signed_in, ctx, world)
        page = await signed_in.page(f"/appointments/{held}/pay", headers={"user-agent": PHONE_UA})
        assert 'data-testid="pay-wechatpay" data-method="h5"' in page.text
        assert 'data-testid="pay-alipay" data-method="wap"' in page.text
        assert "微信支付 ¥80.00" in page.text
        english = await signed_in.page(
            f"/appointments/{held}/pay",
            headers={"user-agent": PHONE_UA, "accept-language": "en"},
        )
        assert "Please pay before 10:15 (15 min left)" in english.text

        answer = await press_pay(signed_in, held, "wechatpay")

        assert answer.status_code == 303  # type: ignore[attr-defined]
        order = await order_for(ctx, held)
        assert answer.headers["location"] == f"https://cashier.test/{order.out_trade_no}"  # type: ignore[attr-defined]
        assert (order.provider, order.method, order.state) == ("wechatpay", "h5", "created")
        request = double.orders[order.out_trade_no].request
        assert request.return_url == f"{ctx.settings.public_base_url}/appointments/{held}/paid"
        assert request.notify_url.endswith("/api/v1/payments/wechatpay/notify")
        # Coming back from the cashier is not paying: the booking waits for the provider.
        assert (await appointment(ctx, held)).status == AppointmentStatus.HELD

    async def test_a_desktop_gets_the_wechat_pay_qr_code_to_scan(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        install_double(ctx, W)  # answers Native with a QR code's content
        held = await held_for_holder(signed_in, ctx, world)
        page = await signed_in.page(f"/appointments/{held}/pay", headers={"user-agent": DESKTOP_UA})
        assert 'data-method="native"' in page.text

        shown = await press_pay(signed_in, held, "wechatpay", agent=DESKTOP_UA)

        assert shown.status_code == 200  # type: ignore[attr-defined]
        text = shown.text  # type: ignore[attr-defined]
        assert "请使用微信扫一扫" in text and "<svg" in text
        assert 'data-wait="/appointments/' in text and "/static/pay-wait.js" in text
        assert (await order_for(ctx, held)).method == "native"
        state = await signed_in.page(f"/appointments/{held}/payment-state")
        assert state.json() == {"status": "held"}

    async def test_paying_needs_the_pages_own_form_and_changes_nothing_without_it(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        held = await held_for_holder(signed_in, ctx, world)
        before = await row_counts(ctx.db)
        forged = await signed_in.http.post(
            f"/appointments/{held}/pay",
            data={"csrf": "0" * 32, "provider": "wechatpay"},
            headers={"user-agent": PHONE_UA},
        )
        assert forged.status_code == 403
        assert await row_counts(ctx.db) == before
        assert double.calls == []

    async def test_another_accounts_appointment_is_not_found_on_every_payment_page(
        self, portal: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        await sign_in(portal, ctx)
        held = await held_for_holder(portal, ctx, world)
        portal.http.cookies.clear()
        await sign_in(portal, ctx, phone="13700001111")
        before = await row_counts(ctx.db)
        for path in ("pay", "paid", "payment-state", "cancel"):
            page = await portal.page(f"/appointments/{held}/{path}")
            assert page.status_code == 404, path
        for path in ("pay", "cancel"):
            refused = await portal.http.post(
                f"/appointments/{held}/{path}",
                data={"csrf": portal.csrf, "provider": "wechatpay"},
                headers={"user-agent": PHONE_UA},
            )
            assert refused.status_code == 404, path
        assert await row_counts(ctx.db) == before
        assert double.calls == []

    async def test_a_booked_appointment_has_nothing_to_pay(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        held = await paid_through_notification(signed_in, ctx, world, double)
        page = await signed_in.page(f"/appointments/{held}/pay")
        assert "该预约无需支付" in page.text and 'data-testid="pay-' not in page.text
        before = await row_counts(ctx.db)
        refused = await signed_in.submit(f"/appointments/{held}/pay", {"provider": "wechatpay"})
        assert refused.status_code == 409 and 'role="alert"' in refused.text
        assert await row_counts(ctx.db) == before


class TestResultPage:
    async def test_when_the_notification_came_first_the_voucher_shows_the_payment(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        held = await paid_through_notification(signed_in, ctx, world, double)
        back = await signed_in.page(f"/appointments/{held}/paid")
        assert back.status_code == 303
        assert back.headers["location"] == f"/appointments/{held}?paid=1"
        assert not [c for c in double.calls if c[0] == "query"]
        voucher = await signed_in.page(back.headers["location"])
        assert "支付成功，预约已确认" in voucher.text
        assert 'data-testid="voucher"' in voucher.text
        card = _between(voucher.text, 'data-testid="payment"', "</div>")
        assert "¥80.00" in card and "微信支付" in card and "11月20日 周五 10:05" in card
        english = await signed_in.page(f"/appointments/{held}", headers={"accept-language": "en"})
        assert "WeChat Pay" in _between(english.text, 'data-testid="payment"', "</div>")
        listed = await signed_in.page("/appointments")
        assert "已付 ¥80.00 · 微信支付" in listed.text

    async def test_before_the_notification_the_page_asks_the_provider_and_books(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        held = await held_for_holder(signed_in, ctx, world)
        await press_pay(signed_in, held, "wechatpay")
        order = await order_for(ctx, held)
        headers, body = double.pay(order.out_trade_no)  # paid; the notification is late

        back = await signed_in.page(f"/appointments/{held}/paid")

        assert back.status_code == 303 and back.headers["location"].endswith("?paid=1")
        assert (await appointment(ctx, held)).status == AppointmentStatus.BOOKED
        assert (await order_for(ctx, held)).state == OrderState.PAID
        async with ctx.db.read() as session:
            kinds = (
                await session.scalars(
                    select(PaymentAttempt.kind).where(PaymentAttempt.order_id == order.id)
                )
            ).all()
        assert AttemptKind.QUERY in kinds
        # The notification arrives after all: nothing happens twice.
        late = await payments.handle_notification(
            db=ctx.db,
            gateways=ctx.gateways,
            provider=W,
            headers=headers,
            body=body,
            clock=ctx.clock,
        )
        assert late.result == payments.DUPLICATE

    async def test_while_nothing_is_paid_the_page_says_so_and_refreshes_a_while(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        held = await held_for_holder(signed_in, ctx, world)
        await press_pay(signed_in, held, "wechatpay")
        page = await signed_in.page(f"/appointments/{held}/paid")
        assert page.status_code == 200
        assert "支付结果确认中" in page.text
        assert re.search(
            rf'<meta http-equiv="refresh" content="3;url=/appointments/{held}/paid\?n=1">',
            page.text,
        )
        assert "<script>" not in page.text  # the CSP forbids inline scripts
        assert f'href="/appointments/{held}"' in page.text
        assert [c[0] for c in double.calls].count("query") == 1
        assert (await appointment(ctx, held)).status == AppointmentStatus.HELD
        last = await signed_in.page(f"/appointments/{held}/paid?n=20")
        assert 'http-equiv="refresh"' not in last.text and "暂未收到支付结果" in last.text
        english = await signed_in.page(
            f"/appointments/{held}/paid", headers={"accept-language": "en"}
        )
        assert "Confirming your payment" in english.text

    async def test_a_provider_that_cannot_answer_leaves_the_booking_waiting(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        held = await held_for_holder(signed_in, ctx, world)
        await press_pay(signed_in, held, "wechatpay")
        order = await order_for(ctx, held)

        async def failing(out_trade_no: str) -> TradeStatus:
            raise GatewayError("SYSTEM_ERROR", "busy", retryable=True)

        double.query = failing  # type: ignore[method-assign]
        page = await signed_in.page(f"/appointments/{held}/paid")
        assert "支付结果确认中" in page.text
        async with ctx.db.read() as session:
            attempt = await session.scalar(
                select(PaymentAttempt).where(
                    PaymentAttempt.order_id == order.id, PaymentAttempt.kind == AttemptKind.QUERY
                )
            )
        assert attempt is not None and attempt.error_code == "SYSTEM_ERROR"

    async def test_a_payment_after_the_place_was_gone_shows_the_refund(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        clinic = await fee_session(ctx, world, capacity=1)
        await add_patient(signed_in, "王建国")
        father = await patient_named(ctx, "王建国")
        held = (await book_directly(ctx, world, father.id, clinic.id)).id
        await press_pay(signed_in, held, "wechatpay")
        advance(ctx, timedelta(minutes=16))
        await expire_holds_once(ctx)
        await hold(ctx, world, clinic, patient_id=world.other_patient.id)  # the place is gone
        double.pay((await order_for(ctx, held)).out_trade_no)  # the open cashier took it

        page = await signed_in.page(f"/appointments/{held}/paid")

        assert page.status_code == 200
        assert "挂号费 ¥80.00 将原路退回" in page.text
        assert 'data-testid="refund-state">退款中<' in page.text
        assert (await appointment(ctx, held)).refund_state == RefundShown.PENDING
        await send_refunds_once(ctx)
        again = await signed_in.page(f"/appointments/{held}/paid")
        assert 'data-testid="refund-state">已退款<' in again.text

    async def test_a_hold_that_ended_unpaid_says_nothing_was_charged(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        held = await held_for_holder(signed_in, ctx, world)
        await press_pay(signed_in, held, "wechatpay")
        advance(ctx, timedelta(minutes=16))
        await expire_holds_once(ctx)
        page = await signed_in.page(f"/appointments/{held}/paid")
        assert "号源已释放，未产生扣款" in page.text
        assert 'http-equiv="refresh"' not in page.text
        # Asked all the same: a cashier left open may have taken the money.
        assert [c[0] for c in double.calls].count("query") == 1


class TestWhereTheMoneyGoes:
    async def test_cancelling_a_paid_booking_says_where_the_fee_goes_then_refunds_it(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        held = await paid_through_notification(signed_in, ctx, world, double)
        page = await signed_in.page(f"/appointments/{held}/cancel")
        assert "取消后挂号费 ¥80.00 将原路退回微信支付。" in page.text
        english = await signed_in.page(
            f"/appointments/{held}/cancel", headers={"accept-language": "en"}
        )
        assert "the fee of ¥80.00 goes back to your WeChat Pay account" in english.text
        await signed_in.page(f"/appointments/{held}/cancel")

        assert (await signed_in.submit(f"/appointments/{held}/cancel")).status_code == 303

        voucher = await signed_in.page(f"/appointments/{held}")
        assert 'data-testid="refund-state">退款中<' in voucher.text
        await send_refunds_once(ctx)
        voucher = await signed_in.page(f"/appointments/{held}")
        assert 'data-testid="refund-state">已退款<' in voucher.text
        listed = await signed_in.page("/appointments")
        assert 'data-testid="refund-state">已退款<' in listed.text
        english = await signed_in.page("/appointments", headers={"accept-language": "en"})
        assert 'data-testid="refund-state">Refunded<' in english.text

    async def test_a_failed_refund_sends_the_patient_to_the_window(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        double.refund_answer = RefundState.FAILED
        held = await paid_through_notification(signed_in, ctx, world, double)
        await signed_in.page(f"/appointments/{held}/cancel")
        await signed_in.submit(f"/appointments/{held}/cancel")
        await send_refunds_once(ctx)
        voucher = await signed_in.page(f"/appointments/{held}")
        assert 'data-testid="refund-state">退款失败，请到窗口办理<' in voucher.text
        assert "请携带身份证件到医院挂号收费窗口办理退费" in voucher.text

    async def test_an_unpaid_hold_cancelled_has_nothing_to_refund(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        held = await held_for_holder(signed_in, ctx, world)
        page = await signed_in.page(f"/appointments/{held}/cancel")
        assert "该预约尚未支付，取消不涉及退款。" in page.text

    async def test_a_fee_paid_at_the_window_is_refunded_at_the_window(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        from tests.payments.support import staff
        from yuyue.staff.enums import Role

        held = await held_for_holder(signed_in, ctx, world)

        async def at_window(session):  # type: ignore[no-untyped-def]
            await payments.pay_at_window(
                session,
                actor=staff(world, Role.REGISTRAR),
                appointment_id=held,
                method=PayMethod.CASH,
                receipt_no="SF-1",
                now=ctx.clock.now(),
            )

        await ctx.db.transact(at_window)
        page = await signed_in.page(f"/appointments/{held}/cancel")
        assert "取消后挂号费 ¥80.00 需持发票或收据到挂号收费窗口退还。" in page.text
        voucher = await signed_in.page(f"/appointments/{held}")
        assert "窗口缴费" in _between(voucher.text, 'data-testid="payment"', "</div>")
        await signed_in.submit(f"/appointments/{held}/cancel")
        voucher = await signed_in.page(f"/appointments/{held}")
        assert 'data-testid="refund-state">请到窗口退费<' in voucher.text

    async def test_changing_the_time_says_whether_the_fee_follows(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        held = await paid_through_notification(signed_in, ctx, world, double)
        other = await fee_session(ctx, world, day=NOW.date() + timedelta(days=4))
        page = await signed_in.page(f"/appointments/{held}/reschedule")
        assert "已付挂号费转入新预约，无需再次支付" in page.text
        await signed_in.page(f"/appointments/{held}/reschedule/{other.id}")

        moved = await signed_in.submit(
            f"/appointments/{held}/reschedule", {"session": str(other.id), "slot": ""}
        )

        assert moved.status_code == 303 and moved.headers["location"].endswith("&fee=carried")
        voucher = await signed_in.page(moved.headers["location"])
        assert "改约成功，已付挂号费已转入新预约。" in voucher.text
        assert "¥80.00" in _between(voucher.text, 'data-testid="payment"', "</div>")
        assert double.refunds == {}

    async def test_changing_to_a_free_clinic_refunds_the_fee(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx, W)
        held = await paid_through_notification(signed_in, ctx, world, double)
        page = await signed_in.page(f"/appointments/{held}/reschedule")
        assert "原挂号费将原路退回" in page.text
        await signed_in.page(f"/appointments/{held}/reschedule/{world.session.id}")
        moved = await signed_in.submit(
            f"/appointments/{held}/reschedule", {"session": str(world.session.id), "slot": ""}
        )
        assert moved.headers["location"].endswith("&fee=refunded")
        voucher = await signed_in.page(moved.headers["location"])
        assert "改约成功，原挂号费将原路退回。" in voucher.text
        old = await appointment(ctx, held)
        assert (old.status, old.refund_state) == (AppointmentStatus.CANCELLED, RefundShown.PENDING)


def _between(text: str, start: str, end: str) -> str:
    begin = text.index(start)
    return text[begin : text.index(end, begin)]
