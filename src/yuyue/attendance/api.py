"""No-show policy and appeal routes: schedulers (and admins) set the policy, registrars
decide appeals."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.attendance import rules, service
from yuyue.attendance.models import AppealStatus
from yuyue.attendance.schemas import (
    AppealBan,
    AppealDecision,
    AppealRead,
    NoShowPolicyRead,
    NoShowPolicyUpdate,
)
from yuyue.jobs import request_delivery
from yuyue.web.deps import ActorDep, CtxDep
from yuyue.web.problems import register_constraint

router = APIRouter(prefix="/api/v1", tags=["no-shows"])

register_constraint("uq_blacklist_appeal_open_entry", rules.AppealAlreadyOpen)

_POLICY_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown API key / token (`unauthorized`)"},
    403: {"description": "not a scheduler or admin (`forbidden`)"},
    422: {"description": "`validation_error` (out of range, or ban lengths that shrink)"},
}
_APPEAL_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown API key / token (`unauthorized`)"},
    403: {"description": "not a registrar or admin (`forbidden`)"},
    404: {"description": "unknown appeal, or one of another hospital (`not_found`)"},
    409: {"description": "`invalid_state` (the appeal was already decided)"},
    422: {"description": "`validation_error`, `decision_note_required` (rejecting needs a note)"},
}


def _policy_read(policy: rules.Policy) -> NoShowPolicyRead:
    return NoShowPolicyRead(
        threshold=policy.threshold,
        window_days=policy.window_days,
        ban_days=list(policy.ban_days),
        grace_minutes=policy.grace_minutes,
    )


def _appeal_read(view: service.AppealView) -> AppealRead:
    return AppealRead(
        id=view.id,
        entry_id=view.entry_id,
        patient_id=view.patient_id,
        patient_name=view.patient_name,
        text=view.text,
        status=view.status,
        decided_by=view.decided_by,
        decision_note=view.decision_note,
        created_at=view.created_at,
        decided_at=view.decided_at,
        ban=AppealBan(
            reason=view.ban_reason,
            starts_at=view.ban_starts_at,
            ends_at=view.ban_ends_at,
            lifted_at=view.ban_lifted_at,
        ),
    )


@router.get(
    "/no-show-policy",
    response_model=NoShowPolicyRead,
    responses={401: _POLICY_REFUSALS[401]},
    summary="The no-show policy in force (published: any caller may read it)",
)
async def get_no_show_policy(ctx: CtxDep, actor: ActorDep) -> NoShowPolicyRead:
    async with ctx.db.read() as session:
        return _policy_read(await service.load_policy(session, hospital_id=actor.hospital_id))


@router.put(
    "/no-show-policy",
    response_model=NoShowPolicyRead,
    responses=_POLICY_REFUSALS,
    summary="Set the threshold, window, escalating ban lengths and grace (scheduler or admin)",
)
async def put_no_show_policy(
    body: NoShowPolicyUpdate, ctx: CtxDep, actor: ActorDep
) -> NoShowPolicyRead:
    async def work(session: AsyncSession) -> NoShowPolicyRead:
        policy = await service.update_policy(
            session, actor=actor, changes=body.model_dump(exclude_none=True), now=ctx.clock.now()
        )
        return _policy_read(policy)

    return await ctx.db.transact(work)


@router.get(
    "/appeals",
    response_model=list[AppealRead],
    responses=_APPEAL_REFUSALS,
    summary="Appeals against bans, oldest first (registrar or admin)",
)
async def list_appeals(
    ctx: CtxDep,
    actor: ActorDep,
    status: AppealStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AppealRead]:
    async with ctx.db.read() as session:
        views = await service.list_appeals(session, actor=actor, status=status, limit=limit)
    return [_appeal_read(v) for v in views]


@router.post(
    "/appeals/{appeal_id}/decide",
    response_model=AppealRead,
    responses=_APPEAL_REFUSALS,
    summary="Accept (lifts the ban) or reject an appeal; the patient is told",
)
async def decide_appeal(
    appeal_id: uuid.UUID, body: AppealDecision, ctx: CtxDep, actor: ActorDep
) -> AppealRead:
    async def work(session: AsyncSession) -> AppealRead:
        await service.decide_appeal(
            session,
            actor=actor,
            appeal_id=appeal_id,
            accept=body.decision == "accept",
            note=body.note,
            now=ctx.clock.now(),
        )
        view = await service.appeal_view(
            session, hospital_id=actor.hospital_id, appeal_id=appeal_id
        )
        return _appeal_read(view)

    result = await ctx.db.transact(work)
    request_delivery(ctx)
    return result
