"""The booking POST's answer written out directly is exactly the answer model's JSON."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from yuyue.booking import rules
from yuyue.booking.facts import SessionInfo
from yuyue.booking.service import Booked
from yuyue.booking.states import AppointmentStatus
from yuyue.booking.store import AppointmentRecord
from yuyue.booking.views import booked_answer, render_booked
from yuyue.kit.crypto import generate_master_secret, load_master_secrets
from yuyue.scheduling.enums import Period, SessionStatus

SIGNER = load_master_secrets(generate_master_secret()).signer("voucher")
AT = datetime(2026, 12, 7, 0, 0, 0, 123456, tzinfo=UTC)


def _info(**changes: object) -> SessionInfo:
    info = SessionInfo(
        id=uuid.uuid4(),
        hospital_id=uuid.uuid4(),
        date=date(2026, 12, 9),
        period=Period.MORNING,
        start_time=time(8, 0),
        end_time=time(12, 0),
        department_id=uuid.uuid4(),
        doctor_id=uuid.uuid4(),
        level_id=uuid.uuid4(),
        fee_fen=0,
        status=SessionStatus.OPEN,
        department_name="心血管内科",
        department_name_en="Cardiology",
        location="门诊楼3层",
        location_en="Clinic building, floor 3",
        min_age=None,
        max_age=None,
        sex_restriction=None,
        doctor_name="王建国",
        doctor_title="主任医师",
        doctor_title_en="Chief physician",
        level_name="专家号",
        level_name_en="Specialist",
        timezone="Asia/Shanghai",
    )
    return replace(info, **changes)  # type: ignore[arg-type]


def _booked(info: SessionInfo, **changes: object) -> Booked:
    appointment = AppointmentRecord(
        id=uuid.uuid4(),
        hospital_id=info.hospital_id,
        patient_id=uuid.uuid4(),
        session_id=info.id,
        slot_id=uuid.uuid4(),
        pool_id=uuid.uuid4(),
        department_id=info.department_id,
        doctor_id=info.doctor_id,
        visit_date=info.date,
        channel="app",
        status=AppointmentStatus.BOOKED,
        sequence_number=7,
        fee_fen=info.fee_fen,
        voucher_code="01234567",
        hold_expires_at=None,
        booked_at=AT,
        rescheduled_from_id=None,
        created_by="channel:app",
        created_at=AT,
    )
    for name, value in changes.items():
        setattr(appointment, name, value)
    return Booked(appointment, info, rules.Policy(), time(8, 30), time(8, 45, 0, 500))


HELD = {
    "status": AppointmentStatus.HELD,
    "booked_at": None,
    "hold_expires_at": AT + timedelta(minutes=15),
}


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize(
    ("info_changes", "appointment_changes"),
    [
        ({}, {}),
        ({"fee_fen": 5000}, HELD),
        ({"doctor_id": None, "doctor_name": None, "doctor_title": "", "doctor_title_en": ""}, {}),
        ({"department_name_en": "", "location_en": "", "level_name_en": ""}, {}),
        ({"period": Period.EVENING, "timezone": "UTC"}, {"created_at": AT.replace(microsecond=0)}),
    ],
)
def test_the_direct_answer_is_the_models_json(
    locale: str, info_changes: dict[str, object], appointment_changes: dict[str, object]
) -> None:
    booked = _booked(_info(**info_changes), **appointment_changes)
    expected = render_booked(booked, voucher_signer=SIGNER, locale=locale).model_dump(mode="json")
    assert booked_answer(booked, voucher_signer=SIGNER, locale=locale) == expected


def test_anything_but_a_new_appointment_goes_through_the_model() -> None:
    booked = _booked(_info(fee_fen=5000), paid_fen=5000, payment_provider="wechatpay")
    booked.payment_carried_over = True
    answer = booked_answer(booked, voucher_signer=SIGNER, locale="zh-CN")
    assert answer["payment"]["amount_fen"] == 5000 and answer["payment_carried_over"] is True
    assert answer == render_booked(booked, voucher_signer=SIGNER, locale="zh-CN").model_dump(
        mode="json"
    )
