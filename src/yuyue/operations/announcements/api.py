"""Announcements over HTTP: anyone may read the notices in force (no key needed); the
outpatient office (and administrators) post and withdraw them and list every one."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.errors import Forbidden, NotFound
from yuyue.kit.schemas import Input
from yuyue.operations.announcements import rules, service
from yuyue.scheduling import service as scheduling
from yuyue.staff.rules import Actor
from yuyue.web.context import AppContext
from yuyue.web.deps import ActorDep, CtxDep, LocaleDep, bearer, current_actor

router = APIRouter(prefix="/api/v1", tags=["operations"])

_WRITE_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "`unauthorized`: no staff token"},
    403: {"description": "`forbidden`: not the outpatient office (scheduler) or an admin"},
    404: {"description": "`not_found`: no such announcement"},
    422: {
        "description": "`validation_error` (a field missing, too long or of the wrong type) "
        "or `invalid_announcement` (with `field` and `problem`: the window, the day, the "
        "scope); nothing is changed"
    },
}


class AnnouncementCreate(Input):
    kind: rules.AnnouncementKind = Field(
        description="`maintenance` (whole hospital), `clinic_delayed` (a department or a "
        "session), `campus_closed` (the hospital or a campus) or `general` (any scope)"
    )
    severity: rules.Severity = rules.Severity.INFO
    title: Annotated[str, Field(max_length=rules.TITLE_MAX, description="Chinese")]
    body: Annotated[str, Field(max_length=rules.BODY_MAX, description="Chinese")]
    title_en: Annotated[str, Field(max_length=rules.TITLE_EN_MAX)] = ""
    body_en: Annotated[str, Field(max_length=rules.BODY_EN_MAX)] = ""
    campus_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    day: date | None = Field(
        default=None, description="the day it concerns (hospital's calendar), within the window"
    )
    starts_at: AwareDatetime | None = Field(default=None, description="default: now")
    ends_at: AwareDatetime
    notify_patients: bool = Field(
        default=False,
        description="text every patient with an active appointment in scope on `day` (or on "
        "the window's days, at most 7): one message each, by SMS and their inbox",
    )


class ScopeRead(BaseModel):
    level: rules.ScopeLevel
    campus_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    day: date | None = None


class AnnouncementRead(BaseModel):
    id: uuid.UUID
    kind: rules.AnnouncementKind
    severity: rules.Severity
    title: str = Field(description="in the caller's language (Accept-Language)")
    body: str
    title_zh: str
    title_en: str
    body_zh: str
    body_en: str
    scope: ScopeRead
    starts_at: datetime
    ends_at: datetime
    shown: bool = Field(description="shown on the pages right now")
    created_at: datetime
    # For staff only: who posted and withdrew it, and how many patients were texted.
    created_by: str | None = None
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None
    notified: int | None = None


def _read(notice: rules.Posted, *, locale: str, now: datetime, for_staff: bool) -> AnnouncementRead:
    scope = notice.scope
    return AnnouncementRead(
        id=notice.id,
        kind=notice.kind,
        severity=notice.severity,
        title=notice.title_in(locale),
        body=notice.body_in(locale),
        title_zh=notice.title,
        title_en=notice.title_en,
        body_zh=notice.body,
        body_en=notice.body_en,
        scope=ScopeRead(
            level=scope.level,
            campus_id=scope.campus_id,
            department_id=scope.department_id,
            session_id=scope.session_id,
            day=scope.day,
        ),
        starts_at=notice.starts_at,
        ends_at=notice.ends_at,
        shown=notice.shown_at(now),
        created_at=notice.created_at,
        created_by=notice.created_by if for_staff else None,
        withdrawn_at=notice.withdrawn_at,
        withdrawn_by=notice.withdrawn_by if for_staff else None,
        notified=notice.notified if for_staff else None,
    )


async def _after_commit(ctx: AppContext, notice: rules.Posted, hospital_id: uuid.UUID) -> None:
    await service.publish_change(ctx.live, hospital_id=hospital_id, announcement_id=notice.id)
    if notice.notified:
        from yuyue.jobs import request_delivery

        request_delivery(ctx)


@router.post(
    "/announcements",
    status_code=201,
    response_model=AnnouncementRead,
    responses=_WRITE_REFUSALS,
    summary="Post an announcement (公告), optionally texting the patients it concerns",
)
async def post_announcement(
    body: AnnouncementCreate,
    ctx: CtxDep,
    actor: ActorDep,
    locale: LocaleDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> AnnouncementRead:
    draft = rules.Draft(
        kind=body.kind,
        severity=body.severity,
        title=body.title,
        title_en=body.title_en,
        body=body.body,
        body_en=body.body_en,
        scope=rules.Scope(
            campus_id=body.campus_id,
            department_id=body.department_id,
            session_id=body.session_id,
            day=body.day,
        ),
        starts_at=body.starts_at,
        ends_at=body.ends_at,
    )
    now = ctx.clock.now()

    async def work(session: AsyncSession) -> rules.Posted:
        return await service.post(
            session,
            actor=actor,
            draft=draft,
            notify_patients=body.notify_patients,
            now=now,
            idempotency_key=idempotency_key,
        )

    try:
        notice = await ctx.db.transact(work)
    except IntegrityError:
        # Two posts with one Idempotency-Key at once: the other one won; answer with it.
        if idempotency_key is None:
            raise

        async def replay(session: AsyncSession) -> rules.Posted | None:
            return await service.find_replayed(
                session, actor=actor, idempotency_key=idempotency_key
            )

        found = await ctx.db.transact(replay)
        if found is None:
            raise
        notice = found
    await _after_commit(ctx, notice, actor.hospital_id)
    return _read(notice, locale=locale, now=now, for_staff=True)


async def _optional_actor(
    request: Request,
    ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor | None:
    return await current_actor(request, ctx, credentials) if credentials is not None else None


@router.get(
    "/announcements",
    response_model=list[AnnouncementRead],
    responses={
        401: {"description": "`unauthorized`: a key or token was sent and is not valid"},
        403: {"description": "`forbidden`: `all=true` needs the outpatient office"},
    },
    summary="The announcements in force (anyone), or every one (`all=true`, staff)",
)
async def list_announcements(
    ctx: CtxDep,
    locale: LocaleDep,
    actor: Annotated[Actor | None, Depends(_optional_actor)],
    campus_id: uuid.UUID | None = None,
    department_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    day: Annotated[date | None, Query(alias="date")] = None,
    include_all: Annotated[
        bool,
        Query(alias="all", description="every announcement, withdrawn and ended too (staff)"),
    ] = False,
) -> list[AnnouncementRead]:
    """Without filters: every notice in force, each with its scope. With `campus_id`,
    `department_id`, `session_id` or `date`: the ones a page about that place shows
    (hospital-wide ones included)."""
    now = ctx.clock.now()
    async with ctx.db.read() as session:
        if include_all:
            if actor is None or not actor.has_role(*service.POST_ROLES):
                raise Forbidden()
            notices = await service.all_notices(session, actor=actor)
            return [_read(n, locale=locale, now=now, for_staff=True) for n in notices]
        if actor is not None:
            hospital_id = actor.hospital_id
        else:
            found = await scheduling.hospital_id_by_code(session, ctx.settings.hospital_code)
            if found is None:
                raise NotFound(what="hospital")
            hospital_id = found
        notices = await service.in_force(session, hospital_id=hospital_id, now=now)
        place = rules.EVERYWHERE
        if campus_id or department_id or session_id or day:
            place = await service.place_of(
                session,
                hospital_id=hospital_id,
                campus_id=campus_id,
                department_id=department_id,
                session_id=session_id,
                day=day,
            )
    for_staff = actor is not None and actor.has_role(*service.POST_ROLES)
    return [
        _read(n, locale=locale, now=now, for_staff=for_staff)
        for n in rules.shown_on(notices, place, now=now)
    ]


@router.delete(
    "/announcements/{announcement_id}",
    response_model=AnnouncementRead,
    responses=_WRITE_REFUSALS,
    summary="Withdraw an announcement: it leaves every page and screen at once",
)
async def withdraw_announcement(
    announcement_id: uuid.UUID, ctx: CtxDep, actor: ActorDep, locale: LocaleDep
) -> AnnouncementRead:
    now = ctx.clock.now()

    async def work(session: AsyncSession) -> rules.Posted:
        return await service.withdraw(
            session, actor=actor, announcement_id=announcement_id, now=now
        )

    notice = await ctx.db.transact(work)
    await service.publish_change(ctx.live, hospital_id=actor.hospital_id, announcement_id=notice.id)
    return _read(notice, locale=locale, now=now, for_staff=True)
