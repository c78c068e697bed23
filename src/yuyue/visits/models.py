"""The visit day: one Visit per checked-in appointment, the hospital's visit-day policy and
the failed short-code guesses that the kiosk rate limit counts."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from yuyue.kit.db import Base
from yuyue.kit.ids import new_id
from yuyue.visits.states import DEFAULT_PRIORITY_ORDER, PriorityClass, VisitStatus


class Visit(Base):
    """A checked-in appointment waiting for, in, or done with its consultation.

    Walk-ins are appointments booked by the desk into the on-site pool, so every visit has
    one. The queue is the clinic session (a doctor's, or a department's when booked to the
    department); `position` numbers the visits in line 1..n and is rewritten, under the
    session row's lock, by every change to the line.
    """

    __tablename__ = "visit"
    __table_args__ = (
        UniqueConstraint("appointment_id"),
        Index("ix_visit_session_status", "session_id", "status"),
        Index("ix_visit_doctor_date", "doctor_id", "visit_date"),
        Index("ix_visit_department_date", "department_id", "visit_date"),
        CheckConstraint(
            "status IN ('waiting', 'called', 'in_consultation', 'skipped', 'finished')",
            name="status",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointment.id"))
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic_session.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    department_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("department.id"))
    doctor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("doctor.id"))
    visit_date: Mapped[date] = mapped_column(Date)
    # The appointment's sequence number: what the ticket and the screen show.
    queue_number: Mapped[int] = mapped_column(SmallInteger)
    slot_ordinal: Mapped[int] = mapped_column(SmallInteger)
    slot_start: Mapped[time] = mapped_column(Time)
    walk_in: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[VisitStatus] = mapped_column(String(16))
    priority: Mapped[PriorityClass | None] = mapped_column(String(16))
    priority_reason: Mapped[str | None] = mapped_column(Text)
    # The batch the visit queues in (its own slot's, or the batch being called when it
    # arrived late or was skipped) and when it joined the line, for the ordering rule.
    batch: Mapped[int] = mapped_column(SmallInteger)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    queued_at: Mapped[datetime]
    position: Mapped[int | None] = mapped_column(SmallInteger)
    checked_in_at: Mapped[datetime]
    checked_in_by: Mapped[str] = mapped_column(String(80))
    called_at: Mapped[datetime | None]
    call_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    skip_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    return_visit_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last manual move, for the screen and the desk; every move is in the audit trail.
    moved_reason: Mapped[str | None] = mapped_column(Text)
    moved_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class VisitPolicy(Base):
    """The hospital's visit-day rules; without a row the defaults of the requirements hold."""

    __tablename__ = "visit_policy"
    __table_args__ = (
        UniqueConstraint("hospital_id"),
        CheckConstraint("check_in_minutes_before BETWEEN 0 AND 1440", name="check_in_minutes"),
        CheckConstraint("batch_slots >= 1", name="batch_slots"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    check_in_minutes_before: Mapped[int] = mapped_column(SmallInteger, default=60)
    late_grace_minutes: Mapped[int] = mapped_column(SmallInteger, default=0)
    # A batch is this many consecutive time slots.
    batch_slots: Mapped[int] = mapped_column(SmallInteger, default=1)
    elderly_age: Mapped[int] = mapped_column(SmallInteger, default=70)
    # Priority classes in force, highest first.
    priority_classes: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: list(DEFAULT_PRIORITY_ORDER)
    )
    estimate_min_samples: Mapped[int] = mapped_column(SmallInteger, default=3)
    code_attempts_max: Mapped[int] = mapped_column(SmallInteger, default=5)
    code_lockout_minutes: Mapped[int] = mapped_column(SmallInteger, default=15)
    # The patient's phone says "come back to the room" with this many or fewer ahead.
    come_back_ahead: Mapped[int] = mapped_column(SmallInteger, default=3, server_default=text("3"))
    # Travel time for the "leave home now" notice before check-in; 0 turns it off.
    travel_minutes: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))


class CheckInFailure(Base):
    """A wrong short code + phone digits from one client; counted for the rate limit."""

    __tablename__ = "check_in_failure"
    __table_args__ = (
        Index("ix_check_in_failure_client_at", "client", "at"),
        Index("ix_check_in_failure_code_at", "code", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    client: Mapped[str] = mapped_column(String(120))
    # The short code tried; counted on its own so that guessing one patient's phone digits
    # locks that code, not the kiosk.
    code: Mapped[str | None] = mapped_column(String(20))
    at: Mapped[datetime]
