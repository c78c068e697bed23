"""Paying at the kiosk: a held appointment found by its short code shows a WeChat Pay
Native QR code (inline SVG, no script) on a page that refreshes itself and, by querying
the provider, turns into "paid" once the patient paid on their phone; an appointment that
is not held is refused and nothing is created."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
import segno
from sqlalchemy import func, select

from tests.frontdesk.test_pages import Floor, floor, http, kiosk  # noqa: F401  (fixtures)
from tests.payments.support import fee_session, hold, install_double, order_for
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.kit.crypto import TokenSigner, load_master_secret
from yuyue.payments.models import PaymentAttempt, PaymentOrder
from yuyue.staff.rules import system_actor

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>")


async def held_appointment(floor: Floor) -> Appointment:  # noqa: F811
    held = await hold(floor.ctx, floor.world, await fee_session(floor.ctx, floor.world))
    async with floor.ctx.db.read() as s:
        found = await s.get(Appointment, held)
    assert found is not None and found.status == "held"
    return found


def pay_link(floor: Floor, appointment_id: uuid.UUID) -> str:  # noqa: F811
    signer = TokenSigner(load_master_secret(floor.ctx.settings.master_secret), "kiosk-pay")
    token = signer.sign(
        {"aid": str(appointment_id), "hid": str(floor.world.hospital.id)},
        expires_at=floor.ctx.clock.now() + timedelta(minutes=5),
    )
    return f"/kiosk/pay?t={token}"


async def order_count(floor: Floor) -> int:  # noqa: F811
    async with floor.ctx.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(PaymentOrder)) or 0)


class TestKioskPayment:
    async def test_a_held_appointment_shows_a_qr_code_until_it_is_paid(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        double = install_double(floor.ctx)
        appointment = await held_appointment(floor)
        device = await kiosk(http, floor)
        last4 = floor.world.patient.phone_masked[-4:]

        found = await device.submit(
            "/kiosk/code", {"code": appointment.voucher_code, "last4": last4}
        )

        assert found.status_code == 303, found.text
        link = found.headers["location"]
        assert link.startswith("/kiosk/pay?t=")
        page = await http.get(link)
        assert page.status_code == 200, page.text
        order = await order_for(floor.ctx, appointment.id)
        assert (order.provider, order.method, order.state) == ("wechatpay", "native", "created")
        assert order.checkout is not None
        qr = segno.make(order.checkout["qr_content"], error="m").svg_inline(
            scale=6, border=4, title="微信支付二维码"
        )
        assert qr in page.text
        assert '<meta http-equiv="refresh" content="3">' in page.text
        assert 'data-testid="amount">¥80.00<' in page.text
        assert not INLINE_SCRIPT.search(page.text)

        # Refreshing shows the same order's code; nothing new is created at the provider.
        again = await http.get(link)
        assert qr in again.text
        assert [call for call in double.calls if call[0] == "create"] == [
            ("create", order.out_trade_no)
        ]
        assert await order_count(floor) == 1

        # The patient pays on their phone; the notification has not arrived yet.
        double.pay(order.out_trade_no)
        paid = await http.get(link)

        assert paid.status_code == 200
        assert "支付成功" in paid.text and 'data-testid="qr"' not in paid.text
        assert '<meta http-equiv="refresh" content="30;url=/kiosk">' in paid.text
        order = await order_for(floor.ctx, appointment.id)
        assert order.state == "paid"
        async with floor.ctx.db.read() as s:
            booked = await s.get(Appointment, appointment.id)
            queried = await s.scalar(
                select(func.count())
                .select_from(PaymentAttempt)
                .where(PaymentAttempt.order_id == order.id, PaymentAttempt.kind == "query")
            )
        assert booked is not None and booked.status == "booked" and booked.paid_fen == 8000
        assert queried and queried >= 1
        # Now the same code checks the patient in.
        checked = await device.submit(
            "/kiosk/code", {"code": appointment.voucher_code, "last4": last4}
        )
        assert checked.status_code == 303
        assert checked.headers["location"].startswith("/kiosk/tickets/")

    async def test_an_appointment_that_is_not_held_is_refused(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        install_double(floor.ctx)
        appointment = await held_appointment(floor)
        async with floor.ctx.db.session_scope() as s:
            await booking_service.cancel(
                s,
                actor=system_actor(floor.world.hospital.id, "test"),
                appointment_id=appointment.id,
                note=None,
                now=floor.ctx.clock.now(),
            )
        await kiosk(http, floor)

        refused = await http.get(pay_link(floor, appointment.id))

        assert refused.status_code == 409
        assert "只有待支付的锁号可以支付" in refused.text
        assert 'data-testid="qr"' not in refused.text
        assert await order_count(floor) == 0

    async def test_a_forged_or_foreign_link_is_refused(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        install_double(floor.ctx)
        appointment = await held_appointment(floor)
        await kiosk(http, floor)
        link = pay_link(floor, appointment.id)

        forged = await http.get(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"))
        voucher = floor.ctx.voucher_signer.sign(
            {"aid": str(appointment.id), "hid": str(floor.world.hospital.id)},
            expires_at=floor.ctx.clock.now() + timedelta(minutes=5),
        )
        other_purpose = await http.get(f"/kiosk/pay?t={voucher}")

        for response in (forged, other_purpose):
            assert response.status_code == 422
            assert "支付页面已过期" in response.text
        assert await order_count(floor) == 0
