"""Scheduler (and admin) routes: the wording of messages and when reminders go out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.notifications import service
from yuyue.notifications.schemas import (
    MessageTemplateRead,
    MessageTemplateUpdate,
    NotificationSettingsRead,
    NotificationSettingsUpdate,
)
from yuyue.web.deps import ActorDep, CtxDep

router = APIRouter(prefix="/api/v1", tags=["notifications"])

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown token (`unauthorized`)"},
    403: {"description": "not a scheduler or admin (`forbidden`)"},
    404: {"description": "unknown department (`not_found`)"},
    422: {
        "description": "`invalid_template` (unknown placeholders, with `allowed`), "
        "`invalid_notification_settings`, `unsupported_locale` or `validation_error`"
    },
}


def _template(view: service.TemplateView) -> MessageTemplateRead:
    return MessageTemplateRead(
        kind=view.kind,
        locale=view.locale,
        department_id=view.department_id,
        subject=view.subject,
        body=view.body,
        custom=view.custom,
        placeholders=list(view.placeholders),
    )


def _settings(found: service.DeliverySettings) -> NotificationSettingsRead:
    return NotificationSettingsRead(
        reminder_offsets_hours=list(found.reminder_offsets_hours),
        quiet_hours_start=found.quiet.start,
        quiet_hours_end=found.quiet.end,
        timezone=found.timezone,
        custom=found.saved,
    )


@router.get(
    "/message-templates",
    response_model=list[MessageTemplateRead],
    responses=_REFUSALS,
    summary="Every message's wording per kind, language and department (scheduler or admin)",
)
async def list_message_templates(ctx: CtxDep, actor: ActorDep) -> list[MessageTemplateRead]:
    async with ctx.db.read() as session:
        return [_template(v) for v in await service.list_templates(session, actor=actor)]


@router.put(
    "/message-templates",
    response_model=MessageTemplateRead,
    responses=_REFUSALS,
    summary="Set the wording of one kind of message in one language (scheduler or admin)",
)
async def put_message_template(
    body: MessageTemplateUpdate, ctx: CtxDep, actor: ActorDep
) -> MessageTemplateRead:
    async def work(session: AsyncSession) -> MessageTemplateRead:
        view = await service.save_template(
            session,
            actor=actor,
            kind=body.kind,
            locale=body.locale,
            department_id=body.department_id,
            subject=body.subject,
            body=body.body,
            now=ctx.clock.now(),
        )
        return _template(view)

    return await ctx.db.transact(work)


@router.get(
    "/notification-settings",
    response_model=NotificationSettingsRead,
    responses=_REFUSALS,
    summary="Reminder offsets and quiet hours (scheduler or admin)",
)
async def get_notification_settings(ctx: CtxDep, actor: ActorDep) -> NotificationSettingsRead:
    async with ctx.db.read() as session:
        return _settings(await service.notification_settings(session, actor=actor))


@router.put(
    "/notification-settings",
    response_model=NotificationSettingsRead,
    responses=_REFUSALS,
    summary="Set reminder offsets and quiet hours (scheduler or admin)",
)
async def put_notification_settings(
    body: NotificationSettingsUpdate, ctx: CtxDep, actor: ActorDep
) -> NotificationSettingsRead:
    async def work(session: AsyncSession) -> NotificationSettingsRead:
        saved = await service.save_notification_settings(
            session,
            actor=actor,
            reminder_offsets_hours=body.reminder_offsets_hours,
            quiet_hours_start=body.quiet_hours_start,
            quiet_hours_end=body.quiet_hours_end,
            now=ctx.clock.now(),
        )
        return _settings(saved)

    return await ctx.db.transact(work)
