"""Maintenance mode over HTTP: anyone signed in may ask; administrators start and end it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.schemas import Input
from yuyue.operations import service
from yuyue.operations.rules import MESSAGE_MAX, Notice
from yuyue.web.deps import ActorDep, CtxDep, LocaleDep

router = APIRouter(prefix="/api/v1", tags=["operations"])

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed in"},
    403: {"description": "not an administrator"},
    422: {"description": "the notice is missing or too long"},
}


class MaintenanceStart(Input):
    message: Annotated[str, Field(max_length=MESSAGE_MAX, description="what patients read")]
    message_en: Annotated[str, Field(max_length=MESSAGE_MAX)] = ""


class MaintenanceRead(BaseModel):
    active: bool
    message: str | None = None
    since: datetime | None = None
    started_by: str | None = None


def _read(notice: Notice | None, locale: str) -> MaintenanceRead:
    if notice is None:
        return MaintenanceRead(active=False)
    return MaintenanceRead(
        active=True,
        message=notice.text(locale),
        since=notice.started_at,
        started_by=notice.started_by,
    )


@router.get(
    "/maintenance",
    response_model=MaintenanceRead,
    responses=_REFUSALS,
    summary="Whether new bookings are paused, and the notice",
)
async def get_maintenance(ctx: CtxDep, actor: ActorDep, locale: LocaleDep) -> MaintenanceRead:
    async with ctx.db.read() as session:
        return _read(await service.current(session, hospital_id=actor.hospital_id), locale)


@router.put(
    "/maintenance",
    response_model=MaintenanceRead,
    responses=_REFUSALS,
    summary="Pause new bookings with a notice (admin); check-in and the queue go on",
)
async def start_maintenance(
    body: MaintenanceStart, ctx: CtxDep, actor: ActorDep, locale: LocaleDep
) -> MaintenanceRead:
    async def work(session: AsyncSession) -> Notice:
        return await service.start(
            session,
            actor=actor,
            message=body.message,
            message_en=body.message_en,
            now=ctx.clock.now(),
        )

    return _read(await ctx.db.transact(work), locale)


@router.delete(
    "/maintenance",
    response_model=MaintenanceRead,
    responses=_REFUSALS,
    summary="Resume new bookings (admin)",
)
async def end_maintenance(ctx: CtxDep, actor: ActorDep) -> MaintenanceRead:
    async def work(session: AsyncSession) -> bool:
        return await service.end(session, actor=actor, now=ctx.clock.now())

    await ctx.db.transact(work)
    return MaintenanceRead(active=False)
