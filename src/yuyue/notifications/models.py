"""The outbox and its delivery: every message is written in the transaction of the change it
reports; the worker fans it out into one delivery per channel and records each attempt."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
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


class OutboxStatus(StrEnum):
    PENDING = "pending"
    # Fanned out into deliveries; each channel's fate is on its `Delivery` row.
    DISPATCHED = "dispatched"
    SENT = "sent"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_message_status_available", "status", "available_at"),
        # Withdrawing an appointment's reminders when it is cancelled.
        Index("ix_outbox_message_appointment_kind", "appointment_id", "kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    kind: Mapped[str] = mapped_column(String(40))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patient.id"))
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointment.id"))
    # The inbox and email owner when it is not the patient's account.
    account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    # A FieldCipher ciphertext: the number a sign-in code goes to before any patient exists.
    to_phone_cipher: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    available_at: Mapped[datetime]
    created_at: Mapped[datetime]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"


class Delivery(Base):
    """One message on one channel: claimed with a lease, retried with back-off."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("message_id", "channel"),
        Index("ix_delivery_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outbox_message.id"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_attempt_at: Mapped[datetime]
    # Who holds the delivery while it is `sending`, and until when; a lease that runs out
    # means the worker died mid-send, and another one recovers the delivery.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    provider_id: Mapped[str | None] = mapped_column(String(100))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AttemptOutcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    # The worker died mid-send; the provider said the message went out after all.
    RECOVERED = "recovered"
    # The worker died mid-send and the outcome is unknown; the delivery is sent again.
    ABANDONED = "abandoned"
    # The request may have reached the provider (a read timeout, a dropped connection, an
    # answer that could not be read): the next attempt asks the provider before sending.
    UNCERTAIN = "uncertain"


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempt"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("delivery.id"), index=True)
    number: Mapped[int] = mapped_column(SmallInteger)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(300))
    provider_id: Mapped[str | None] = mapped_column(String(100))


class InboxItem(Base):
    """A message in the account's in-app inbox; the web pages list these."""

    __tablename__ = "inbox_item"
    __table_args__ = (
        Index("ix_inbox_item_account_created", "account_id", "created_at"),
        # The inbox delivery inserts its item once, however often it is retried.
        UniqueConstraint("delivery_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patient.id"))
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointment.id"))
    delivery_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("delivery.id"))
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class DemoPhoneMessage(Base):
    """What the console SMS channel 'sent' in demo mode, for the demo phone page."""

    __tablename__ = "demo_phone_message"
    __table_args__ = (Index("ix_demo_phone_message_hospital_created", "hospital_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    phone_masked: Mapped[str] = mapped_column(String(20))
    phone_index: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


_NO_DEPARTMENT = text("department_id IS NULL")
_DEPARTMENT = text("department_id IS NOT NULL")


class MessageTemplate(Base):
    """A hospital's wording of one kind of message in one language, optionally for one
    department; the defaults in `notifications/templates.py` apply where there is none."""

    __tablename__ = "message_template"
    __table_args__ = (
        Index(
            "uq_message_template_hospital_default",
            "hospital_id",
            "kind",
            "locale",
            unique=True,
            postgresql_where=_NO_DEPARTMENT,
            sqlite_where=_NO_DEPARTMENT,
        ),
        Index(
            "uq_message_template_hospital_department",
            "hospital_id",
            "kind",
            "locale",
            "department_id",
            unique=True,
            postgresql_where=_DEPARTMENT,
            sqlite_where=_DEPARTMENT,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    kind: Mapped[str] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(8))
    department_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("department.id"))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class NotificationSettings(Base):
    """Per hospital: when reminders go out and when nothing non-urgent may."""

    __tablename__ = "notification_settings"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"), unique=True)
    # Hours before the visit's slot start, e.g. [168, 72, 24].
    reminder_offsets_hours: Mapped[list[int]] = mapped_column(JSON)
    # Hospital local time; equal start and end mean no quiet hours.
    quiet_hours_start: Mapped[time] = mapped_column(Time)
    quiet_hours_end: Mapped[time] = mapped_column(Time)
    updated_at: Mapped[datetime]
