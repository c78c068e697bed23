from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit import crypto
from yuyue.kit.errors import NotFound, Unauthorized, ValidationFailed
from yuyue.kit.schemas import Input
from yuyue.scheduling import service as scheduling_service
from yuyue.scheduling.enums import Channel
from yuyue.staff import access, accounts, service
from yuyue.staff.enums import Role
from yuyue.staff.errors import RetryLater
from yuyue.staff.models import StaffSession, StaffUser
from yuyue.staff.rules import AccessLimit, Actor, SessionEnd, require_staff
from yuyue.staff.service import Client, Granted
from yuyue.web.context import AppContext
from yuyue.web.deps import ActorDep, CtxDep, bearer
from yuyue.web.problems import problem_response

router = APIRouter(prefix="/api/v1", tags=["staff"])


class TokenRequest(Input):
    hospital: Annotated[str, Field(min_length=1, max_length=32, examples=["demo"])]
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=200)]
    otp: Annotated[
        str | None,
        Field(
            max_length=32,
            description="the authenticator's 6-digit code, or a recovery code, for an account "
            "with a second factor (else answered `mfa_required` with a `challenge`)",
        ),
    ] = None


class SecondFactorRequest(Input):
    challenge: Annotated[str, Field(min_length=1, max_length=500)]
    code: Annotated[str | None, Field(max_length=16)] = None
    recovery_code: Annotated[str | None, Field(max_length=32)] = None


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    roles: list[str]
    limit: Annotated[
        AccessLimit | None,
        Field(
            description="set when the token reaches only the password change "
            "(`password_change`) or the second factor's enrolment (`second_factor_enrolment`) "
            "until that is done"
        ),
    ] = None


class StaffSessionRead(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    client_address: str
    user_agent: str
    live: bool
    current: bool
    ended_at: datetime | None
    end_reason: str | None


class PasswordChange(Input):
    current: Annotated[str, Field(min_length=1, max_length=200)]
    new: Annotated[str, Field(min_length=1, max_length=200)]


class EnrolmentRead(BaseModel):
    secret: Annotated[str, Field(description="base32, for typing into an app by hand")]
    otpauth_uri: str
    qr_code: Annotated[str, Field(description="the otpauth URI as an SVG data URI")]


class EnrolmentConfirm(Input):
    code: Annotated[str, Field(min_length=6, max_length=16)]


class RecoveryCodesRead(BaseModel):
    recovery_codes: Annotated[list[str], Field(description="shown once; each works once")]


class StaffAccountCreate(Input):
    username: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    display_name: Annotated[str, Field(min_length=1, max_length=80)]
    roles: Annotated[list[Role], Field(min_length=1)]
    department_id: uuid.UUID | None = None
    doctor_id: uuid.UUID | None = None
    password: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=200,
            description="the first password, if the administrator chooses it (it must meet the "
            "password policy, else `422 weak_password`); without it one is generated",
        ),
    ] = None


class StaffAccountUpdate(Input):
    display_name: Annotated[str | None, Field(min_length=1, max_length=80)] = None
    roles: Annotated[list[Role] | None, Field(min_length=1)] = None
    department_id: uuid.UUID | None = None
    doctor_id: uuid.UUID | None = None


class StaffAccountRead(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    roles: list[str]
    department_id: uuid.UUID | None
    doctor_id: uuid.UUID | None
    active: bool
    second_factor: bool
    password_must_change: bool
    locked: bool

    @classmethod
    def of(cls, user: StaffUser, now: datetime) -> StaffAccountRead:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            roles=sorted(user.roles),
            department_id=user.department_id,
            doctor_id=user.doctor_id,
            active=user.active,
            second_factor=user.has_second_factor,
            password_must_change=user.password_must_change,
            locked=user.locked_until is not None and user.locked_until > now,
        )


class TemporaryPasswordRead(BaseModel):
    account: StaffAccountRead
    temporary_password: Annotated[
        str, Field(description="shown once; it must be changed at the first sign-in")
    ]


class SecondFactorRoles(Input):
    roles: list[Role]


