"""Accounts (a mobile number) and the real-name patients they book for.

Identity numbers and phones are stored encrypted (AES-GCM) with an HMAC blind index for
exact look-up; the masked form is stored for display so lists never decrypt.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from yuyue.kit.db import Base
from yuyue.kit.ids import new_id


class Account(Base):
    __tablename__ = "account"
    __table_args__ = (UniqueConstraint("hospital_id", "phone_index"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    phone_cipher: Mapped[str] = mapped_column(String(200))
    phone_index: Mapped[str] = mapped_column(String(64))
    phone_masked: Mapped[str] = mapped_column(String(20))
    # Messages also go by email when there is an address, and are written in `locale`.
    email: Mapped[str | None] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN", server_default="zh-CN")
    created_at: Mapped[datetime]


class Patient(Base):
    __tablename__ = "patient"
    __table_args__ = (
        UniqueConstraint("hospital_id", "id_type", "id_index", name="uq_patient_identity"),
        Index("ix_patient_phone_index", "hospital_id", "phone_index"),
        UniqueConstraint("hospital_id", "record_number", name="uq_patient_record_number"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    id_type: Mapped[str] = mapped_column(String(32))
    id_cipher: Mapped[str] = mapped_column(String(200))
    id_index: Mapped[str] = mapped_column(String(64))
    id_masked: Mapped[str] = mapped_column(String(40))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    phone_cipher: Mapped[str] = mapped_column(String(200))
    phone_index: Mapped[str] = mapped_column(String(64))
    phone_masked: Mapped[str] = mapped_column(String(20))
    # The medical record number (病历号), unique in the hospital: `rules.record_number`.
    record_number: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime]


class RecordNumberSequence(Base):
    """The last medical record number a hospital has given: registering a patient takes the
    next one by incrementing this row, which serialises concurrent registrations of one
    hospital on that row (PostgreSQL's row lock; SQLite has one writer at a time) until the
    transaction ends. A rolled-back registration gives its number back."""

    __tablename__ = "patient_record_sequence"

    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)


class PatientChannel(Base):
    """A channel that knows a patient: it registered them, or proved it knows them by
    registering the same person again (name and document number). A channel key reads a
    patient only through such a row (`patients.rules.may_read`); kiosks and the window never
    get one (kiosks read no patient by id, the window is staff)."""

    __tablename__ = "patient_channel"
    __table_args__ = (PrimaryKeyConstraint("patient_id", "channel"),)

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    channel: Mapped[str] = mapped_column(String(16))
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    since: Mapped[datetime]
