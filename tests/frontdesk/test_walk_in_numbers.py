"""The number a patient is told: a booked appointment shows its booked sequence number, a
walk-in registered at the desk its walk-in number (现1, 现2…) — the one the screen calls —
on the portal's pages, the window's history and slip, and the text messages. A walk-in who
pays at the desk is not texted to pay."""

from __future__ import annotations

import re
from datetime import time

import httpx
from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW
from tests.frontdesk.test_pages import Floor, book, floor, http, staff  # noqa: F401  (fixtures)
from tests.frontdesk.test_window_pages import PAGE, registrar, registrar_floor  # noqa: F401
from tests.notifications.test_delivery import FakeSms
from tests.portal.conftest import Browser, sign_in
from tests.visits import support
from yuyue.booking.models import Appointment
from yuyue.notifications.delivery import Senders, deliver_due
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.models import Delivery, DeliveryStatus, OutboxMessage
from yuyue.patients.models import Patient
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor
from yuyue.visits import service as visits
from yuyue.visits.models import Visit

PHONE = "13912340001"


async def walk_in_at_the_desk(http: httpx.AsyncClient, floor: Floor) -> Appointment:  # noqa: F811
    """A patient with a portal account walks in at the triage desk; their appointment."""
    async with floor.ctx.db.session_scope() as s:
        patient = await f.make_patient(
            s,
            hospital=floor.world.hospital,
            cipher=floor.ctx.cipher,
            now=NOW,
            name="吴十",
            account_phone=PHONE,
        )
        id_number = floor.ctx.cipher.decrypt(patient.id_cipher)
        phone = floor.ctx.cipher.decrypt(patient.phone_cipher)
    nurse = await staff(http, "nurse")
    await nurse.page("/desk")
    done = await nurse.submit(
        "/desk/walk-in",
        {
            "session": str(floor.world.session.id),
            "name": "吴十",
            "id_type": "resident_id",
            "id_number": id_number,
            "phone": phone,
        },
    )
    assert done.status_code == 303, done.text
    http.cookies.clear()
    async with floor.ctx.db.read() as s:
        visit = await s.scalar(select(Visit).where(Visit.patient_id == patient.id))
        assert visit is not None and visit.walk_in and visit.queue_number == 1
        found = await s.get(Appointment, visit.appointment_id)
    assert found is not None
    return found


class TestTheWalkInNumberIsTheOneShown:
    async def test_the_portal_shows_the_walk_in_number_and_a_booking_its_own(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        booked = await book(floor)
        walk_in = await walk_in_at_the_desk(http, floor)
        # The appointment keeps the number its on-site place was given (not 1: the booked
        # patient has 1); the patient goes by 现1, as the screen calls them.
        assert walk_in.sequence_number not in (1, booked.sequence_number)
        assert (
            f'data-testid="sequence">{walk_in.sequence_number}<'
            not in (await Browser(http).page("/appointments")).text
        )
        patient = Browser(http)
        await sign_in(patient, floor.ctx, PHONE)
        page = await patient.page(f"/appointments/{walk_in.id}")
        assert re.search(r'data-testid="sequence">现1<', page.text), page.text
        listed = await patient.page("/appointments")
        assert "现1 号" in listed.text

    async def test_the_windows_history_and_slip_show_the_walk_in_number(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,  # noqa: F811
    ) -> None:
        walk_in = await walk_in_at_the_desk(http, registrar_floor)
        window = await registrar(http)
        async with registrar_floor.ctx.db.read() as s:
            patient = await s.get(Patient, walk_in.patient_id)
        assert patient is not None
        found = await window.submit(
            PAGE + "/find", {"q": registrar_floor.ctx.cipher.decrypt(patient.id_cipher)}
        )
        assert found.status_code == 303, found.text
        history = await window.page(found.headers["location"])
        assert re.search(r'data-testid="visit-number">现1<', history.text), history.text
        slip = await window.page(f"{PAGE}/appointments/{walk_in.id}")
        assert re.search(r'data-testid="slip-number">现1<', slip.text), slip.text

    async def test_the_messages_carry_the_walk_in_number_and_a_booking_its_own(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        booked = await book(floor)
        walk_in = await walk_in_at_the_desk(http, floor)
        sms = FakeSms()
        await deliver_due(floor.ctx, senders=Senders(sms=sms))
        texts = [call.text for call in sms.calls]
        walk_in_texts = [t for t in texts if "吴十" in t]
        assert walk_in_texts and all("序号现1，" in t for t in walk_in_texts), texts
        booked_texts = [t for t in texts if floor.world.patient.name in t]
        assert any(f"序号{booked.sequence_number}，" in t for t in booked_texts), texts
        assert walk_in.voucher_code in walk_in_texts[0]


class TestAWalkInWhoPaysAtTheDesk:
    async def test_is_told_the_booking_not_asked_to_pay(
        self,
        floor: Floor,  # noqa: F811
    ) -> None:
        world = floor.world
        async with floor.ctx.db.session_scope() as s:
            paid = await f.make_session(
                s,
                hospital=world.hospital,
                department=world.department,
                level=world.fee_level,
                day=floor.ctx.clock.now().date(),
                start=time(8, 0),
                end=time(17, 0),
                now=NOW,
            )
            patient = await f.make_patient(
                s, hospital=world.hospital, cipher=floor.ctx.cipher, now=NOW, name="郑十一"
            )
        async with floor.ctx.db.session_scope() as s:
            checked = await visits.walk_in(
                s,
                actor=_nurse(floor),
                patient_id=patient.id,
                session_id=paid.id,
                slot_id=None,
                now=floor.ctx.clock.now(),
                payment_reference="R-0001",
            )
        sms = FakeSms()
        await deliver_due(floor.ctx, senders=Senders(sms=sms))
        texts = [call.text for call in sms.calls if "郑十一" in call.text]
        # One text: the booking with the walk-in number; the "please pay" was withdrawn.
        assert len(texts) == 1 and "序号现1，" in texts[0], texts
        assert "支付" not in texts[0]
        async with floor.ctx.db.read() as s:
            held = (
                (
                    await s.execute(
                        select(Delivery.status)
                        .join(OutboxMessage, OutboxMessage.id == Delivery.message_id)
                        .where(
                            OutboxMessage.appointment_id == checked.visit.appointment_id,
                            OutboxMessage.kind == MessageKind.BOOKING_HELD,
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert held and set(held) == {DeliveryStatus.WITHDRAWN}


def _nurse(floor: Floor) -> Actor:  # noqa: F811
    return support.staff(floor.world, Role.NURSE)


def test_number_label_reads_as_the_screen_calls() -> None:
    assert visits.number_label(7, None) == "7"
    assert visits.number_label(7, 2) == "现2"
    assert visits.number_label(7, 2, locale="en") == "W2"
