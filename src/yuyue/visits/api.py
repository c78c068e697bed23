"""Visit-day routes: check-in (kiosk and desk), walk-ins, the queue, triage and calling.

Thin: each route runs one service call in one transaction and, after it commits,
publishes the queue event the screens listen to. Kiosks call with a channel API key of
channel ``kiosk``; the desk, nurses and doctors with staff tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.localtime import local_today
from yuyue.staff.rules import Actor
from yuyue.staff.service import ReadSource
from yuyue.visits import events, rules, service
from yuyue.visits.events import QueueEventKind
from yuyue.visits.models import Visit
from yuyue.visits.schemas import (
    BoardRoomRead,
    CheckInCreate,
    CheckInRead,
    DeskCheckIn,
    DeskLookup,
    DeskMatchRead,
    MoveRequest,
    PriorityUpdate,
    QueueRead,
    QueueTicketRead,
    ReturnVisitUpdate,
    VisitPolicyRead,
    VisitPolicyUpdate,
    WalkInCreate,
)
from yuyue.web.context import AppContext
from yuyue.web.deps import ActorDep, CtxDep, ReadSourceDep

router = APIRouter(prefix="/api/v1", tags=["visits"])

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown API key / token (`unauthorized`)"},
    403: {"description": "`forbidden`: the caller's role may not do this"},
}
_CHECK_IN_REFUSALS: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    200: {"description": "`already_checked_in`: a second scan; the same ticket, nothing changed"},
    409: {
        "description": "`voucher_other_day`, `check_in_too_early` (with `opens_at`), "
        "`check_in_closed`, `appointment_cancelled`, `appointment_unpaid`, `voucher_used`"
    },
    422: {
        "description": "`voucher_invalid` (forged, unknown, another hospital's, or a wrong "
        "code and phone digits), `voucher_expired`, `validation_error`"
    },
    429: {"description": "`too_many_attempts` (with `retry_after` seconds): wrong short codes"},
}
_VISIT_REFUSALS: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    404: {"description": "unknown visit or session (`not_found`)"},
    409: {
        "description": "`invalid_visit_state` (e.g. finishing a visit not started), "
        "`queue_empty`, `invalid_move`, `priority_not_enabled`"
    },
    422: {"description": "`validation_error` (e.g. a move or priority without a reason)"},
}


def _client(request: Request, actor: Actor) -> str:
    address = request.client.host if request.client else "-"
    return f"{actor.kind.value}:{actor.id}@{address}"


async def _answer_check_in(ctx: AppContext, result: service.CheckIn) -> JSONResponse:
    if not result.already:
        await events.publish(
            ctx,
            service.event_of(
                result.visit, QueueEventKind.CHECKED_IN, at=result.visit.checked_in_at
            ),
        )
    body = CheckInRead(
        already_checked_in=result.already, ticket=QueueTicketRead.model_validate(result.ticket)
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if result.already else 201)


@router.post(
    "/check-ins",
    status_code=201,
    response_model=CheckInRead,
    responses=_CHECK_IN_REFUSALS,
    summary="Check in (报到) with a scanned voucher, or the short code and phone digits",
)
async def create_check_in(
    body: CheckInCreate, request: Request, ctx: CtxDep, actor: ActorDep
) -> JSONResponse:
    client = _client(request, actor)

    async def work(session: AsyncSession) -> service.CheckIn:
        now = ctx.clock.now()
        if body.token is not None:
            return await service.check_in_by_token(
                session, actor=actor, token=body.token, signer=ctx.voucher_signer, now=now
            )
        return await service.check_in_by_code(
            session,
            actor=actor,
            code=body.code or "",
            phone_last4=body.phone_last4 or "",
            client=client,
            now=now,
        )

    try:
        result = await ctx.db.transact(work)
    except service.CodeNotMatched:
        # The refused transaction changed nothing; the wrong guess is counted on its own.
        async def count(session: AsyncSession) -> None:
            await service.record_code_failure(
                session,
                hospital_id=actor.hospital_id,
                client=client,
                code=body.code or "",
                now=ctx.clock.now(),
            )

        await ctx.db.transact(count)
        raise
    return await _answer_check_in(ctx, result)


@router.post(
    "/desk/check-ins",
    status_code=201,
    response_model=CheckInRead,
    responses=_CHECK_IN_REFUSALS,
    summary="The triage desk checks in an appointment it looked up",
)
async def desk_check_in(body: DeskCheckIn, ctx: CtxDep, actor: ActorDep) -> JSONResponse:
    async def work(session: AsyncSession) -> service.CheckIn:
        return await service.check_in(
            session, actor=actor, appointment_id=body.appointment_id, now=ctx.clock.now()
        )

    return await _answer_check_in(ctx, await ctx.db.transact(work))


async def _desk_lookup(
    ctx: AppContext, actor: Actor, source: ReadSource, query: str
) -> list[DeskMatchRead]:
    """Each look-up is logged with the patients found (never what was typed)."""

    async def work(session: AsyncSession) -> list[service.DeskMatch]:
        return await service.find_for_desk(
            session,
            actor=actor,
            query=query,
            cipher=ctx.cipher,
            signer=ctx.voucher_signer,
            now=ctx.clock.now(),
            source=source,
        )

    matches = await ctx.db.transact(work)
    return [DeskMatchRead.model_validate(m) for m in matches]


@router.post(
    "/desk/lookup",
    response_model=list[DeskMatchRead],
    responses=_AUTH,
    summary="Today's appointments by voucher, short code, ID number or mobile number",
)
async def desk_lookup(
    body: DeskLookup, ctx: CtxDep, actor: ActorDep, source: ReadSourceDep
) -> list[DeskMatchRead]:
    """The query travels in the body, so an identity or phone number never reaches an
    address (access logs, proxies, browser history). Logged with the patients found."""
    return await _desk_lookup(ctx, actor, source, body.q)


@router.get(
    "/desk/lookup",
    response_model=list[DeskMatchRead],
    responses={
        **_AUTH,
        422: {"description": "`lookup_in_url`: anything but an 8-digit short code"},
    },
    summary="Today's appointments by 8-digit short code only (use POST for anything else)",
    deprecated=True,
)
async def desk_lookup_by_code(
    ctx: CtxDep,
    actor: ActorDep,
    source: ReadSourceDep,
    q: Annotated[str, Query(min_length=4, max_length=2000)],
) -> list[DeskMatchRead]:
    """Kept for clients that look up a printed short code; an identity number, phone number
    or voucher token in the address is refused before anything is searched or logged."""
    if not rules.may_travel_in_url(q):
        raise rules.LookupInUrl()
    return await _desk_lookup(ctx, actor, source, q)


@router.post(
    "/walk-ins",
    status_code=201,
    response_model=CheckInRead,
    responses={
        **_AUTH,
        404: {"description": "unknown patient, session or slot (`not_found`)"},
        409: {
            "description": "booking refusals (`sold_out`, `limit_exceeded`, `already_booked`, "
            "`booking_closed`, `session_stopped`, …) or `appointment_unpaid`"
        },
    },
    summary="Register a walk-in into the on-site pool and check them in at once",
)
async def create_walk_in(body: WalkInCreate, ctx: CtxDep, actor: ActorDep) -> JSONResponse:
    async def work(session: AsyncSession) -> service.CheckIn:
        return await service.walk_in(
            session,
            actor=actor,
            patient_id=body.patient_id,
            session_id=body.session_id,
            slot_id=body.slot_id,
            now=ctx.clock.now(),
            priority=body.priority,
            priority_reason=body.priority_reason,
            payment_reference=body.payment_reference,
        )

    result = await ctx.db.transact(work)
    ctx.places_taken(actor.hospital_id, body.session_id)
    return await _answer_check_in(ctx, result)


@router.get(
    "/sessions/{session_id}/queue",
    response_model=QueueRead,
    responses={**_AUTH, 404: {"description": "`not_found`"}},
    summary="The queue (候诊) of a clinic session: in the room, waiting in order, finished",
)
async def get_queue(session_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> QueueRead:
    async with ctx.db.read() as session:
        view = await service.queue_view(session, actor=actor, session_id=session_id)
    return QueueRead.model_validate(view)


@router.get(
    "/departments/{department_id}/board",
    response_model=list[BoardRoomRead],
    responses=_AUTH,
    summary="The waiting-room screen: per room, who is called and who is next (names masked)",
)
async def get_board(
    department_id: uuid.UUID,
    ctx: CtxDep,
    actor: ActorDep,
    day: Annotated[date | None, Query(alias="date")] = None,
) -> list[BoardRoomRead]:
    async with ctx.db.read() as session:
        if day is None:
            tz = await service.hospital_timezone(session, hospital_id=actor.hospital_id)
            day = local_today(ctx.clock.now(), tz)
        rooms = await service.department_board(
            session, actor=actor, department_id=department_id, day=day
        )
    return [BoardRoomRead.model_validate(r) for r in rooms]


@router.get(
    "/visits/{visit_id}",
    response_model=QueueTicketRead,
    responses=_VISIT_REFUSALS,
    summary="A visit's queue ticket: position, people ahead, estimated wait",
)
async def get_visit_ticket(visit_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> QueueTicketRead:
    async with ctx.db.read() as session:
        result = await service.visit_ticket(session, actor=actor, visit_id=visit_id)
    return QueueTicketRead.model_validate(result)


VisitChange = Callable[[AsyncSession], Awaitable[Visit]]


async def _change(ctx: AppContext, work: VisitChange, kind: QueueEventKind) -> QueueTicketRead:
    async def run(session: AsyncSession) -> tuple[Visit, service.QueueTicket]:
        visit = await work(session)
        policy = await service.load_policy(session, hospital_id=visit.hospital_id)
        return visit, await service.ticket(session, visit=visit, policy=policy)

    visit, result = await ctx.db.transact(run)
    await events.publish(ctx, service.event_of(visit, kind, at=visit.updated_at))
    return QueueTicketRead.model_validate(result)


@router.post(
    "/sessions/{session_id}/call-next",
    response_model=QueueTicketRead,
    responses=_VISIT_REFUSALS,
    summary="Call the first patient in line (叫号)",
)
async def call_next(session_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> QueueTicketRead:
    async def work(session: AsyncSession) -> Visit:
        return await service.call_next(
            session, actor=actor, session_id=session_id, now=ctx.clock.now()
        )

    return await _change(ctx, work, QueueEventKind.CALLED)


def _visit_action(
    name: str,
    action: Callable[..., Awaitable[Visit]],
    kind: QueueEventKind,
    summary: str,
) -> None:
    async def endpoint(visit_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> QueueTicketRead:
        async def work(session: AsyncSession) -> Visit:
            return await action(session, actor=actor, visit_id=visit_id, now=ctx.clock.now())

        return await _change(ctx, work, kind)

    endpoint.__name__ = f"visit_{name.replace('-', '_')}"
    router.add_api_route(
        f"/visits/{{visit_id}}/{name}",
        endpoint,
        methods=["POST"],
        response_model=QueueTicketRead,
        responses=_VISIT_REFUSALS,
        summary=summary,
    )


_visit_action("call", service.call, QueueEventKind.CALLED, "Call this patient now")
_visit_action(
    "recall", service.recall, QueueEventKind.RECALLED, "Call a called or skipped patient again"
)
_visit_action(
    "skip",
    service.skip,
    QueueEventKind.SKIPPED,
    "过号: back to the end of the batch being called; can be recalled",
)
_visit_action("start", service.start, QueueEventKind.STARTED, "The consultation starts")
_visit_action(
    "finish",
    service.finish,
    QueueEventKind.FINISHED,
    "The consultation ends (appointment completed)",
)


@router.post(
    "/visits/{visit_id}/return-visit",
    response_model=QueueTicketRead,
    responses=_VISIT_REFUSALS,
    summary="回诊: the patient should come back today with results",
)
async def mark_return_visit(
    visit_id: uuid.UUID, ctx: CtxDep, actor: ActorDep, body: ReturnVisitUpdate | None = None
) -> QueueTicketRead:
    async def work(session: AsyncSession) -> Visit:
        return await service.mark_return_visit(
            session,
            actor=actor,
            visit_id=visit_id,
            needed=body.needed if body else True,
            now=ctx.clock.now(),
        )

    return await _change(ctx, work, QueueEventKind.RETURN_VISIT)


@router.post(
    "/visits/{visit_id}/priority",
    response_model=QueueTicketRead,
    responses=_VISIT_REFUSALS,
    summary="Triage: mark or clear a priority class, with a reason",
)
async def set_priority(
    visit_id: uuid.UUID, body: PriorityUpdate, ctx: CtxDep, actor: ActorDep
) -> QueueTicketRead:
    async def work(session: AsyncSession) -> Visit:
        return await service.set_priority(
            session,
            actor=actor,
            visit_id=visit_id,
            priority=body.priority,
            reason=body.reason,
            now=ctx.clock.now(),
        )

    return await _change(ctx, work, QueueEventKind.PRIORITY_SET)


@router.post(
    "/visits/{visit_id}/move",
    response_model=QueueTicketRead,
    responses=_VISIT_REFUSALS,
    summary="Triage: put a waiting patient directly before or after another, with a reason",
)
async def move_visit(
    visit_id: uuid.UUID, body: MoveRequest, ctx: CtxDep, actor: ActorDep
) -> QueueTicketRead:
    async def work(session: AsyncSession) -> Visit:
        return await service.move(
            session,
            actor=actor,
            visit_id=visit_id,
            before=body.before,
            after=body.after,
            reason=body.reason,
            now=ctx.clock.now(),
        )

    return await _change(ctx, work, QueueEventKind.MOVED)


# --- the visit-day rules -------------------------------------------------------------------


def _policy_read(policy: rules.Policy) -> VisitPolicyRead:
    return VisitPolicyRead(
        check_in_minutes_before=policy.check_in_minutes_before,
        late_grace_minutes=policy.late_grace_minutes,
        batch_slots=policy.batch_slots,
        elderly_age=policy.elderly_age,
        priority_classes=list(policy.priority_classes),
        estimate_min_samples=policy.estimate_min_samples,
        code_attempts_max=policy.code_attempts_max,
        code_lockout_minutes=policy.code_lockout_minutes,
        come_back_ahead=policy.come_back_ahead,
        travel_minutes=policy.travel_minutes,
    )


@router.get(
    "/visit-policy",
    response_model=VisitPolicyRead,
    responses={401: _AUTH[401]},
    summary="Check-in window, late rule, priorities, estimates and phone notices in force",
)
async def get_visit_policy(ctx: CtxDep, actor: ActorDep) -> VisitPolicyRead:
    async with ctx.db.read() as session:
        return _policy_read(await service.load_policy(session, hospital_id=actor.hospital_id))


@router.put(
    "/visit-policy",
    response_model=VisitPolicyRead,
    responses={**_AUTH, 422: {"description": "`validation_error`"}},
    summary="Set the hospital's visit-day rules (scheduler or admin)",
)
async def put_visit_policy(
    body: VisitPolicyUpdate, ctx: CtxDep, actor: ActorDep
) -> VisitPolicyRead:
    async def work(session: AsyncSession) -> VisitPolicyRead:
        policy = await service.update_policy(
            session, actor=actor, changes=body.model_dump(exclude_none=True), now=ctx.clock.now()
        )
        return _policy_read(policy)

    return await ctx.db.transact(work)
