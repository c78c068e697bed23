"""The waitlist (候补): patients waiting for a place in a full session.

An entry is not a booking. When a place comes back it is offered to the first eligible
waiter as a held appointment with a deadline; the entry records how that ended.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from yuyue.booking.waitlist.states import ACTIVE_ENTRY_STATUSES, WaitlistStatus
from yuyue.kit.db import Base
from yuyue.kit.ids import new_id

_ACTIVE_SQL = text("status IN (" + ", ".join(f"'{s.value}'" for s in ACTIVE_ENTRY_STATUSES) + ")")
_ALL_SQL = "status IN (" + ", ".join(f"'{s.value}'" for s in WaitlistStatus) + ")"


class WaitlistEntry(Base):
    __tablename__ = "waitlist_entry"
    __table_args__ = (
        Index(
            "uq_waitlist_entry_active_patient_session",
            "patient_id",
            "session_id",
            unique=True,
            postgresql_where=_ACTIVE_SQL,
            sqlite_where=_ACTIVE_SQL,
        ),
        # The line of a session, in order: the offer query walks this index.
        Index("ix_waitlist_entry_session_status", "session_id", "status", "created_at"),
        Index("ix_waitlist_entry_patient_status", "patient_id", "status"),
        Index("ix_waitlist_entry_offer_appointment_id", "offer_appointment_id"),
        CheckConstraint(_ALL_SQL, name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic_session.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    # The joining actor's channel decides which pools an offer may come from.
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[WaitlistStatus] = mapped_column(String(16))
    # Why an entry was skipped or closed (a refusal code such as `limit_exceeded:per_day`).
    reason: Mapped[str | None] = mapped_column(String(48))
    offer_appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointment.id"))
    offer_expires_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(80))
    # Place in line: created_at, then id.
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
