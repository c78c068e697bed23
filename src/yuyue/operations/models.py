"""The hospital's operational state: a maintenance notice while bookings are paused, and
the announcements (公告) patients and the waiting rooms see."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from yuyue.kit.db import Base
from yuyue.kit.ids import new_id


class Maintenance(Base):
    """Present while the hospital's new bookings are paused (one row per hospital)."""

    __tablename__ = "maintenance"

    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"), primary_key=True)
    message: Mapped[str] = mapped_column(String(300))
    message_en: Mapped[str] = mapped_column(String(300), default="")
    started_at: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(100))


class Announcement(Base):
    """A notice (公告) shown on the patient pages, the kiosk and the waiting-room screens
    from `starts_at` until `ends_at`, unless withdrawn. The scope names at most one campus,
    department or clinic session (a session's notice also keeps its department), and
    optionally one day."""

    __tablename__ = "announcement"
    __table_args__ = (
        Index("ix_announcement_hospital_ends", "hospital_id", "ends_at"),
        # A retried post (the same Idempotency-Key) finds the first one.
        UniqueConstraint("hospital_id", "idempotency_key"),
        CheckConstraint("ends_at > starts_at", name="window"),
        CheckConstraint(
            "kind IN ('maintenance', 'clinic_delayed', 'campus_closed', 'general')", name="kind"
        ),
        CheckConstraint("severity IN ('info', 'warning', 'urgent')", name="severity"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    kind: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(60))
    title_en: Mapped[str] = mapped_column(String(120), default="")
    body: Mapped[str] = mapped_column(Text)
    body_en: Mapped[str] = mapped_column(Text, default="")
    campus_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campus.id"))
    department_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("department.id"))
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clinic_session.id"))
    day: Mapped[date | None] = mapped_column(Date)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # How many patients were texted about it.
    notified: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by: Mapped[str | None] = mapped_column(String(100))


class AnnouncementRecipient(Base):
    """A patient texted about a notice: at most once, however often the fan-out runs."""

    __tablename__ = "announcement_recipient"

    announcement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("announcement.id"), primary_key=True
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"), primary_key=True)
    created_at: Mapped[datetime]
