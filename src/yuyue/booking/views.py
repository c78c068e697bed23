"""The answer for an appointment, built from facts already in hand where possible."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import rules
from yuyue.booking.facts import SessionInfo
from yuyue.booking.models import Appointment
from yuyue.booking.schemas import (
    AppointmentRead,
    PaymentBrief,
    PaymentSplit,
    RefundBrief,
    SessionBrief,
    SlotBrief,
    Voucher,
)
from yuyue.booking.service import NO_CACHE, Booked, Caches, session_facts
from yuyue.booking.states import AppointmentStatus, RefundShown
from yuyue.booking.store import AppointmentRecord
from yuyue.kit.crypto import TokenSigner
from yuyue.kit.localtime import local_instant
from yuyue.scheduling.models import TimeSlot
from yuyue.scheduling.schemas import DoctorBrief, Named

_VOUCHER_STATUSES = {AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN}


def voucher_token(
    signer: TokenSigner, appointment: Appointment | AppointmentRecord, *, timezone: str
) -> str:
    # Valid until the end of the visit day: a screenshot of yesterday's code proves nothing.
    expires = local_instant(appointment.visit_date + timedelta(days=1), time(0, 0), timezone)
    return signer.sign(
        {"aid": str(appointment.id), "hid": str(appointment.hospital_id)}, expires_at=expires
    )


def render(
    appointment: Appointment | AppointmentRecord,
    *,
    info: SessionInfo,
    policy: rules.Policy,
    slot_start: time,
    slot_end: time,
    voucher_signer: TokenSigner,
    locale: str,
) -> AppointmentRead:
    # Built without validation: every value comes typed from the database or the domain,
    # and this runs inside the booking transaction at the release peak (validating the
    # nested models cost as much as the statements' encoding).
    english = locale == "en"

    def pick(zh: str, en: str) -> str:
        return en if english and en else zh

    status = AppointmentStatus(appointment.status)
    doctor = (
        DoctorBrief.model_construct(
            id=info.doctor_id,
            name=info.doctor_name or "",
            title=pick(info.doctor_title, info.doctor_title_en),
        )
        if info.doctor_id is not None
        else None
    )
    return AppointmentRead.model_construct(
        id=appointment.id,
        status=status,
        sequence_number=appointment.sequence_number,
        patient_id=appointment.patient_id,
        channel=appointment.channel,
        fee=appointment.fee_fen,
        session=SessionBrief.model_construct(
            id=info.id,
            date=info.date,
            period=info.period,
            department=Named.model_construct(
                id=info.department_id, name=pick(info.department_name, info.department_name_en)
            ),
            doctor=doctor,
            level=pick(info.level_name, info.level_name_en),
            location=pick(info.location, info.location_en),
        ),
        slot=SlotBrief.model_construct(id=appointment.slot_id, start=slot_start, end=slot_end),
        voucher=Voucher.model_construct(
            code=appointment.voucher_code,
            token=voucher_token(voucher_signer, appointment, timezone=info.timezone),
        )
        if status in _VOUCHER_STATUSES
        else None,
        hold_expires_at=appointment.hold_expires_at,
        cancellation_deadline=rules.cancellation_deadline(policy, info.facts),
        booked_at=appointment.booked_at,
        cancelled_at=appointment.cancelled_at,
        cancel_reason=appointment.cancel_reason,
        created_at=appointment.created_at,
        payment=PaymentBrief.model_construct(
            state=rules.payment_state_shown(appointment.refund_state),
            amount_fen=appointment.paid_fen,
            provider=appointment.payment_provider,
            split=_split(appointment),
        )
        if appointment.paid_fen
        else None,
        refund=RefundBrief.model_construct(state=appointment.refund_state)
        if appointment.refund_state != RefundShown.NONE.value
        else None,
    )


def _split(appointment: Appointment | AppointmentRecord) -> PaymentSplit | None:
    parts = (
        appointment.split_pool_fen,
        appointment.split_account_fen,
        appointment.split_self_pay_fen,
    )
    if parts[0] is None or parts[1] is None or parts[2] is None:
        return None
    return PaymentSplit.model_construct(
        pool_fen=parts[0], account_fen=parts[1], self_pay_fen=parts[2]
    )


def render_booked(booked: Booked, *, voucher_signer: TokenSigner, locale: str) -> AppointmentRead:
    view = render(
        booked.appointment,
        info=booked.info,
        policy=booked.policy,
        slot_start=booked.slot_start,
        slot_end=booked.slot_end,
        voucher_signer=voucher_signer,
        locale=locale,
    )
    if booked.payment_carried_over is not None:
        view.payment_carried_over = booked.payment_carried_over
    return view


def _instant(value: datetime) -> str:
    """A datetime as pydantic writes it in JSON (UTC as `Z`)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def booked_answer(booked: Booked, *, voucher_signer: TokenSigner, locale: str) -> dict[str, Any]:
    """The booking POST's answer as JSON values: exactly `render_booked(...).model_dump(
    mode="json")` (a test holds them equal), written out directly for a new appointment,
    which has no payment, refund or cancellation yet. At the release peak building and
    dumping the nested models cost as much as a statement."""
    a = booked.appointment
    if (
        booked.payment_carried_over is not None
        or a.paid_fen
        or a.refund_state != RefundShown.NONE.value
        or a.cancelled_at is not None
        or a.cancel_reason is not None
    ):
        return render_booked(booked, voucher_signer=voucher_signer, locale=locale).model_dump(
            mode="json"
        )
    info = booked.info
    english = locale == "en"
    status = AppointmentStatus(a.status)
    return {
        "id": str(a.id),
        "status": status.value,
        "sequence_number": a.sequence_number,
        "patient_id": str(a.patient_id),
        "channel": a.channel,
        "fee": a.fee_fen,
        "session": {
            "id": str(info.id),
            "date": info.date.isoformat(),
            "period": info.period.value,
            "department": {
                "id": str(info.department_id),
                "name": info.department_name_en
                if english and info.department_name_en
                else info.department_name,
            },
            "doctor": {
                "id": str(info.doctor_id),
                "name": info.doctor_name or "",
                "title": info.doctor_title_en
                if english and info.doctor_title_en
                else info.doctor_title,
            }
            if info.doctor_id is not None
            else None,
            "level": info.level_name_en if english and info.level_name_en else info.level_name,
            "location": info.location_en if english and info.location_en else info.location,
        },
        "slot": {
            "id": str(a.slot_id),
            "start": booked.slot_start.isoformat(),
            "end": booked.slot_end.isoformat(),
        },
        "voucher": {
            "code": a.voucher_code,
            "token": voucher_token(voucher_signer, a, timezone=info.timezone),
        }
        if status in _VOUCHER_STATUSES
        else None,
        "hold_expires_at": _instant(a.hold_expires_at) if a.hold_expires_at else None,
        "cancellation_deadline": _instant(rules.cancellation_deadline(booked.policy, info.facts)),
        "booked_at": _instant(a.booked_at) if a.booked_at else None,
        "cancelled_at": None,
        "cancel_reason": None,
        "created_at": _instant(a.created_at),
        "payment": None,
        "refund": None,
        "payment_carried_over": None,
    }


async def appointment_view(
    session: AsyncSession,
    *,
    appointment: Appointment,
    voucher_signer: TokenSigner,
    locale: str = "zh-CN",
    caches: Caches = NO_CACHE,
) -> AppointmentRead:
    info, policy = await session_facts(
        session,
        hospital_id=appointment.hospital_id,
        session_id=appointment.session_id,
        caches=caches,
    )
    slot = (
        await session.execute(
            select(TimeSlot.start_time, TimeSlot.end_time).where(TimeSlot.id == appointment.slot_id)
        )
    ).one()
    return render(
        appointment,
        info=info,
        policy=policy,
        slot_start=slot[0],
        slot_end=slot[1],
        voucher_signer=voucher_signer,
        locale=locale,
    )


async def patient_appointments(
    session: AsyncSession, *, hospital_id: uuid.UUID, patient_id: uuid.UUID
) -> list[Appointment]:
    rows = (
        await session.scalars(
            select(Appointment)
            .where(Appointment.hospital_id == hospital_id, Appointment.patient_id == patient_id)
            .order_by(Appointment.visit_date.desc(), Appointment.created_at.desc())
            .limit(200)
        )
    ).all()
    return list(rows)
