"""The registration window (挂号窗口) over HTTP: a registrar finds a patient by ID number,
phone or medical record number (or registers one), registers them for tomorrow's clinic
with a fee, takes the fee at the window with a receipt number, prints the slip, then cancels
and hands the money back.
Every refusal is a sentence on the page and changes nothing; nobody else may use it."""

from __future__ import annotations

import re
import uuid
from datetime import date, time, timedelta

import httpx
import pytest_asyncio
from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY
from tests.frontdesk.test_pages import Floor, floor, http, staff  # noqa: F401  (fixtures)
from tests.helpers import row_counts
from tests.portal.conftest import Browser
from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus
from yuyue.patients import service as patient_service
from yuyue.patients.models import Patient
from yuyue.patients.rules import IdType
from yuyue.payments.models import PaymentOrder, Refund
from yuyue.payments.states import OrderState, RefundState
from yuyue.scheduling.models import ClinicSession
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry

PAGE = "/desk/window"
TOMORROW = VISIT_DAY + timedelta(days=1)  # the floor's clock stands on VISIT_DAY's morning
NUMBER = re.compile(r"\b\d{17}[\dX]\b|\b1[3-9]\d{9}\b")


@pytest_asyncio.fixture
async def registrar_floor(floor: Floor) -> Floor:  # noqa: F811
    async with floor.ctx.db.session_scope() as s:
        await staff_service.create_staff(
            s,
            hospital_id=floor.world.hospital.id,
            username="registrar",
            display_name="窗口一",
            password="secret-pass",
            roles=[Role.REGISTRAR],
            doctor_id=None,
            now=NOW,
        )
    return floor


async def fee_session(floor: Floor, day: date = TOMORROW) -> ClinicSession:  # noqa: F811
    world = floor.world
    async with floor.ctx.db.session_scope() as s:
        return await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.fee_level,
            doctor=world.doctor,
            day=day,
            start=time(13, 30),
            end=time(17, 0),
            now=NOW,
        )


async def registrar(http: httpx.AsyncClient) -> Browser:  # noqa: F811
    browser = await staff(http, "registrar")
    opened = await browser.page(PAGE)
    assert opened.status_code == 200, opened.text
    return browser


async def id_number_of(floor: Floor, patient: Patient) -> str:  # noqa: F811
    return floor.ctx.cipher.decrypt(patient.id_cipher)


async def audit(floor: Floor, action: str) -> list[AuditEntry]:  # noqa: F811
    async with floor.ctx.db.read() as s:
        return list((await s.scalars(select(AuditEntry).where(AuditEntry.action == action))).all())


async def appointment(floor: Floor, appointment_id: uuid.UUID) -> Appointment:  # noqa: F811
    async with floor.ctx.db.read() as s:
        found = await s.get(Appointment, appointment_id)
    assert found is not None
    return found


def slip_id(response: httpx.Response) -> uuid.UUID:
    assert response.status_code == 303, response.text
    found = re.search(r"/desk/window/appointments/([0-9a-f-]{36})", response.headers["location"])
    assert found is not None
    return uuid.UUID(found.group(1))


def no_full_numbers(html: str) -> None:
    """No resident ID number or mobile number whole on the page."""
    assert NUMBER.search(html) is None, NUMBER.search(html)