def client_of(request: Request) -> Client:
    # The peer address as the server sees it (behind a proxy, the proxy's unless the
    # server is told to trust its forwarded header, e.g. uvicorn --forwarded-allow-ips).
    host = request.client.host if request.client else ""
    return Client.of(host, request.headers.get("user-agent"))


def _token(granted: Granted) -> TokenRead:
    return TokenRead(
        access_token=granted.token,
        expires_at=granted.expires_at,
        roles=granted.roles,
        limit=granted.limit,
    )


async def _answer(request: Request, work: Awaitable[TokenRead]) -> TokenRead | Response:
    """A refusal that says when to try again carries `Retry-After`."""
    try:
        return await work
    except RetryLater as error:
        return problem_response(error, request, error.headers())


_SIGN_IN_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "`invalid_credentials`, `mfa_required` (with `challenge`), "
        "`invalid_second_factor`, `invalid_challenge`"
    },
    429: {"description": "`account_locked` or `too_many_attempts`, with `Retry-After`"},
}


@router.post("/auth/token", response_model=TokenRead, responses=_SIGN_IN_REFUSALS)
async def issue_token(body: TokenRequest, request: Request, ctx: CtxDep) -> TokenRead | Response:
    async def work() -> TokenRead:
        async with ctx.db.read() as session:
            hospital_id = await scheduling_service.hospital_id_by_code(session, body.hospital)
        if hospital_id is None:
            crypto.spend_password_check(body.password)
            raise service.InvalidCredentials()
        granted = await access.sign_in(
            ctx.db,
            hospital_id=hospital_id,
            username=body.username,
            password=body.password,
            second_factor=body.otp,
            client=client_of(request),
            signer=ctx.staff_signer,
            cipher=ctx.cipher,
            now=ctx.clock.now(),
            hours=ctx.settings.staff_token_hours,
        )
        return _token(granted)

    return await _answer(request, work())


@router.post(
    "/auth/token/totp",
    response_model=TokenRead,
    responses=_SIGN_IN_REFUSALS,
    summary="The second step of a sign-in: the challenge and a code (or a recovery code)",
)
async def complete_token(
    body: SecondFactorRequest, request: Request, ctx: CtxDep
) -> TokenRead | Response:
    value = body.code or body.recovery_code
    if not value:
        raise ValidationFailed(summary="code")

    async def work() -> TokenRead:
        granted = await access.complete_second_factor(
            ctx.db,
            challenge=body.challenge,
            second_factor=value,
            client=client_of(request),
            signer=ctx.staff_signer,
            cipher=ctx.cipher,
            now=ctx.clock.now(),
            hours=ctx.settings.staff_token_hours,
        )
        return _token(granted)

    return await _answer(request, work())


