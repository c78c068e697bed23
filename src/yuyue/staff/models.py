"""Staff accounts with roles, channel API keys and the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from yuyue.kit.db import Base
from yuyue.kit.ids import new_id


class StaffUser(Base):
    __tablename__ = "staff_user"
    __table_args__ = (UniqueConstraint("hospital_id", "username"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(80))
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON)
    doctor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("doctor.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # The department a nurse or registrar works in (optional).
    department_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("department.id"))
    # Set by an administrator's reset (and for new accounts): the next sign-in may only
    # change the password.
    password_must_change: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # Wrong passwords or codes in a row, and the lock they lead to (staff.rules).
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    # The TOTP secret, encrypted with the field cipher; in force once confirmed. The last
    # time step used, so a code is good only once.
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    totp_confirmed_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def has_second_factor(self) -> bool:
        return self.totp_secret is not None and self.totp_confirmed_at is not None


class StaffSession(Base):
    """One sign-in: the token carries its id, and the token works while the session lives."""

    __tablename__ = "staff_session"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    client_address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))


class StaffRecoveryCode(Base):
    """A one-time recovery code for the second factor; only its keyed digest is stored."""

    __tablename__ = "staff_recovery_code"
    __table_args__ = (UniqueConstraint("user_id", "digest"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]


class SignInThrottle(Base):
    """Failed sign-ins from one client address (staff.rules.address_after_failure).

    Kept in the database rather than in Redis: failed sign-ins are rare next to bookings, a
    row per address is cheap, every process sees the same count without Redis configured,
    and a restart does not forgive a guesser.
    """

    __tablename__ = "sign_in_throttle"

    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]
    blocked_until: Mapped[datetime | None]
    strikes: Mapped[int] = mapped_column(Integer, default=0)


class StaffAccessPolicy(Base):
    """A hospital's sign-in setting: which roles must use a second factor. Without a row
    the default holds (staff.rules.DEFAULT_SECOND_FACTOR_ROLES: every staff role)."""

    __tablename__ = "staff_access_policy"

    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"), primary_key=True)
    second_factor_roles: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class ApiKey(Base):
    """A channel client's key; only its SHA-256 digest is stored."""

    __tablename__ = "api_key"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    channel: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_entity", "entity_type", "entity_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[uuid.UUID]
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime]
