"""The hospital's operational state: a maintenance notice while bookings are paused."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from yuyue.kit.db import Base


class Maintenance(Base):
    """Present while the hospital's new bookings are paused (one row per hospital)."""

    __tablename__ = "maintenance"

    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"), primary_key=True)
    message: Mapped[str] = mapped_column(String(300))
    message_en: Mapped[str] = mapped_column(String(300), default="")
    started_at: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(100))
