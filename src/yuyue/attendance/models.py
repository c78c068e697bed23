"""No-shows (爽约): the hospital's no-show policy, the bans it created, and appeals.

The ban itself is a `booking.models.BlacklistEntry` (booking reads it on its hot path);
`NoShowBan` remembers which no-shows a ban counted, so the same no-shows never make a
second ban, and `BlacklistAppeal` is a patient's request that staff lift a ban.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from yuyue.kit.db import Base
from yuyue.kit.ids import new_id


class NoShowPolicy(Base):
    """One row per hospital; without a row the defaults of `attendance.rules.Policy` apply."""

    __tablename__ = "no_show_policy"
    __table_args__ = (
        CheckConstraint("threshold BETWEEN 1 AND 20", name="threshold"),
        CheckConstraint("window_days BETWEEN 1 AND 730", name="window_days"),
        CheckConstraint("grace_minutes BETWEEN 0 AND 1440", name="grace_minutes"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"), unique=True)
    threshold: Mapped[int] = mapped_column(SmallInteger)
    window_days: Mapped[int] = mapped_column(SmallInteger)
    # Ban lengths in days: the first ban, the second within the window, and so on; the
    # last length repeats.
    ban_days: Mapped[list[int]] = mapped_column(JSON)
    grace_minutes: Mapped[int] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime]


class NoShowBan(Base):
    """The no-shows one blacklist entry was made for."""

    __tablename__ = "no_show_ban"
    __table_args__ = (Index("ix_no_show_ban_patient", "patient_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("blacklist_entry.id"), unique=True)
    # The appointments counted, as strings, and the days they were for (ISO dates).
    appointment_ids: Mapped[list[str]] = mapped_column(JSON)
    visit_dates: Mapped[list[str]] = mapped_column(JSON)
    # 1 for a first ban, 2 for the next one within the window, …
    step: Mapped[int] = mapped_column(SmallInteger)
    window_days: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime]


class AppealStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


_OPEN_SQL = text("status = 'submitted'")
_ALL_SQL = "status IN (" + ", ".join(f"'{s.value}'" for s in AppealStatus) + ")"


class BlacklistAppeal(Base):
    """A patient's appeal (申诉) against a ban; one open appeal per ban."""

    __tablename__ = "blacklist_appeal"
    __table_args__ = (
        Index(
            "uq_blacklist_appeal_open_entry",
            "entry_id",
            unique=True,
            postgresql_where=_OPEN_SQL,
            sqlite_where=_OPEN_SQL,
        ),
        Index("ix_blacklist_appeal_status_created", "hospital_id", "status", "created_at"),
        Index("ix_blacklist_appeal_patient", "patient_id"),
        CheckConstraint(_ALL_SQL, name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("blacklist_entry.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[AppealStatus] = mapped_column(String(16))
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
