"""Administrators manage staff accounts: create, disable and re-enable, reset a password or
a second factor, change roles. Every change is audited (never a password, secret or code),
and runs inside the caller's transaction."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit import crypto
from yuyue.kit.errors import NotFound
from yuyue.staff.access import check_new_password
from yuyue.staff.enums import Role
from yuyue.staff.errors import OwnAccount
from yuyue.staff.models import StaffRecoveryCode, StaffUser
from yuyue.staff.rules import ACCOUNT_MANAGERS, Actor, SessionEnd, require_staff
from yuyue.staff.service import create_staff, end_sessions, record_audit


def temporary_password() -> str:
    """Handed to the person once; it must be changed at the next sign-in. 72 random bits,
    letters and digits mixed, so it passes the password policy itself."""
    return "t" + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y") + "7"


def _shown(user: StaffUser) -> dict[str, Any]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "roles": sorted(user.roles),
        "department_id": str(user.department_id) if user.department_id else None,
        "doctor_id": str(user.doctor_id) if user.doctor_id else None,
        "active": user.active,
        "second_factor": user.has_second_factor,
    }


async def account(session: AsyncSession, *, actor: Actor, user_id: uuid.UUID) -> StaffUser:
    """A staff account of the administrator's hospital, its row locked for the change."""
    require_staff(actor, *ACCOUNT_MANAGERS)
    user = await session.scalar(
        select(StaffUser)
        .where(StaffUser.id == user_id, StaffUser.hospital_id == actor.hospital_id)
        .with_for_update()
    )
    if user is None:
        raise NotFound(what="staff")
    return user


async def accounts(session: AsyncSession, *, actor: Actor) -> list[StaffUser]:
    require_staff(actor, *ACCOUNT_MANAGERS)
    return list(
        (
            await session.scalars(
                select(StaffUser)
                .where(StaffUser.hospital_id == actor.hospital_id)
                .order_by(StaffUser.username)
            )
        ).all()
    )


async def create_account(
    session: AsyncSession,
    *,
    actor: Actor,
    username: str,
    display_name: str,
    roles: list[Role],
    department_id: uuid.UUID | None,
    doctor_id: uuid.UUID | None,
    now: datetime,
    password: str | None = None,
) -> tuple[StaffUser, str]:
    """A new account with a temporary password (returned once, changed at first sign-in):
    the one the administrator chose, if it meets the password policy, or a generated one."""
    require_staff(actor, *ACCOUNT_MANAGERS)
    if password is None:
        password = temporary_password()
    else:
        check_new_password(password, username=username)
    user = await create_staff(
        session,
        hospital_id=actor.hospital_id,
        username=username,
        display_name=display_name,
        password=password,
        roles=roles,
        doctor_id=doctor_id,
        department_id=department_id,
        password_must_change=True,
        now=now,
    )
    _audit(session, actor, "staff.created", user, None, _shown(user), now)
    return user, password


def _audit(
    session: AsyncSession,
    actor: Actor,
    action: str,
    user: StaffUser,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> None:
    record_audit(
        session,
        actor=actor,
        action=action,
        entity_type="staff_user",
        entity_id=user.id,
        before=before,
        after=after,
        now=now,
    )


async def set_active(
    session: AsyncSession, *, actor: Actor, user_id: uuid.UUID, active: bool, now: datetime
) -> StaffUser:
    user = await account(session, actor=actor, user_id=user_id)
    if not active and str(user.id) == actor.id:
        raise OwnAccount()
    before = _shown(user)
    user.active = active
    if active:
        user.failed_sign_ins, user.locked_until = 0, None
    else:
        await end_sessions(session, user_id=user.id, reason=SessionEnd.DISABLED, now=now)
    _audit(
        session,
        actor,
        "staff.enabled" if active else "staff.disabled",
        user,
        before,
        _shown(user),
        now,
    )
    await session.flush()
    return user


async def reset_password(
    session: AsyncSession, *, actor: Actor, user_id: uuid.UUID, now: datetime
) -> tuple[StaffUser, str]:
    """A temporary password the person must change at the next sign-in; their sessions end
    and a lock from wrong passwords is lifted."""
    user = await account(session, actor=actor, user_id=user_id)
    password = temporary_password()
    user.password_hash = crypto.hash_password(password)
    user.password_must_change = True
    user.failed_sign_ins, user.locked_until = 0, None
    await end_sessions(session, user_id=user.id, reason=SessionEnd.PASSWORD_RESET, now=now)
    _audit(session, actor, "staff.password_reset", user, None, {"password_must_change": True}, now)
    await session.flush()
    return user, password


async def reset_second_factor(
    session: AsyncSession, *, actor: Actor, user_id: uuid.UUID, now: datetime
) -> StaffUser:
    """Removes the second factor and its recovery codes; the person enrols again at the next
    sign-in (if their role needs one). Their sessions end."""
    user = await account(session, actor=actor, user_id=user_id)
    had = user.has_second_factor
    user.totp_secret = user.totp_confirmed_at = user.totp_last_step = None
    await session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.user_id == user.id))
    await end_sessions(session, user_id=user.id, reason=SessionEnd.SECOND_FACTOR_RESET, now=now)
    _audit(
        session,
        actor,
        "staff.second_factor_reset",
        user,
        {"second_factor": had},
        {"second_factor": False},
        now,
    )
    await session.flush()
    return user


async def change_account(
    session: AsyncSession,
    *,
    actor: Actor,
    user_id: uuid.UUID,
    roles: list[Role] | None,
    display_name: str | None,
    department_id: uuid.UUID | None,
    doctor_id: uuid.UUID | None,
    fields: set[str],
    now: datetime,
) -> StaffUser:
    """Roles, name, department and doctor; `fields` names the ones sent (None clears)."""
    user = await account(session, actor=actor, user_id=user_id)
    if (
        roles is not None
        and str(user.id) == actor.id
        and Role.ADMIN.value in user.roles
        and Role.ADMIN not in roles
    ):
        raise OwnAccount()
    before = _shown(user)
    if roles is not None:
        user.roles = sorted({r.value for r in roles})
    if display_name is not None:
        user.display_name = display_name
    if "department_id" in fields:
        user.department_id = department_id
    if "doctor_id" in fields:
        user.doctor_id = doctor_id
    _audit(session, actor, "staff.changed", user, before, _shown(user), now)
    await session.flush()
    return user


async def end_user_sessions(
    session: AsyncSession, *, actor: Actor, user_id: uuid.UUID, now: datetime
) -> int:
    user = await account(session, actor=actor, user_id=user_id)
    ended = await end_sessions(session, user_id=user.id, reason=SessionEnd.ENDED_BY_ADMIN, now=now)
    _audit(session, actor, "staff.sessions_ended", user, None, {"sessions_ended": ended}, now)
    return ended
