"""Read models for appointments: one query joins everything an answer shows."""

from __future__ import annotations

import uuid
from datetime import time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import rules
from yuyue.booking.models import Appointment, AppointmentStatus
from yuyue.booking.schemas import AppointmentRead, SessionBrief, SlotBrief, Voucher
from yuyue.booking.service import load_policy
from yuyue.kit.crypto import TokenSigner
from yuyue.scheduling.models import (
    ClinicSession,
    Department,
    Doctor,
    Hospital,
    RegistrationLevel,
    TimeSlot,
)
from yuyue.scheduling.schemas import DoctorBrief, Named

_VOUCHER_STATUSES = {AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN}


def voucher_token(signer: TokenSigner, appointment: Appointment, *, timezone: str) -> str:
    # Valid until the end of the visit day: a screenshot of yesterday's code proves nothing.
    expires = rules.local_instant(appointment.visit_date + timedelta(days=1), time(0, 0), timezone)
    return signer.sign(
        {"aid": str(appointment.id), "hid": str(appointment.hospital_id)}, expires_at=expires
    )


async def appointment_view(
    session: AsyncSession,
    *,
    appointment: Appointment,
    voucher_signer: TokenSigner,
    locale: str = "zh-CN",
) -> AppointmentRead:
    row = (
        await session.execute(
            select(
                ClinicSession, Department, Doctor, RegistrationLevel, TimeSlot, Hospital.timezone
            )
            .join(Department, Department.id == ClinicSession.department_id)
            .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
            .join(RegistrationLevel, RegistrationLevel.id == ClinicSession.level_id)
            .join(Hospital, Hospital.id == ClinicSession.hospital_id)
            .join(TimeSlot, TimeSlot.id == appointment.slot_id)
            .where(ClinicSession.id == appointment.session_id)
        )
    ).one()
    clinic, department, doctor, level, slot, timezone = row
    policy = await load_policy(
        session, hospital_id=appointment.hospital_id, department_id=department.id
    )
    facts = rules.SessionFacts(
        clinic.id,
        clinic.date,
        clinic.start_time,
        clinic.end_time,
        department.id,
        clinic.doctor_id,
        clinic.status,
        timezone,
    )
    english = locale == "en"
    status = AppointmentStatus(appointment.status)
    return AppointmentRead(
        id=appointment.id,
        status=status,
        sequence_number=appointment.sequence_number,
        patient_id=appointment.patient_id,
        channel=appointment.channel,
        fee=appointment.fee_fen,
        session=SessionBrief(
            id=clinic.id,
            date=clinic.date,
            period=clinic.period,
            department=Named(
                id=department.id,
                name=department.name_en if english and department.name_en else department.name,
            ),
            doctor=DoctorBrief(
                id=doctor.id, name=doctor.name, title=doctor.title_en if english else doctor.title
            )
            if doctor
            else None,
            level=level.name_en if english and level.name_en else level.name,
            location=department.location_en
            if english and department.location_en
            else department.location,
        ),
        slot=SlotBrief(id=slot.id, start=slot.start_time, end=slot.end_time),
        voucher=Voucher(
            code=appointment.voucher_code,
            token=voucher_token(voucher_signer, appointment, timezone=timezone),
        )
        if status in _VOUCHER_STATUSES
        else None,
        hold_expires_at=appointment.hold_expires_at,
        cancellation_deadline=rules.cancellation_deadline(policy, facts),
        booked_at=appointment.booked_at,
        cancelled_at=appointment.cancelled_at,
        cancel_reason=appointment.cancel_reason,
        created_at=appointment.created_at,
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
