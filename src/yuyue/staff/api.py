from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.errors import NotFound
from yuyue.kit.schemas import Input
from yuyue.scheduling import service as scheduling_service
from yuyue.scheduling.enums import Channel
from yuyue.staff import service
from yuyue.staff.enums import Role
from yuyue.staff.rules import require_staff
from yuyue.web.deps import ActorDep, CtxDep

router = APIRouter(prefix="/api/v1", tags=["staff"])


class TokenRequest(Input):
    hospital: Annotated[str, Field(min_length=1, max_length=32, examples=["demo"])]
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    roles: list[str]


class ApiKeyCreate(Input):
    channel: Channel
    name: Annotated[str, Field(min_length=1, max_length=100)]


class ApiKeyRead(BaseModel):
    id: str
    channel: Channel
    name: str
    key: Annotated[str, Field(description="shown once; only its digest is stored")]


@router.post(
    "/auth/token",
    response_model=TokenRead,
    responses={401: {"description": "`invalid_credentials`"}},
)
async def issue_token(body: TokenRequest, ctx: CtxDep) -> TokenRead:
    async with ctx.db.read() as session:
        hospital_id = await scheduling_service.hospital_id_by_code(session, body.hospital)
        if hospital_id is None:
            raise service.InvalidCredentials()
        token, expires_at, user = await service.sign_in(
            session,
            hospital_id=hospital_id,
            username=body.username,
            password=body.password,
            signer=ctx.staff_signer,
            now=ctx.clock.now(),
            hours=ctx.settings.staff_token_hours,
        )
    return TokenRead(access_token=token, expires_at=expires_at, roles=user.roles)


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