async def limited_actor(
    request: Request,
    ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    """A staff member who may still have to change the password or enrol a second factor."""
    found = getattr(request.state, "actor", None)
    if isinstance(found, Actor):
        return found
    if credentials is None or not credentials.credentials:
        raise Unauthorized()
    return await access.authenticate(
        ctx.db,
        token=credentials.credentials.strip(),
        signer=ctx.staff_signer,
        now=ctx.clock.now(),
        allow_limited=True,
    )


LimitedActorDep = Annotated[Actor, Depends(limited_actor)]


@router.post("/auth/sign-out", status_code=204, summary="Ends this token's session")
async def sign_out(ctx: CtxDep, actor: LimitedActorDep) -> None:
    await access.sign_out(ctx.db, actor=actor, now=ctx.clock.now())


def _sessions(
    rows: list[tuple[StaffSession, bool]], current: uuid.UUID | None
) -> list[StaffSessionRead]:
    return [
        StaffSessionRead(
            id=row.id,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            client_address=row.client_address,
            user_agent=row.user_agent,
            live=live,
            current=row.id == current,
            ended_at=row.ended_at,
            end_reason=row.end_reason,
        )
        for row, live in rows
    ]


@router.get(
    "/auth/sessions",
    response_model=list[StaffSessionRead],
    summary="The signed-in user's sessions (live ones and those ended in the last day)",
)
async def my_sessions(ctx: CtxDep, actor: LimitedActorDep) -> list[StaffSessionRead]:
    async with ctx.db.read() as session:
        rows = await service.user_sessions(
            session, user_id=uuid.UUID(actor.id), now=ctx.clock.now()
        )
    return _sessions(rows, actor.session_id)


@router.delete("/auth/sessions/{session_id}", status_code=204, summary="Ends one of my sessions")
async def end_my_session(session_id: uuid.UUID, ctx: CtxDep, actor: LimitedActorDep) -> None:
    async def work(session: AsyncSession) -> None:
        ended = await service.end_sessions(
            session,
            user_id=uuid.UUID(actor.id),
            reason=SessionEnd.ENDED_BY_USER,
            now=ctx.clock.now(),
            session_id=session_id,
        )
        if not ended:
            raise NotFound(what="staff_session")

    await ctx.db.transact(work)


@router.post(
    "/auth/password",
    status_code=204,
    responses={
        403: {"description": "`wrong_password` (counts toward the lock-out)"},
        422: {"description": "`weak_password`"},
        429: {"description": "`account_locked`"},
    },
    summary="Changes the password; every session of the user ends (sign in again)",
)
async def change_password(
    body: PasswordChange, request: Request, ctx: CtxDep, actor: LimitedActorDep
) -> Response:
    try:
        await access.change_password(
            ctx.db,
            actor=actor,
            current=body.current,
            new=body.new,
            client=client_of(request),
            now=ctx.clock.now(),
        )
    except RetryLater as error:
        return problem_response(error, request, error.headers())
    return Response(status_code=204)


@router.post(
    "/auth/totp/enrol",
    response_model=EnrolmentRead,
    summary="Starts enrolling a second factor: a new secret, its otpauth URI and QR code",
)
async def enrol_totp(ctx: CtxDep, actor: LimitedActorDep) -> EnrolmentRead:
    if actor.limit is AccessLimit.PASSWORD_CHANGE:
        access.refuse_limited(actor)

    async def work(session: AsyncSession) -> EnrolmentRead:
        user, secret = await access.start_enrolment(session, actor=actor, cipher=ctx.cipher)
        hospital = await scheduling_service.hospital_code(session, user.hospital_id)
        uri, qr = access.provisioning(secret, username=user.username, issuer=f"yuyue {hospital}")
        return EnrolmentRead(secret=secret, otpauth_uri=uri, qr_code=qr)

    return await ctx.db.transact(work)


@router.post(
    "/auth/totp/confirm",
    response_model=RecoveryCodesRead,
    summary="Puts the second factor in force with a first code; returns 10 recovery codes",
)
async def confirm_totp(
    body: EnrolmentConfirm, request: Request, ctx: CtxDep, actor: LimitedActorDep
) -> RecoveryCodesRead | Response:
    if actor.limit is AccessLimit.PASSWORD_CHANGE:
        access.refuse_limited(actor)
    try:
        codes = await access.confirm_enrolment(
            ctx.db,
            actor=actor,
            code=body.code,
            client=client_of(request),
            cipher=ctx.cipher,
            now=ctx.clock.now(),
        )
    except RetryLater as error:
        return problem_response(error, request, error.headers())
    return RecoveryCodesRead(recovery_codes=codes)


# --- staff accounts (administrators) ----------------------------------------------------------


async def _check_places(
    session: AsyncSession,
    actor: Actor,
    department_id: uuid.UUID | None,
    doctor_id: uuid.UUID | None,
) -> None:
    if department_id is not None and not await scheduling_service.department_in_hospital(
        session, hospital_id=actor.hospital_id, department_id=department_id
    ):
        raise NotFound(what="department")
    if doctor_id is not None and not await scheduling_service.doctor_in_hospital(
        session, hospital_id=actor.hospital_id, doctor_id=doctor_id
    ):
        raise NotFound(what="doctor")


@router.get("/staff/users", response_model=list[StaffAccountRead], summary="Staff accounts (admin)")
async def list_accounts(ctx: CtxDep, actor: ActorDep) -> list[StaffAccountRead]:
    now = ctx.clock.now()
    async with ctx.db.read() as session:
        users = await accounts.accounts(session, actor=actor)
    return [StaffAccountRead.of(user, now) for user in users]


@router.post(
    "/staff/users",
    status_code=201,
    response_model=TemporaryPasswordRead,
    summary="Creates a staff account with a temporary password (admin)",
)
async def create_account(
    body: StaffAccountCreate, ctx: CtxDep, actor: ActorDep
) -> TemporaryPasswordRead:
    require_staff(actor, Role.ADMIN)
    now = ctx.clock.now()

    async def work(session: AsyncSession) -> TemporaryPasswordRead:
        await _check_places(session, actor, body.department_id, body.doctor_id)
        user, password = await accounts.create_account(
            session,
            actor=actor,
            username=body.username,
            display_name=body.display_name,
            roles=body.roles,
            department_id=body.department_id,
            doctor_id=body.doctor_id,
            now=now,
            password=body.password,
        )
        return TemporaryPasswordRead(
            account=StaffAccountRead.of(user, now), temporary_password=password
        )

    return await ctx.db.transact(work)


@router.patch(
    "/staff/users/{user_id}",
    response_model=StaffAccountRead,
    summary="Changes a staff account's roles, name, department or doctor (admin)",
)
async def change_account(
    user_id: uuid.UUID, body: StaffAccountUpdate, ctx: CtxDep, actor: ActorDep
) -> StaffAccountRead:
    require_staff(actor, Role.ADMIN)
    now = ctx.clock.now()

    async def work(session: AsyncSession) -> StaffAccountRead:
        await _check_places(session, actor, body.department_id, body.doctor_id)
        user = await accounts.change_account(
            session,
            actor=actor,
            user_id=user_id,
            roles=body.roles,
            display_name=body.display_name,
            department_id=body.department_id,
            doctor_id=body.doctor_id,
            fields=set(body.model_fields_set),
            now=now,
        )
        return StaffAccountRead.of(user, now)

    return await ctx.db.transact(work)


async def _set_active(
    user_id: uuid.UUID, ctx: AppContext, actor: Actor, *, active: bool
) -> StaffAccountRead:
    require_staff(actor, Role.ADMIN)
    now = ctx.clock.now()

    async def work(session: AsyncSession) -> StaffAccountRead:
        user = await accounts.set_active(
            session, actor=actor, user_id=user_id, active=active, now=now
        )
        return StaffAccountRead.of(user, now)

    return await ctx.db.transact(work)


@router.post(
    "/staff/users/{user_id}/disable",
    response_model=StaffAccountRead,
    summary="Disables a staff account and ends its sessions (admin)",
)
async def disable_account(user_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> StaffAccountRead:
    return await _set_active(user_id, ctx, actor, active=False)


@router.post(
    "/staff/users/{user_id}/enable",
    response_model=StaffAccountRead,
    summary="Re-enables a staff account (admin)",
)
async def enable_account(user_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> StaffAccountRead:
    return await _set_active(user_id, ctx, actor, active=True)


@router.post(
    "/staff/users/{user_id}/password-reset",
    response_model=TemporaryPasswordRead,
    summary="Sets a temporary password, to be changed at the next sign-in (admin)",
)
async def reset_password(user_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> TemporaryPasswordRead:
    require_staff(actor, Role.ADMIN)
    now = ctx.clock.now()

    async def work(session: AsyncSession) -> TemporaryPasswordRead:
        user, password = await accounts.reset_password(
            session, actor=actor, user_id=user_id, now=now
        )
        return TemporaryPasswordRead(
            account=StaffAccountRead.of(user, now), temporary_password=password
        )

    return await ctx.db.transact(work)


@router.post(
    "/staff/users/{user_id}/second-factor-reset",
    response_model=StaffAccountRead,
    summary="Removes a staff member's second factor and ends their sessions (admin)",
)
async def reset_second_factor(user_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> StaffAccountRead:
    require_staff(actor, Role.ADMIN)
    now = ctx.clock.now()

    async def work(session: AsyncSession) -> StaffAccountRead:
        user = await accounts.reset_second_factor(session, actor=actor, user_id=user_id, now=now)
        return StaffAccountRead.of(user, now)

    return await ctx.db.transact(work)


@router.get(
    "/staff/users/{user_id}/sessions",
    response_model=list[StaffSessionRead],
    summary="A staff member's sessions (admin)",
)
async def account_sessions(
    user_id: uuid.UUID, ctx: CtxDep, actor: ActorDep
) -> list[StaffSessionRead]:
    async with ctx.db.read() as session:
        user = await accounts.account(session, actor=actor, user_id=user_id)
        rows = await service.user_sessions(session, user_id=user.id, now=ctx.clock.now())
    return _sessions(rows, actor.session_id)


@router.delete(
    "/staff/users/{user_id}/sessions",
    status_code=204,
    summary="Ends every session of a staff member (admin)",
)
async def end_account_sessions(user_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> None:
    async def work(session: AsyncSession) -> None:
        await accounts.end_user_sessions(session, actor=actor, user_id=user_id, now=ctx.clock.now())

    await ctx.db.transact(work)


@router.get(
    "/staff/second-factor-roles",
    response_model=SecondFactorRoles,
    summary="The roles that must use a second factor at this hospital (admin)",
)
async def get_second_factor_roles(ctx: CtxDep, actor: ActorDep) -> SecondFactorRoles:
    require_staff(actor, Role.ADMIN)
    async with ctx.db.read() as session:
        roles = await service.second_factor_roles(session, actor.hospital_id)
    return SecondFactorRoles(roles=sorted(roles))


@router.put(
    "/staff/second-factor-roles",
    response_model=SecondFactorRoles,
    summary="Sets the roles that must use a second factor (admin)",
)
async def set_second_factor_roles(
    body: SecondFactorRoles, ctx: CtxDep, actor: ActorDep
) -> SecondFactorRoles:
    require_staff(actor, Role.ADMIN)

    async def work(session: AsyncSession) -> None:
        await service.set_second_factor_roles(
            session, actor=actor, roles=body.roles, now=ctx.clock.now()
        )

    await ctx.db.transact(work)
    return SecondFactorRoles(roles=sorted(set(body.roles)))


class ApiKeyCreate(Input):
    channel: Channel
    name: Annotated[str, Field(min_length=1, max_length=100)]


class ApiKeyRead(BaseModel):
    id: str
    channel: Channel
    name: str
    key: Annotated[str, Field(description="shown once; only its digest is stored")]


@router.post(
    "/api-keys",
    status_code=201,
    response_model=ApiKeyRead,
    summary="Create a channel API key (admin)",
)
async def create_api_key(body: ApiKeyCreate, ctx: CtxDep, actor: ActorDep) -> ApiKeyRead:
    require_staff(actor, Role.ADMIN)

    async def work(session: AsyncSession) -> ApiKeyRead:
        if not await scheduling_service.hospital_exists(session, actor.hospital_id):
            raise NotFound(what="hospital")
        key, row = await service.create_api_key(
            session,
            hospital_id=actor.hospital_id,
            channel=body.channel,
            name=body.name,
            now=ctx.clock.now(),
        )
        return ApiKeyRead(id=str(row.id), channel=body.channel, name=row.name, key=key)

    return await ctx.db.transact(work)


@router.delete(
    "/api-keys/{key_id}",
    status_code=204,
    summary="Revoke a channel API key (admin); it stops working at once in this process",
)
async def revoke_api_key(key_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> None:
    require_staff(actor, Role.ADMIN)

    async def work(session: AsyncSession) -> None:
        await service.revoke_api_key(
            session, hospital_id=actor.hospital_id, key_id=key_id, now=ctx.clock.now()
        )

    await ctx.db.transact(work)
    # Other processes drop their cached copy within the cache's lifetime (30 s).
    ctx.actors.forget_all()