class TestWhoMayUseTheWindow:
    async def test_nobody_is_sent_to_sign_in_and_a_nurse_is_refused(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        response = await http.get(PAGE)
        assert response.status_code == 303
        assert response.headers["location"] == f"/staff/signin?next={PAGE}"
        await staff(http, "nurse")
        assert (await http.get(PAGE)).status_code == 403

    async def test_a_forged_form_changes_nothing(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        window = await registrar(http)
        window.csrf = "forged"
        before = await row_counts(registrar_floor.ctx.db)
        refused = await window.submit(
            f"{PAGE}/patients",
            {
                "name": "赵六",
                "id_type": "resident_id",
                "id_number": f.resident_id(),
                "phone": f.phone(),
            },
        )
        assert refused.status_code == 403
        assert await row_counts(registrar_floor.ctx.db) == before


class TestFindAPatient:
    async def test_by_id_number_shows_the_patient_masked_and_logs_the_look_up(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        world = registrar_floor.world
        number = await id_number_of(registrar_floor, world.patient)
        window = await registrar(http)
        found = await window.submit(
            f"{PAGE}/find", {"q": f"{number[:6]} {number[6:14]} {number[14:]}"}
        )
        assert found.status_code == 303, found.text
        assert found.headers["location"] == f"{PAGE}?patient={world.patient.id}"
        page = await window.page(found.headers["location"])
        assert page.status_code == 200
        assert "张三" in page.text and world.patient.id_masked in page.text
        no_full_numbers(page.text)
        # The look-up names the patient found, who looked, as what, from where: never the
        # number typed.
        [looked_up] = await audit(registrar_floor, "read.lookup")
        assert looked_up.entity_type == "patient" and looked_up.entity_id == world.patient.id
        assert "窗口一" in looked_up.actor
        assert looked_up.after == {
            "by": "resident_id",
            "found": 1,
            "roles": ["registrar"],
            "route": "POST /desk/window/find",
            "address": "203.0.113.9",  # the test client's (tests/frontdesk/test_pages.py)
        }
        [viewed] = await audit(registrar_floor, "read.record")
        assert viewed.entity_id == world.patient.id
        assert viewed.after is not None and viewed.after["route"] == "GET /desk/window"
        assert viewed.after["read"] == "profile, visits"
        async with registrar_floor.ctx.db.read() as s:
            logged = [(e.actor, e.after, e.before) for e in await s.scalars(select(AuditEntry))]
        assert number not in repr(logged) and number[6:14] not in repr(logged)

    async def test_the_full_number_is_shown_once_with_a_reason_and_logged(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        world = registrar_floor.world
        number = await id_number_of(registrar_floor, world.patient)
        window = await registrar(http)
        page = await window.page(f"{PAGE}?patient={world.patient.id}")
        assert 'data-testid="unmask-form"' in page.text
        url = f"{PAGE}/patients/{world.patient.id}/unmask"

        # No reason: nothing shown, nothing written.
        before = await row_counts(registrar_floor.ctx.db)
        refused = await window.submit(url, {"field": "id_number", "reason": "", "other": " "})
        assert refused.status_code == 422
        assert "查看完整号码须说明原因" in refused.text
        no_full_numbers(refused.text)
        assert await row_counts(registrar_floor.ctx.db) == before

        shown = await window.submit(url, {"field": "id_number", "reason": "card", "other": ""})
        assert shown.status_code == 200, shown.text
        assert f'data-testid="unmasked-value">{number}<' in shown.text
        assert shown.headers["cache-control"] == "no-store"
        typed = await window.submit(
            url, {"field": "phone", "reason": "card", "other": "患者要求更正手机号"}
        )
        assert typed.status_code == 200
        [first, second] = await audit(registrar_floor, "read.unmask")
        assert first.after is not None and second.after is not None
        assert (first.after["field"], first.after["reason"]) == ("id_number", "核对患者证件")
        assert (second.after["field"], second.after["reason"]) == ("phone", "患者要求更正手机号")
        assert first.after["route"] == "POST /desk/window/patients/{patient_id}/unmask"
        assert number not in repr(first.after)

    async def test_by_phone_lists_everyone_of_the_family(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        holder = f.phone()
        family: list[Patient] = []
        async with registrar_floor.ctx.db.session_scope() as s:
            for name in ("周一", "周二"):
                # One family: the holder's phone on both patients of the account.
                member = await patient_service.register_patient(
                    s,
                    hospital_id=registrar_floor.world.hospital.id,
                    cipher=registrar_floor.ctx.cipher,
                    name=name,
                    id_type=IdType.RESIDENT_ID,
                    id_number=f.resident_id(),
                    phone=holder,
                    account_phone=None,
                    birth_date=None,
                    sex=None,
                    account_patients_max=5,
                    today=NOW.date(),
                    now=NOW,
                )
                family.append(member)
        window = await registrar(http)
        listed = await window.submit(f"{PAGE}/find", {"q": f"+86 {holder}"})
        assert listed.status_code == 200, listed.text
        assert listed.text.count('data-testid="choose-patient"') == 2
        assert "周一" in listed.text and "周二" in listed.text
        no_full_numbers(listed.text)
        found = await audit(registrar_floor, "read.lookup")
        assert {e.entity_id for e in found} == {p.id for p in family}
        assert all(e.after and e.after["by"] == "phone" and e.after["found"] == 2 for e in found)
        assert all(holder not in repr(e.after) for e in found)

    async def test_a_mistyped_resident_id_is_explained_and_nothing_is_written(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        number = await id_number_of(registrar_floor, registrar_floor.world.patient)
        wrong = number[:17] + ("0" if number[17] != "0" else "1")
        window = await registrar(http)
        before = await row_counts(registrar_floor.ctx.db)
        refused = await window.submit(f"{PAGE}/find", {"q": wrong})
        assert refused.status_code == 422
        assert "校验码" in refused.text
        assert await row_counts(registrar_floor.ctx.db) == before

    async def test_text_that_is_no_number_is_refused(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        window = await registrar(http)
        for query in ("", "张三!", "?"):
            refused = await window.submit(f"{PAGE}/find", {"q": query})
            assert refused.status_code == 422
            assert "请输入证件号码、11位手机号码或病历号" in refused.text

    async def test_by_medical_record_number_opens_the_patient_and_logs_the_kind(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        world = registrar_floor.world
        record = world.patient.record_number
        window = await registrar(http)
        typed = f"mr-{int(record.removeprefix('MR'))}"
        found = await window.submit(f"{PAGE}/find", {"q": typed})
        assert found.status_code == 303, found.text
        assert found.headers["location"] == f"{PAGE}?patient={world.patient.id}"
        page = await window.page(found.headers["location"])
        assert f'data-testid="patient-record-number">{record}<' in page.text
        [looked_up] = await audit(registrar_floor, "read.lookup")
        assert looked_up.entity_id == world.patient.id
        assert looked_up.after is not None
        assert (looked_up.after["by"], looked_up.after["found"]) == ("record_number", 1)
        async with registrar_floor.ctx.db.read() as s:
            logged = repr(
                [(e.actor, e.after, e.before) for e in await s.scalars(select(AuditEntry))]
            )
        assert typed not in logged and record not in logged

    async def test_a_record_number_nobody_has_is_not_found_and_not_offered_for_registering(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        window = await registrar(http)
        before = await row_counts(registrar_floor.ctx.db)
        missing = await window.submit(f"{PAGE}/find", {"q": "MR99999999"})
        assert missing.status_code == 200
        assert 'data-testid="not-found"' in missing.text
        # The hospital gives record numbers; the register form does not start from one.
        assert 'value="MR99999999"' not in missing.text
        assert await row_counts(registrar_floor.ctx.db) == before

    async def test_a_malformed_record_number_is_refused(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        window = await registrar(http)
        before = await row_counts(registrar_floor.ctx.db)
        refused = await window.submit(f"{PAGE}/find", {"q": "MR#00000001"})
        assert refused.status_code == 422
        assert "病历号（MR 开头）" in refused.text
        assert await row_counts(registrar_floor.ctx.db) == before

    async def test_nobody_found_offers_the_register_form(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        window = await registrar(http)
        before = await row_counts(registrar_floor.ctx.db)
        missing = await window.submit(f"{PAGE}/find", {"q": f.resident_id()})
        assert missing.status_code == 200
        assert 'data-testid="not-found"' in missing.text
        assert 'data-testid="register-form"' in missing.text
        assert await row_counts(registrar_floor.ctx.db) == before


class TestRegisterAPatient:
    async def test_a_new_patient_is_registered_and_audited(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        window = await registrar(http)
        number = f.resident_id(birth=date(1950, 3, 4), sex="F")
        done = await window.submit(
            f"{PAGE}/patients",
            {"name": " 王  芳 ", "id_type": "resident_id", "id_number": number, "phone": f.phone()},
        )
        assert done.status_code == 303, done.text
        page = await window.page(done.headers["location"])
        assert "已登记，可以为其挂号" in page.text
        assert "王 芳" in page.text and "女" in page.text and "76 岁" in page.text
        no_full_numbers(page.text)
        [registered] = await audit(registrar_floor, "patient.registered")
        assert registered.after is not None
        assert registered.after["id_number"] != number and "*" in registered.after["id_number"]

    async def test_bad_input_is_a_sentence_and_changes_nothing(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        window = await registrar(http)
        before = await row_counts(registrar_floor.ctx.db)
        cases = [
            ({"name": "王芳", "id_number": f.resident_id(), "phone": "12345"}, "手机号码"),
            (
                {"name": "王芳", "id_number": "110101199001011234", "phone": f.phone()},
                "证件号码有误",
            ),
            ({"name": "王芳1", "id_number": f.resident_id(), "phone": f.phone()}, "姓名"),
            (
                {
                    "name": "Anna",
                    "id_type": "passport",
                    "id_number": "E1234567",
                    "phone": f.phone(),
                },
                "birth_date",
            ),
            (
                {
                    "name": "王芳",
                    "id_type": "card",
                    "id_number": f.resident_id(),
                    "phone": f.phone(),
                },
                "请选择证件类型",
            ),
        ]
        for values, sentence in cases:
            refused = await window.submit(f"{PAGE}/patients", {"id_type": "resident_id", **values})
            assert refused.status_code == 422, values
            assert sentence in refused.text, values
        assert await row_counts(registrar_floor.ctx.db) == before

    async def test_someone_already_registered_is_pointed_to(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        world = registrar_floor.world
        number = await id_number_of(registrar_floor, world.patient)
        window = await registrar(http)
        before = await row_counts(registrar_floor.ctx.db)
        refused = await window.submit(
            f"{PAGE}/patients",
            {"name": "张三", "id_type": "resident_id", "id_number": number, "phone": f.phone()},
        )
        assert refused.status_code == 409
        assert f'href="{PAGE}?patient={world.patient.id}"' in refused.text
        assert await row_counts(registrar_floor.ctx.db) == before


class TestRegisterTakeTheFeeCancelAndRefund:
    async def test_a_walk_in_for_tomorrow_pays_cash_then_cancels_and_is_refunded(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        world = registrar_floor.world
        clinic = await fee_session(registrar_floor)
        window = await registrar(http)
        patient_page = f"{PAGE}?patient={world.patient.id}"
        picker = await window.page(
            f"{patient_page}&day={TOMORROW.isoformat()}&department={world.department.id}"
        )
        assert picker.status_code == 200
        assert f"session={clinic.id}" in picker.text
        chosen = await window.page(
            f"{patient_page}&day={TOMORROW.isoformat()}&department={world.department.id}"
            f"&session={clinic.id}"
        )
        assert 'data-testid="book-form"' in chosen.text
        assert "¥80.00" in chosen.text

        booked = await window.submit(
            f"{PAGE}/book",
            {
                "patient": str(world.patient.id),
                "session": str(clinic.id),
                "day": TOMORROW.isoformat(),
            },
        )
        appointment_id = slip_id(booked)
        held = await appointment(registrar_floor, appointment_id)
        assert held.status == AppointmentStatus.HELD and held.channel == "window"
        slip = await window.page(booked.headers["location"])
        assert "号源已保留，请在" in slip.text and 'data-testid="pay-form"' in slip.text
        assert 'data-testid="voucher"' not in slip.text  # no voucher before the fee

        # The fee in cash with the receipt number: booked at once, the slip has the voucher.
        before = await row_counts(registrar_floor.ctx.db)
        refused = await window.submit(
            f"{PAGE}/appointments/{appointment_id}/pay", {"method": "cash", "receipt_no": " "}
        )
        assert refused.status_code == 422 and "请填写收据号" in refused.text
        refused = await window.submit(
            f"{PAGE}/appointments/{appointment_id}/pay", {"method": "jsapi", "receipt_no": "R1"}
        )
        assert refused.status_code == 422 and "请选择支付方式" in refused.text
        assert await row_counts(registrar_floor.ctx.db) == before
        paid = await window.submit(
            f"{PAGE}/appointments/{appointment_id}/pay",
            {"method": "cash", "receipt_no": "SF-20261123-0007"},
        )
        assert paid.status_code == 303, paid.text
        slip = await window.page(paid.headers["location"])
        assert "已收费 ¥80.00，挂号完成" in slip.text
        assert "SF-20261123-0007" in slip.text and 'data-testid="voucher"' in slip.text
        assert (
            "<svg" in slip.text
            and (await appointment(registrar_floor, appointment_id)).voucher_code in slip.text
        )
        assert "退号后应当场退还患者 ¥80.00（现金）" in slip.text
        no_full_numbers(slip.text)
        assert (
            await appointment(registrar_floor, appointment_id)
        ).status == AppointmentStatus.BOOKED

        # Paying twice is refused and changes nothing.
        before = await row_counts(registrar_floor.ctx.db)
        again = await window.submit(
            f"{PAGE}/appointments/{appointment_id}/pay", {"method": "cash", "receipt_no": "X"}
        )
        assert again.status_code == 409
        assert await row_counts(registrar_floor.ctx.db) == before

        # 退号: cancelled; the cash is due back at the window.
        cancelled = await window.submit(
            f"{PAGE}/appointments/{appointment_id}/cancel", {"note": "患者改期"}
        )
        assert cancelled.status_code == 303, cancelled.text
        slip = await window.page(cancelled.headers["location"])
        assert "已退号" in slip.text
        assert "应退还患者 ¥80.00" in slip.text
        async with registrar_floor.ctx.db.read() as s:
            refund = await s.scalar(select(Refund).where(Refund.appointment_id == appointment_id))
        assert refund is not None and refund.state == RefundState.AT_WINDOW

        handed = await window.submit(
            f"{PAGE}/appointments/{appointment_id}/refund", {"receipt_no": "TF-0001"}
        )
        assert handed.status_code == 303, handed.text
        slip = await window.page(handed.headers["location"])
        assert "已退还 ¥80.00" in slip.text and "TF-0001" in slip.text
        async with registrar_floor.ctx.db.read() as s:
            refund = await s.scalar(select(Refund).where(Refund.appointment_id == appointment_id))
            order = await s.scalar(
                select(PaymentOrder).where(PaymentOrder.appointment_id == appointment_id)
            )
        assert refund is not None and refund.state == RefundState.SUCCEEDED
        assert refund.handled_by is not None and "窗口一" in refund.handled_by
        assert order is not None and order.state == OrderState.REFUNDED

        # Handing it back twice is refused and changes nothing.
        before = await row_counts(registrar_floor.ctx.db)
        twice = await window.submit(f"{PAGE}/appointments/{appointment_id}/refund", {})
        assert twice.status_code == 409
        assert "不需要在窗口办理" in twice.text
        assert await row_counts(registrar_floor.ctx.db) == before

        # Each step is in the audit trail, by the registrar.
        for action in ("book", "pay_at_window", "cancel", "refund_at_window"):
            entries = await audit(registrar_floor, action)
            assert any("窗口一" in e.actor for e in entries), action

        # The patient's page lists it in the history with its state.
        history = await window.page(f"{patient_page}")
        assert 'data-status="cancelled"' in history.text and "已退款" in history.text

    async def test_a_free_clinic_today_books_at_once_with_its_voucher(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        world = registrar_floor.world
        window = await registrar(http)
        await window.page(f"{PAGE}?patient={world.patient.id}")
        booked = await window.submit(
            f"{PAGE}/book",
            {"patient": str(world.patient.id), "session": str(world.session.id)},
        )
        appointment_id = slip_id(booked)
        slip = await window.page(booked.headers["location"])
        assert "挂号成功" in slip.text and 'data-testid="voucher"' in slip.text
        # The slip carries the patient's medical record number.
        assert f'data-testid="slip-record-number">{world.patient.record_number}<' in slip.text
        assert 'data-testid="pay-form"' not in slip.text
        assert "尚未缴费，退号不涉及退款" in slip.text
        assert (
            await appointment(registrar_floor, appointment_id)
        ).status == AppointmentStatus.BOOKED

    async def test_a_rule_refuses_with_its_sentence_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        world = registrar_floor.world
        window = await registrar(http)
        await window.page(f"{PAGE}?patient={world.patient.id}")
        first = await window.submit(
            f"{PAGE}/book", {"patient": str(world.patient.id), "session": str(world.session.id)}
        )
        slip_id(first)
        before = await row_counts(registrar_floor.ctx.db)
        again = await window.submit(
            f"{PAGE}/book", {"patient": str(world.patient.id), "session": str(world.session.id)}
        )
        assert again.status_code == 409
        assert "该就诊人已预约本次出诊" in again.text
        assert 'data-testid="patient"' in again.text  # back on the patient's page
        missing = await window.submit(f"{PAGE}/book", {"patient": str(world.patient.id)})
        assert missing.status_code == 422 and "请选择出诊" in missing.text
        assert await row_counts(registrar_floor.ctx.db) == before

    async def test_a_session_that_has_ended_is_refused(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        world = registrar_floor.world
        yesterday = await fee_session(registrar_floor, VISIT_DAY - timedelta(days=1))
        window = await registrar(http)
        await window.page(f"{PAGE}?patient={world.patient.id}")
        before = await row_counts(registrar_floor.ctx.db)
        refused = await window.submit(
            f"{PAGE}/book", {"patient": str(world.patient.id), "session": str(yesterday.id)}
        )
        assert refused.status_code == 409
        assert "该出诊的预约已截止" in refused.text
        assert await row_counts(registrar_floor.ctx.db) == before

    async def test_english_pages(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        registrar_floor: Floor,
    ) -> None:
        world = registrar_floor.world
        window = await registrar(http)
        page = await window.page(
            f"{PAGE}?patient={world.patient.id}", headers={"accept-language": "en"}
        )
        assert page.status_code == 200
        assert "Registration window" in page.text
