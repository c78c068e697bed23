"""One-time sign-in codes and the browser sessions they open.

A code is never stored: only an HMAC of it, keyed by the server secret and salted with
the row id, so a copy of the database does not reveal live codes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from yuyue.kit.db import Base
from yuyue.kit.ids import new_id


class SignInCode(Base):
    __tablename__ = "sign_in_code"
    __table_args__ = (
        Index("ix_sign_in_code_phone", "hospital_id", "phone_index", "created_at"),
        Index("ix_sign_in_code_client", "hospital_id", "client_index", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    phone_index: Mapped[str] = mapped_column(String(64))
    # Blind index of the client's IP address: enough to count requests, not to trace anyone.
    client_index: Mapped[str] = mapped_column(String(64))
    code_digest: Mapped[str] = mapped_column(String(64))
    wrong_attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class WebSession(Base):
    """A signed-in browser. The cookie carries a signed reference to this row, so signing
    out (or an administrator) ends the session on the server, not just in the browser."""

    __tablename__ = "web_session"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
