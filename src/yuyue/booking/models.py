"""Appointments, the blacklist and remembered answers for idempotent retries."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from yuyue.booking.states import ACTIVE_STATUSES, AppointmentStatus, RefundShown
from yuyue.kit.db import Base
from yuyue.kit.ids import new_id

_ACTIVE_SQL = text("status IN (" + ", ".join(f"'{s.value}'" for s in ACTIVE_STATUSES) + ")")


class Appointment(Base):
    __tablename__ = "appointment"
    __table_args__ = (
        Index(
            "uq_appointment_active_patient_session",
            "patient_id",
            "session_id",
            unique=True,
            postgresql_where=_ACTIVE_SQL,
            sqlite_where=_ACTIVE_SQL,
        ),
        Index(
            "uq_appointment_active_sequence",
            "session_id",
            "sequence_number",
            unique=True,
            postgresql_where=_ACTIVE_SQL,
            sqlite_where=_ACTIVE_SQL,
        ),
        Index("ix_appointment_patient_visit_date", "patient_id", "visit_date"),
        Index("ix_appointment_pool_status", "pool_id", "status"),
        Index("ix_appointment_status_hold_expires_at", "status", "hold_expires_at"),
        Index("ix_appointment_session_status", "session_id", "status"),
        UniqueConstraint("hospital_id", "voucher_code"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic_session.id"))
    slot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("time_slot.id"))
    pool_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("slot_pool.id"))
    # Copied from the session so per-patient limits are one indexed query.
    department_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("department.id"))
    doctor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("doctor.id"))
    visit_date: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[AppointmentStatus] = mapped_column(String(16))
    sequence_number: Mapped[int] = mapped_column(SmallInteger)
    fee_fen: Mapped[int] = mapped_column(Integer)
    voucher_code: Mapped[str] = mapped_column(String(12))
    hold_expires_at: Mapped[datetime | None]
    booked_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    cancel_note: Mapped[str | None] = mapped_column(Text)
    rescheduled_from_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointment.id"))
    payment_reference: Mapped[str | None] = mapped_column(String(100))
    # What the patient paid and how, as the voucher shows it; written by `confirm_payment`.
    paid_fen: Mapped[int | None] = mapped_column(Integer)
    payment_provider: Mapped[str | None] = mapped_column(String(16))
    # How a settled fee was split (medical insurance: 统筹, 个人账户, 自付); payments tells
    # booking through `note_payment_split`.
    split_pool_fen: Mapped[int | None] = mapped_column(Integer)
    split_account_fen: Mapped[int | None] = mapped_column(Integer)
    split_self_pay_fen: Mapped[int | None] = mapped_column(Integer)
    # RefundShown: where the money of a cancelled paid booking is (payments tells booking).
    refund_state: Mapped[str] = mapped_column(
        String(16), default=RefundShown.NONE.value, server_default=RefundShown.NONE.value
    )
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BlacklistEntry(Base):
    __tablename__ = "blacklist_entry"
    __table_args__ = (Index("ix_blacklist_entry_patient", "patient_id", "ends_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    reason: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    lifted_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]


class IdempotencyRecord(Base):
    """The first successful answer to a request carrying an Idempotency-Key."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    scope: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)


_PENDING_SQL = text("state = 'pending'")


class ChangeRequest(Base):
    """A staff change to a confirmed booking (cancel after the deadline, move it, change its
    patient), waiting for a supervisor: it takes effect only when approved (审批)."""

    __tablename__ = "change_request"
    __table_args__ = (
        # One open request per appointment: a second would race the first's approval.
        Index(
            "uq_change_request_pending_appointment",
            "appointment_id",
            unique=True,
            postgresql_where=_PENDING_SQL,
            sqlite_where=_PENDING_SQL,
        ),
        Index("ix_change_request_hospital_state", "hospital_id", "state", "requested_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointment.id"))
    kind: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    # What the change is: the target session and slot of a move, the new patient.
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    requested_by: Mapped[str] = mapped_column(String(80))
    requested_by_id: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_by_id: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    # What approval did: the new appointment of a move.
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class BookingDemand(Base):
    """Booking attempts (the booking POST) per session, channel, local hour of the attempt
    and outcome: `booked`, `sold_out` or another refusal's code. Each serving process counts
    in memory and adds its counts here now and then (`booking.demand`): rows only grow, by
    an additive upsert, so several processes each add their own. Read by the demand heat
    map through `booking.demand.session_attempts`."""

    __tablename__ = "booking_demand"

    hospital_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The attempt's local day and hour on the hospital's clock.
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
