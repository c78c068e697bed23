"""Staff accounts, sign-in, channel API keys and the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit import crypto, i18n
from yuyue.kit.errors import Conflict, NotFound, Unauthorized, YuyueError
from yuyue.scheduling.enums import Channel
from yuyue.staff.enums import Role
from yuyue.staff.models import ApiKey, AuditEntry, StaffUser
from yuyue.staff.rules import STAFF_CHANNEL, Actor, ActorKind


class InvalidCredentials(YuyueError):
    code = "invalid_credentials"
    status = 401


i18n.register(
    {
        "title.invalid_credentials": ("登录失败", "Sign-in failed"),
        "error.invalid_credentials": ("用户名或密码不正确。", "Wrong username or password."),
    }
)


def record_audit(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> None:
    session.add(
        AuditEntry(
            hospital_id=actor.hospital_id,
            actor=actor.audit_name,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before=before,
            after=after,
            at=now,
        )
    )


async def create_staff(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    username: str,
    display_name: str,
    password: str,
    roles: list[Role],
    doctor_id: uuid.UUID | None = None,
    now: datetime,
) -> StaffUser:
    existing = await session.scalar(
        select(StaffUser.id).where(
            StaffUser.hospital_id == hospital_id, StaffUser.username == username
        )
    )
    if existing is not None:
        raise Conflict()
    user = StaffUser(
        hospital_id=hospital_id,
        username=username,
        display_name=display_name,
        password_hash=crypto.hash_password(password),
        roles=[r.value for r in roles],
        doctor_id=doctor_id,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user


async def sign_in(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    username: str,
    password: str,
    signer: crypto.TokenSigner,
    now: datetime,
    hours: int,
) -> tuple[str, datetime, StaffUser]:
    user = await session.scalar(
        select(StaffUser).where(
            StaffUser.hospital_id == hospital_id, StaffUser.username == username
        )
    )
    if user is None or not user.active:
        crypto.spend_password_check(password)
        raise InvalidCredentials()
    if not crypto.verify_password(user.password_hash, password):
        raise InvalidCredentials()
    expires_at = now + timedelta(hours=hours)
    token = signer.sign({"sub": str(user.id), "hid": str(hospital_id)}, expires_at=expires_at)
    return token, expires_at, user


async def staff_actor(
    session: AsyncSession, *, token: str, signer: crypto.TokenSigner, now: datetime
) -> Actor:
    try:
        claims = signer.verify(token, now=now)
        user_id = uuid.UUID(str(claims["sub"]))
    except (crypto.InvalidToken, KeyError, ValueError):
        raise Unauthorized() from None
    user = await session.get(StaffUser, user_id)
    if user is None or not user.active:
        raise Unauthorized()
    return Actor(
        hospital_id=user.hospital_id,
        kind=ActorKind.STAFF,
        id=str(user.id),
        channel=STAFF_CHANNEL,
        roles=frozenset(Role(r) for r in user.roles),
        name=user.display_name,
        doctor_id=user.doctor_id,
    )


async def create_api_key(
    session: AsyncSession, *, hospital_id: uuid.UUID, channel: Channel, name: str, now: datetime
) -> tuple[str, ApiKey]:
    key = crypto.generate_api_key()
    row = ApiKey(
        hospital_id=hospital_id,
        channel=channel.value,
        name=name,
        digest=crypto.api_key_digest(key),
        prefix=key[:8],
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return key, row


async def channel_actor(session: AsyncSession, *, key: str) -> Actor:
    row = await session.scalar(select(ApiKey).where(ApiKey.digest == crypto.api_key_digest(key)))
    if row is None or row.revoked_at is not None:
        raise Unauthorized()
    return Actor(
        hospital_id=row.hospital_id,
        kind=ActorKind.CHANNEL,
        id=str(row.id),
        channel=Channel(row.channel),
        name=row.name,
    )


async def channel_actors(session: AsyncSession) -> list[tuple[str, Actor]]:
    """Every channel key still in force, by digest (to warm a process's caller cache)."""
    rows = (await session.scalars(select(ApiKey).where(ApiKey.revoked_at.is_(None)))).all()
    return [
        (
            row.digest,
            Actor(
                hospital_id=row.hospital_id,
                kind=ActorKind.CHANNEL,
                id=str(row.id),
                channel=Channel(row.channel),
                name=row.name,
            ),
        )
        for row in rows
    ]


async def revoke_api_key(
    session: AsyncSession, *, hospital_id: uuid.UUID, key_id: uuid.UUID, now: datetime
) -> None:
    row = await session.get(ApiKey, key_id)
    if row is None or row.hospital_id != hospital_id:
        raise NotFound(what="api_key")
    row.revoked_at = row.revoked_at or now
