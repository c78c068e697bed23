"""Staff accounts, sign-in, channel API keys and the audit trail."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit import crypto, i18n
from yuyue.kit.errors import NotFound, Unauthorized, YuyueError
from yuyue.kit.rekey import SealedColumn
from yuyue.scheduling.enums import Channel
from yuyue.staff import rules
from yuyue.staff.enums import Role
from yuyue.staff.errors import UsernameTaken
from yuyue.staff.models import ApiKey, AuditEntry, StaffAccessPolicy, StaffSession, StaffUser
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


def sealed_columns() -> list[SealedColumn]:
    """Staff keep one field-cipher token: the second factor's TOTP secret (for `yuyue keys
    rotate`). Recovery codes are only digests, which nobody can re-key (docs/operations.md)."""
    return [SealedColumn(StaffUser, "totp_secret")]


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


@dataclass(frozen=True, slots=True)
class ReadSource:
    """Where a read of patient data came from, as the audit trail records it: the route
    (its method and path template, e.g. ``GET /api/v1/patients/{patient_id}``) and the
    client's address."""

    route: str
    address: str


def record_read(
    session: AsyncSession,
    *,
    actor: Actor,
    kind: rules.ReadKind,
    patient_ids: Sequence[uuid.UUID],
    source: ReadSource,
    now: datetime,
    **details: Any,
) -> None:
    """Logs a staff read of patient data: one audit entry per patient, added to the caller's
    transaction (one multi-row INSERT at its commit). `details` say what was read (`read`:
    "profile", "visits"…; `by`: the kind of search; `field` and `reason` of an unmasking);
    never an identity number or a search term in clear. Reads by other actors are not
    logged (`staff.rules.reads_logged`)."""
    if not rules.reads_logged(actor) or not patient_ids:
        return
    after = {
        **details,
        "roles": sorted(role.value for role in actor.roles),
        "route": source.route[:120],
        "address": source.address[:64],
    }
    session.add_all(
        AuditEntry(
            hospital_id=actor.hospital_id,
            actor=actor.audit_name,
            action=kind.value,
            entity_type="patient",
            entity_id=patient_id,
            before=None,
            after=after,
            at=now,
        )
        for patient_id in dict.fromkeys(patient_ids)
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
    department_id: uuid.UUID | None = None,
    password_must_change: bool = False,
    now: datetime,
) -> StaffUser:
    existing = await session.scalar(
        select(StaffUser.id).where(
            StaffUser.hospital_id == hospital_id, StaffUser.username == username
        )
    )
    if existing is not None:
        raise UsernameTaken(username=username)
    user = StaffUser(
        hospital_id=hospital_id,
        username=username,
        display_name=display_name,
        password_hash=crypto.hash_password(password),
        roles=[r.value for r in roles],
        doctor_id=doctor_id,
        department_id=department_id,
        password_must_change=password_must_change,
        failed_sign_ins=0,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user


# --- staff sessions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Client:
    """Where a sign-in comes from, as the staff session records it."""

    address: str
    user_agent: str

    @classmethod
    def of(cls, address: str | None, user_agent: str | None) -> Client:
        return cls(
            address=(address or "")[:64], user_agent=" ".join((user_agent or "").split())[:200]
        )


@dataclass(frozen=True, slots=True)
class Granted:
    token: str
    expires_at: datetime
    session_id: uuid.UUID
    user_id: uuid.UUID
    roles: list[str]
    limit: rules.AccessLimit | None


async def second_factor_roles(session: AsyncSession, hospital_id: uuid.UUID) -> frozenset[Role]:
    row = await session.get(StaffAccessPolicy, hospital_id)
    if row is None:
        return rules.DEFAULT_SECOND_FACTOR_ROLES
    return frozenset(Role(r) for r in row.second_factor_roles if r in Role.__members__.values())


def opt_out_of_second_factor(
    session: AsyncSession, *, hospital_id: uuid.UUID, now: datetime
) -> None:
    """A new hospital whose staff need no second factor until an administrator says which
    roles do (the demo, so its printed logins work at once; test hospitals)."""
    session.add(StaffAccessPolicy(hospital_id=hospital_id, second_factor_roles=[], updated_at=now))


async def set_second_factor_roles(
    session: AsyncSession, *, actor: Actor, roles: list[Role], now: datetime
) -> None:
    row = await session.get(StaffAccessPolicy, actor.hospital_id)
    before = sorted(await second_factor_roles(session, actor.hospital_id))
    after = sorted({r.value for r in roles})
    if row is None:
        session.add(
            StaffAccessPolicy(
                hospital_id=actor.hospital_id, second_factor_roles=after, updated_at=now
            )
        )
    else:
        row.second_factor_roles, row.updated_at = after, now
    record_audit(
        session,
        actor=actor,
        action="staff.second_factor_roles",
        entity_type="hospital",
        entity_id=actor.hospital_id,
        before={"second_factor_roles": [r.value for r in before]},
        after={"second_factor_roles": after},
        now=now,
    )
    await session.flush()


def access_limit_of(user: StaffUser, required: frozenset[Role]) -> rules.AccessLimit | None:
    return rules.access_limit(
        roles=frozenset(Role(r) for r in user.roles),
        second_factor_roles=required,
        has_second_factor=user.has_second_factor,
        password_must_change=user.password_must_change,
    )


async def open_session(
    session: AsyncSession,
    *,
    user: StaffUser,
    client: Client,
    signer: crypto.TokenSigner,
    now: datetime,
    hours: int,
) -> Granted:
    """A new staff session and the token that carries its id."""
    expires_at = now + timedelta(hours=hours)
    row = StaffSession(
        hospital_id=user.hospital_id,
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=expires_at,
        client_address=client.address,
        user_agent=client.user_agent,
    )
    session.add(row)
    await session.flush()
    token = signer.sign(
        {"sub": str(user.id), "hid": str(user.hospital_id), "sid": str(row.id)},
        expires_at=expires_at,
    )
    required = await second_factor_roles(session, user.hospital_id)
    return Granted(
        token=token,
        expires_at=expires_at,
        session_id=row.id,
        user_id=user.id,
        roles=list(user.roles),
        limit=access_limit_of(user, required),
    )


async def end_sessions(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    reason: rules.SessionEnd,
    now: datetime,
    session_id: uuid.UUID | None = None,
) -> int:
    """Ends the user's live sessions (or the one given); their tokens stop working at once."""
    statement = (
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason.value)
    )
    if session_id is not None:
        statement = statement.where(StaffSession.id == session_id)
    result = await session.execute(statement, execution_options={"synchronize_session": False})
    return int(getattr(result, "rowcount", 0) or 0)


async def user_sessions(
    session: AsyncSession, *, user_id: uuid.UUID, now: datetime
) -> list[tuple[StaffSession, bool]]:
    """The user's sessions of the last day and any still live, newest first, each with
    whether it is live."""
    rows = (
        await session.scalars(
            select(StaffSession)
            .where(
                StaffSession.user_id == user_id,
                (StaffSession.ended_at.is_(None))
                | (StaffSession.ended_at > now - timedelta(days=1)),
            )
            .order_by(StaffSession.created_at.desc(), StaffSession.id)
        )
    ).all()
    return [
        (
            row,
            rules.session_alive(
                ended_at=row.ended_at,
                last_seen_at=row.last_seen_at,
                expires_at=row.expires_at,
                now=now,
            ),
        )
        for row in rows
    ]


async def touch_session(session: AsyncSession, *, session_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(StaffSession)
        .where(
            StaffSession.id == session_id,
            StaffSession.ended_at.is_(None),
            StaffSession.last_seen_at < now,
        )
        .values(last_seen_at=now),
        execution_options={"synchronize_session": False},
    )


@dataclass(frozen=True, slots=True)
class StaffAccess:
    actor: Actor
    # The session's last_seen_at is old enough to be written again.
    needs_touch: bool


async def staff_access(
    session: AsyncSession, *, token: str, signer: crypto.TokenSigner, now: datetime
) -> StaffAccess:
    """Who a staff token belongs to, if its session is live and its user active."""
    try:
        claims = signer.verify(token, now=now)
        user_id = uuid.UUID(str(claims["sub"]))
        session_id = uuid.UUID(str(claims["sid"]))
    except (crypto.InvalidToken, KeyError, ValueError):
        raise Unauthorized() from None
    found = (
        await session.execute(
            select(StaffSession, StaffUser)
            .join(StaffUser, StaffUser.id == StaffSession.user_id)
            .where(StaffSession.id == session_id)
        )
    ).first()
    if found is None:
        raise Unauthorized()
    row, user = found
    alive = rules.session_alive(
        ended_at=row.ended_at, last_seen_at=row.last_seen_at, expires_at=row.expires_at, now=now
    )
    if not alive or row.user_id != user_id or not user.active:
        raise Unauthorized()
    required = await second_factor_roles(session, user.hospital_id)
    actor = Actor(
        hospital_id=user.hospital_id,
        kind=ActorKind.STAFF,
        id=str(user.id),
        channel=STAFF_CHANNEL,
        roles=frozenset(Role(r) for r in user.roles),
        name=user.display_name,
        doctor_id=user.doctor_id,
        limit=access_limit_of(user, required),
        session_id=row.id,
    )
    return StaffAccess(actor, rules.needs_touch(last_seen_at=row.last_seen_at, now=now))


async def staff_actor(
    session: AsyncSession, *, token: str, signer: crypto.TokenSigner, now: datetime
) -> Actor:
    """The actor of a staff token (read only: the session's last_seen_at is not written;
    requests go through `staff.access.authenticate`, which does)."""
    return (await staff_access(session, token=token, signer=signer, now=now)).actor


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


async def list_api_keys(session: AsyncSession, *, hospital_id: uuid.UUID) -> list[ApiKey]:
    """The hospital's channel keys, those in force first, newest first (never the key
    itself: only its first characters are kept to tell keys apart)."""
    rows = await session.scalars(
        select(ApiKey)
        .where(ApiKey.hospital_id == hospital_id)
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id)
    )
    return list(rows.all())


async def revoke_api_key(
    session: AsyncSession, *, hospital_id: uuid.UUID, key_id: uuid.UUID, now: datetime
) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None or row.hospital_id != hospital_id:
        raise NotFound(what="api_key")
    row.revoked_at = row.revoked_at or now
    return row


async def audit_trail(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    entities: Sequence[tuple[str, uuid.UUID]],
    limit: int = 200,
) -> list[AuditEntry]:
    """What was done to these entities (type, id), oldest first: an order's page shows its
    own trail and its refund's."""
    if not entities:
        return []
    query = (
        select(AuditEntry)
        .where(
            AuditEntry.hospital_id == hospital_id,
            or_(
                *(
                    and_(AuditEntry.entity_type == kind, AuditEntry.entity_id == entity_id)
                    for kind, entity_id in entities
                )
            ),
        )
        .order_by(AuditEntry.at, AuditEntry.id)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())
