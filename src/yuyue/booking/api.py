"""Appointment routes. The booking POST is the release-peak hot path: kept lean, and a
request for a place known to be gone is answered from memory before the database."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import approvals, demand, rules, service, store, views
from yuyue.booking.availability import SoldOutEntry
from yuyue.booking.models import ChangeRequest
from yuyue.booking.schemas import (
    AppointmentCreate,
    AppointmentRead,
    BlacklistCreate,
    CancelRequest,
    ChangeRequestCreate,
    ChangeRequestDecision,
    ChangeRequestRead,
    PaymentConfirmation,
    Reschedule,
)
from yuyue.jobs import request_delivery, request_refunds
from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.kit.observability import BOOKINGS
from yuyue.kit.sql import Driver
from yuyue.notifications import service as notification_service
from yuyue.operations import service as operations_service
from yuyue.patients import service as patient_service
from yuyue.scheduling.rules import pools_for_channel
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, reads_logged, require_staff
from yuyue.web.context import AppContext
from yuyue.web.deps import ActorDep, CtxDep, LocaleDep, ReadSourceDep
from yuyue.web.problems import PROBLEM_JSON, problem_body, register_constraint

router = APIRouter(prefix="/api/v1", tags=["appointments"])

register_constraint("uq_appointment_active_patient_session", rules.AlreadyBooked)


class IdempotencyKeyReused(YuyueError):
    code = "idempotency_key_reused"
    status = 422


class InvalidIdempotencyKey(YuyueError):
    code = "invalid_idempotency_key"
    status = 422


register_constraint("uq_idempotency_record_scope_key", IdempotencyKeyReused)

i18n.register(
    {
        "title.idempotency_key_reused": ("幂等键重复使用", "Idempotency key reused"),
        "error.idempotency_key_reused": (
            "该 Idempotency-Key 已用于另一个不同的请求，请为新请求使用新的键。",
            "This Idempotency-Key was already used for a different request; use a new key.",
        ),
        "title.invalid_idempotency_key": ("幂等键无效", "Invalid idempotency key"),
        "error.invalid_idempotency_key": (
            "Idempotency-Key 须为 1–200 个可见 ASCII 字符。",
            "The Idempotency-Key must be 1–200 visible ASCII characters.",
        ),
    }
)

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown API key / token (`unauthorized`)"},
    404: {"description": "unknown patient, session or slot (`not_found`)"},
    409: {
        "description": "refused by a rule: `sold_out` (with `alternatives`), `limit_exceeded`, "
        "`already_booked`, `outside_release_window`, `booking_closed`, `session_stopped`, "
        "`age_not_allowed`, `sex_not_allowed`",
        "content": {
            PROBLEM_JSON: {
                "example": {
                    "type": "https://yuyue.dev/problems/sold_out",
                    "title": "号源已约满",
                    "status": 409,
                    "code": "sold_out",
                    "detail": "该时段的号源已约满，可选择下方推荐的其他时段或医生。",
                    "alternatives": [
                        {
                            "kind": "same_doctor",
                            "session_id": "0195f3c1-0000-7000-8000-0000000000ab",
                            "date": "2026-11-27",
                            "period": "afternoon",
                            "start": "13:30",
                            "end": "17:30",
                            "doctor_name": "王建国",
                            "remaining": 4,
                        }
                    ],
                }
            }
        },
    },
    403: {"description": "`blacklisted` (self-service booking suspended) or `forbidden`"},
    422: {"description": "`validation_error` or `idempotency_key_reused`"},
}


def scope_of(actor: Actor) -> str:
    return f"{actor.kind.value}:{actor.id}"


def _request_hash(body: AppointmentCreate) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def check_idempotency_key(key: str | None, *, refuse: bool = True) -> str | None:
    """The key if it is 1–200 visible ASCII characters; otherwise refused (or None)."""
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isascii() or not key.isprintable():
        if refuse:
            raise InvalidIdempotencyKey()
        return None
    return key


@router.post(
    "/appointments",
    status_code=201,
    response_model=AppointmentRead,
    responses=_REFUSALS,
    summary="Book a place (a hold when the level has a fee)",
)
async def create_appointment(
    body: AppointmentCreate,
    request: Request,
    ctx: CtxDep,
    actor: ActorDep,
    locale: LocaleDep,
    idempotency_key: Annotated[
        str | None,
        Header(description="Retries with the same key return the first successful answer."),
    ] = None,
) -> Any:
    return await book_request(
        ctx,
        actor=actor,
        body=body,
        key=check_idempotency_key(idempotency_key),
        locale=locale,
        path=request.url.path,
    )


async def book_request(
    ctx: AppContext,
    *,
    actor: Actor,
    body: AppointmentCreate,
    key: str | None,
    locale: str,
    path: str,
) -> Response:
    """The booking POST, answered by the route or in front of the router (`fastpath`).
    Every attempt a booking rule answered is counted for the demand heat map
    (`booking.demand`: booked, sold out, or the refusal's code); a retry answered from its
    idempotency record is not a new attempt and is not counted."""
    try:
        response, outcome = await _book_request(
            ctx, actor=actor, body=body, key=key, locale=locale, path=path
        )
    except YuyueError as refusal:
        refused = demand.refusal_outcome(refusal)
        if refused is not None:
            ctx.demand.count(actor.hospital_id, body.session_id, actor.channel, refused)
        raise
    if outcome is not None:
        ctx.demand.count(actor.hospital_id, body.session_id, actor.channel, outcome)
    return response


async def _book_request(
    ctx: AppContext,
    *,
    actor: Actor,
    body: AppointmentCreate,
    key: str | None,
    locale: str,
    path: str,
) -> tuple[Response, str | None]:
    """The answer, and the outcome to count (None: a replayed answer)."""
    scope = scope_of(actor)
    request_hash = _request_hash(body)
    if key is not None and await ctx.known_keys.may_have_answer(scope, key):
        async with ctx.db.read() as session:
            record = await service.find_idempotent(session, scope=scope, key=key)
        if record is not None:
            replayed = _replay(
                record.request_hash, request_hash, record.status_code, record.response
            )
            return replayed, None

    # A retry above still gets its first answer; a new booking waits out maintenance.
    await operations_service.ensure_bookable(ctx.db.read, hospital_id=actor.hospital_id)
    cache_key = (body.session_id, pools_for_channel(actor.channel), body.slot_id)
    cached = ctx.sold_out.lookup(cache_key)
    if cached is not None:
        # "Sold out" is a fact about the session, true whoever asks, so it is answered
        # before the patient is looked up; a patient id is checked when a place exists.
        return Response(
            sold_out_body(cached, locale, path),
            status_code=409,
            media_type=PROBLEM_JSON,
        ), demand.SOLD_OUT

    if key is not None:
        await ctx.known_keys.add(scope, key)

    def render(booked: service.Booked) -> dict[str, Any]:
        return views.booked_answer(booked, voucher_signer=ctx.voucher_signer, locale=locale)

    remember = (
        service.IdempotentRequest(scope, key, request_hash, render) if key is not None else None
    )

    async def work(session: AsyncSession) -> str:
        booked = await service.book(
            session,
            actor=actor,
            patient_id=body.patient_id,
            session_id=body.session_id,
            slot_id=body.slot_id,
            now=ctx.clock.now(),
            caches=ctx.caches,
            idempotency=remember,
        )
        return booked.answer_text or store.json_text(render(booked))

    now = ctx.clock.now()

    async def reminders(visit_date: date, slot_start: time) -> list[datetime]:
        times = notification_service.cached_reminder_times(
            hospital_id=actor.hospital_id, visit_date=visit_date, slot_start=slot_start, now=now
        )
        if times is not None:
            return times
        async with ctx.db.read() as session:
            return await notification_service.reminder_times_for(
                session,
                hospital_id=actor.hospital_id,
                visit_date=visit_date,
                slot_start=slot_start,
                now=now,
            )

    async def on_lane(db: Driver) -> str:
        booked = await service.book_on_lane(
            db,
            actor=actor,
            patient_id=body.patient_id,
            info=info,
            policy=policy,
            slot_id=body.slot_id,
            now=now,
            reminders=reminders,
            idempotency=remember,
        )
        return booked.answer_text or store.json_text(render(booked))

    def sold_out_answer() -> Response | None:
        remembered = ctx.sold_out.lookup(cache_key)
        if remembered is None:
            return None
        return Response(
            sold_out_body(remembered, locale, path), status_code=409, media_type=PROBLEM_JSON
        )

    # The last places of a session: one request at a time finds out on the full path that
    # none is left (and remembers it); the others that arrive meanwhile wait for that
    # answer instead of all queueing for the database with the same question.
    pending = ctx.last_places.get(cache_key)
    if pending is not None:
        await asyncio.shield(pending)
        answer_from_memory = sold_out_answer()
        if answer_from_memory is not None:
            return answer_from_memory, demand.SOLD_OUT
    # One booking transaction per session at a time in this process (kit/turns.py): the
    # others wait here, without a database connection, and are answered from memory once
    # the session is known to be full.
    async with ctx.booking_turns.turn(body.session_id):
        answer_from_memory = sold_out_answer()
        if answer_from_memory is not None:
            return answer_from_memory, demand.SOLD_OUT
        owned: asyncio.Future[None] | None = None
        try:
            try:
                info, policy = await service.cached_session_facts(
                    ctx.db.read,
                    hospital_id=actor.hospital_id,
                    session_id=body.session_id,
                    caches=ctx.caches,
                )
                try:
                    # The release peak's path: no ORM session, the facts already in hand. Only a
                    # request with no free place needs the full path (overdue holds, the reason).
                    answer = (
                        await ctx.booking_group.run(on_lane, order=body.patient_id)
                        if ctx.booking_group is not None
                        else await ctx.db.transact_driver(on_lane)
                    )
                except service.NeedsTransaction:
                    pending = ctx.last_places.get(cache_key)
                    if pending is None:
                        owned = asyncio.get_running_loop().create_future()
                        ctx.last_places[cache_key] = owned
                    else:
                        await asyncio.shield(pending)
                        answer_from_memory = sold_out_answer()
                        if answer_from_memory is not None:
                            return answer_from_memory, demand.SOLD_OUT
                    answer = await ctx.db.transact(work)
            except YuyueError as refusal:
                if key is not None:
                    # A twin of this request may have booked while we waited for the patient's
                    # lock; we were then refused (already booked), and its answer is ours.
                    async with ctx.db.read() as session:
                        record = await service.find_idempotent(session, scope=scope, key=key)
                    if record is not None:
                        replayed = _replay(
                            record.request_hash, request_hash, record.status_code, record.response
                        )
                        return replayed, None
                if isinstance(refusal, rules.SoldOut):

                    async def compute() -> list[dict[str, Any]]:
                        async with ctx.db.read() as session:
                            return await service.alternatives(
                                session,
                                actor=actor,
                                session_id=body.session_id,
                                slot_id=body.slot_id,
                                now=ctx.clock.now(),
                                caches=ctx.caches,
                            )

                    refusal.alternatives = await ctx.sold_out.remember(cache_key, compute)
                else:
                    ctx.sold_out.release(cache_key)
                raise
            except BaseException:
                ctx.sold_out.release(cache_key)
                raise
        finally:
            if owned is not None:
                ctx.last_places.pop(cache_key, None)
                owned.set_result(None)
    ctx.sold_out.forget(cache_key)
    ctx.places_taken(actor.hospital_id, body.session_id)
    request_delivery(ctx)
    BOOKINGS.labels(actor.channel.value).inc()
    return Response(answer.encode(), status_code=201, media_type="application/json"), demand.BOOKED


def sold_out_body(entry: SoldOutEntry, locale: str, path: str) -> bytes:
    """The finished sold-out problem document, rendered once per entry and language."""
    body = entry.rendered.get(locale)
    if body is None:
        problem = problem_body(rules.SoldOut(alternatives=entry.alternatives), locale, path)
        body = json.dumps(problem, ensure_ascii=False, separators=(",", ":")).encode()
        entry.rendered[locale] = body
    return body


def _replay(
    stored_hash: str, request_hash: str, status_code: int, body: dict[str, Any]
) -> JSONResponse:
    if stored_hash != request_hash:
        raise IdempotencyKeyReused()
    return JSONResponse(body, status_code=status_code, headers={"Idempotent-Replayed": "true"})


async def _view(
    ctx: AppContext, session: AsyncSession, appointment: Any, locale: str
) -> AppointmentRead:
    return await views.appointment_view(
        session, appointment=appointment, voucher_signer=ctx.voucher_signer, locale=locale
    )


@router.get("/appointments/{appointment_id}", response_model=AppointmentRead, responses=_REFUSALS)
async def get_appointment(
    appointment_id: uuid.UUID, ctx: CtxDep, actor: ActorDep, locale: LocaleDep
) -> AppointmentRead:
    async with ctx.db.read() as session:
        appointment = await service.get_appointment(
            session, hospital_id=actor.hospital_id, appointment_id=appointment_id
        )
        return await _view(ctx, session, appointment, locale)


@router.post(
    "/appointments/{appointment_id}/cancel",
    response_model=AppointmentRead,
    responses=_REFUSALS,
    summary="Cancel (within the deadline) and return the place to its pool",
)
async def cancel_appointment(
    appointment_id: uuid.UUID,
    ctx: CtxDep,
    actor: ActorDep,
    locale: LocaleDep,
    body: CancelRequest | None = None,
) -> AppointmentRead:
    async def work(session: AsyncSession) -> AppointmentRead:
        appointment = await service.cancel(
            session,
            actor=actor,
            appointment_id=appointment_id,
            note=body.cancel_note if body else None,
            now=ctx.clock.now(),
            caches=ctx.caches,
        )
        return await _view(ctx, session, appointment, locale)

    result = await ctx.db.transact(work)
    await ctx.places_returned(actor.hospital_id, result.session.id)
    request_delivery(ctx)
    if result.refund is not None:
        request_refunds(ctx)
    return result


@router.post(
    "/appointments/{appointment_id}/reschedule",
    status_code=201,
    response_model=AppointmentRead,
    responses=_REFUSALS,
    summary="Move to another session or slot; the old place is kept if the new one is gone",
)
async def reschedule_appointment(
    appointment_id: uuid.UUID, body: Reschedule, ctx: CtxDep, actor: ActorDep, locale: LocaleDep
) -> AppointmentRead:
    await operations_service.ensure_bookable(ctx.db.read, hospital_id=actor.hospital_id)

    async def work(session: AsyncSession) -> tuple[AppointmentRead, uuid.UUID]:
        old = await service.get_appointment(
            session, hospital_id=actor.hospital_id, appointment_id=appointment_id
        )
        old_session = old.session_id
        booked = await service.reschedule(
            session,
            actor=actor,
            appointment_id=appointment_id,
            session_id=body.session_id,
            slot_id=body.slot_id,
            now=ctx.clock.now(),
            caches=ctx.caches,
        )
        view = views.render_booked(booked, voucher_signer=ctx.voucher_signer, locale=locale)
        return view, old_session

    result, old_session = await ctx.db.transact(work)
    await ctx.places_returned(actor.hospital_id, old_session)
    ctx.places_taken(actor.hospital_id, result.session.id)
    request_delivery(ctx)
    if result.payment_carried_over is False:
        request_refunds(ctx)
    return result


@router.post(
    "/appointments/{appointment_id}/confirm-payment",
    response_model=AppointmentRead,
    responses=_REFUSALS,
    summary="Confirm a paid hold (finance staff; payment providers arrive later)",
)
async def confirm_payment(
    appointment_id: uuid.UUID,
    body: PaymentConfirmation,
    ctx: CtxDep,
    actor: ActorDep,
    locale: LocaleDep,
) -> AppointmentRead:
    require_staff(actor, Role.FINANCE, Role.REGISTRAR)

    async def work(session: AsyncSession) -> AppointmentRead:
        appointment = await service.confirm_payment(
            session,
            actor=actor,
            appointment_id=appointment_id,
            paid_fen=body.paid_fen,
            payment_reference=body.payment_reference,
            now=ctx.clock.now(),
        )
        return await _view(ctx, session, appointment, locale)

    result = await ctx.db.transact(work)
    request_delivery(ctx)
    return result


@router.get(
    "/patients/{patient_id}/appointments",
    response_model=list[AppointmentRead],
    responses=_REFUSALS,
    tags=["patients"],
)
async def list_patient_appointments(
    patient_id: uuid.UUID,
    ctx: CtxDep,
    actor: ActorDep,
    locale: LocaleDep,
    source: ReadSourceDep,
) -> list[AppointmentRead]:
    """Who may read the patient decides (`patients.rules.may_read`); a staff read is logged."""

    async def listed(session: AsyncSession) -> list[AppointmentRead]:
        if reads_logged(actor):
            await patient_service.read_patient(
                session,
                actor=actor,
                patient_id=patient_id,
                read="visits",
                source=source,
                now=ctx.clock.now(),
            )
        else:
            await patient_service.readable_patient(session, actor=actor, patient_id=patient_id)
        rows = await views.patient_appointments(
            session, hospital_id=actor.hospital_id, patient_id=patient_id
        )
        return [await _view(ctx, session, row, locale) for row in rows]

    if reads_logged(actor):
        return await ctx.db.transact(listed)
    async with ctx.db.read() as session:
        return await listed(session)


@router.post(
    "/blacklist", status_code=201, tags=["patients"], summary="Suspend self-service booking (admin)"
)
async def create_blacklist_entry(
    body: BlacklistCreate, ctx: CtxDep, actor: ActorDep
) -> dict[str, Any]:
    async def work(session: AsyncSession) -> dict[str, Any]:
        now = ctx.clock.now()
        entry = await service.add_blacklist_entry(
            session,
            actor=actor,
            patient_id=body.patient_id,
            reason=body.reason,
            ends_at=body.ends_at,
            now=now,
        )
        return {
            "id": str(entry.id),
            "patient_id": str(entry.patient_id),
            "ends_at": entry.ends_at.isoformat(),
        }

    return await ctx.db.transact(work)


# --- approvals (审批) -------------------------------------------------------------------------


def _request_read(request: Any) -> ChangeRequestRead:
    return ChangeRequestRead(
        id=request.id,
        appointment_id=request.appointment_id,
        kind=rules.ChangeKind(request.kind),
        state=rules.RequestState(request.state),
        reason=request.reason,
        details=request.details,
        requested_by=request.requested_by,
        requested_at=request.requested_at,
        decided_by=request.decided_by,
        decided_at=request.decided_at,
        decision_note=request.decision_note,
        outcome=request.outcome,
    )


@router.post(
    "/appointments/{appointment_id}/change-requests",
    status_code=201,
    response_model=ChangeRequestRead,
    tags=["approvals"],
    summary="Ask a supervisor to change a confirmed booking (cancel late, move, change patient)",
)
async def request_change(
    appointment_id: uuid.UUID, body: ChangeRequestCreate, ctx: CtxDep, actor: ActorDep
) -> ChangeRequestRead:
    async def work(session: AsyncSession) -> ChangeRequestRead:
        request = await approvals.request_change(
            session,
            actor=actor,
            appointment_id=appointment_id,
            kind=body.kind,
            reason=body.reason,
            now=ctx.clock.now(),
            session_id=body.session_id,
            slot_id=body.slot_id,
            patient_id=body.patient_id,
        )
        return _request_read(request)

    return await ctx.db.transact(work)


@router.get(
    "/change-requests",
    response_model=list[ChangeRequestRead],
    tags=["approvals"],
    summary="Change requests, pending first (supervisors, and the staff who ask)",
)
async def list_change_requests(
    ctx: CtxDep, actor: ActorDep, state: rules.RequestState | None = None
) -> list[ChangeRequestRead]:
    async with ctx.db.read() as session:
        found = await approvals.requests(session, actor=actor, state=state)
        rows = {
            r.id: r
            for r in (
                await session.scalars(
                    select(ChangeRequest).where(ChangeRequest.id.in_([v.id for v in found]))
                )
            ).all()
        }
    return [_request_read(rows[v.id]) for v in found]


async def _decide(
    ctx: AppContext, actor: Actor, request_id: uuid.UUID, *, approve: bool, note: str | None
) -> ChangeRequestRead:
    touched: list[uuid.UUID] = []

    async def work(session: AsyncSession) -> ChangeRequestRead:
        request = await approvals.decide(
            session,
            actor=actor,
            request_id=request_id,
            approve=approve,
            note=note,
            now=ctx.clock.now(),
        )
        touched[:] = await approvals.sessions_touched(session, request)
        return _request_read(request)

    result = await ctx.db.transact(work)
    if approve:
        # A cancellation or a move gave a place back and may owe a refund; messages wait.
        await ctx.places_returned(actor.hospital_id, *touched)
        request_refunds(ctx)
        request_delivery(ctx)
    return result


@router.post(
    "/change-requests/{request_id}/approve",
    response_model=ChangeRequestRead,
    tags=["approvals"],
    summary="Approve: the change is made now (supervisors; not one's own request)",
)
async def approve_change_request(
    request_id: uuid.UUID, body: ChangeRequestDecision, ctx: CtxDep, actor: ActorDep
) -> ChangeRequestRead:
    return await _decide(ctx, actor, request_id, approve=True, note=body.note)


@router.post(
    "/change-requests/{request_id}/reject",
    response_model=ChangeRequestRead,
    tags=["approvals"],
    summary="Reject with a note (supervisors)",
)
async def reject_change_request(
    request_id: uuid.UUID, body: ChangeRequestDecision, ctx: CtxDep, actor: ActorDep
) -> ChangeRequestRead:
    return await _decide(ctx, actor, request_id, approve=False, note=body.note)


@router.post(
    "/change-requests/{request_id}/withdraw",
    response_model=ChangeRequestRead,
    tags=["approvals"],
    summary="Withdraw a pending request (whoever asked)",
)
async def withdraw_change_request(
    request_id: uuid.UUID, ctx: CtxDep, actor: ActorDep
) -> ChangeRequestRead:
    async def work(session: AsyncSession) -> ChangeRequestRead:
        request = await approvals.withdraw(
            session, actor=actor, request_id=request_id, now=ctx.clock.now()
        )
        return _request_read(request)

    return await ctx.db.transact(work)
