"""The stop-clinic wizard (停诊/替诊) for the outpatient office: choose a day's session, see
its bookings, choose a colleague of the same level to take them over (or none), see exactly
what will happen to each booking, then stop it. The plan shown is the stop itself run in a
transaction that is rolled back, so what is confirmed is what was shown, unless bookings
changed in between (the result page then says what was done)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import service as booking
from yuyue.booking.facts import session_info
from yuyue.frontdesk.pages import StaffDep
from yuyue.frontdesk.web import FloorVisitor, form_of, redirect, render
from yuyue.jobs import request_delivery, request_refunds
from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.patients import service as patients
from yuyue.scheduling import service as scheduling
from yuyue.scheduling.enums import SessionStatus
from yuyue.staff.enums import Role
from yuyue.web.pagekit import date_or_none, uuid_or_none

router = APIRouter(include_in_schema=False)
PATH = "/desk/stop-clinic"
REASON_MAX = 500

i18n.register(
    {
        "stop.title": ("停诊与替诊", "Stop a clinic"),
        "stop.link": ("停诊 / 替诊", "Stop a clinic / substitute a doctor"),
        "stop.day": ("日期", "Day"),
        "stop.department": ("科室", "Department"),
        "stop.all_departments": ("全部科室", "All departments"),
        "stop.show": ("查看出诊", "Show sessions"),
        "stop.none": ("这一天没有出诊。", "No clinic sessions on that day."),
        "stop.booked": ("已约 {n}/{capacity}", "{n} of {capacity} booked"),
        "stop.choose": ("停诊…", "Stop…"),
        "stop.status.open": ("出诊", "Open"),
        "stop.status.stopped": ("已停诊", "Stopped"),
        "stop.status.closed": ("已结束", "Closed"),
        "stop.extra": ("加诊", "Extra clinic"),
        "stop.bookings": ("该出诊的预约（{n}）", "Bookings of this session ({n})"),
        "stop.no_bookings": ("没有有效预约。", "No active bookings."),
        "stop.number": ("序号", "No."),
        "stop.time": ("时间", "Time"),
        "stop.patient": ("患者", "Patient"),
        "stop.state": ("状态", "State"),
        "stop.paid": ("已缴 {amount} 元", "paid CNY {amount}"),
        "stop.outcome": ("停诊后", "After the stop"),
        "stop.substitute": ("替诊医生", "Who takes over"),
        "stop.cancel_all": (
            "不安排替诊：取消全部预约（已缴费的原路退款）",
            "No substitute: cancel every booking (paid fees refunded)",
        ),
        "stop.candidate": (
            "{doctor}（{start}–{end}，余 {free} 个号）",
            "{doctor} ({start}–{end}, {free} places free)",
        ),
        "stop.department_clinic": ("普通门诊", "Department clinic"),
        "stop.no_candidates": (
            "当天本科室没有同级别、同费用且仍有号的出诊可替诊。",
            "No session of the same department, level and fee that day can take over.",
        ),
        "stop.reason": ("停诊原因（会告知患者）", "Reason (the patients are told)"),
        "stop.preview": ("预览结果", "Preview"),
        "stop.plan": ("预览：停诊将如下处理", "Preview: what the stop will do"),
        "stop.plan_counts": (
            "{moved} 个预约改由替诊医生接诊，{cancelled} 个取消。",
            "{moved} bookings move to the substitute, {cancelled} are cancelled.",
        ),
        "stop.moves_to": ("改为 {number} 号 {time}", "Moves to no. {number} at {time}"),
        "stop.kept": ("号序和时间不变", "number and time kept"),
        "stop.cancelled": ("取消并通知", "Cancelled, patient told"),
        "stop.confirm": ("确认停诊", "Stop the clinic"),
        "stop.confirm_note": (
            "确认后立即执行，每位患者会收到一条通知。",
            "This takes effect at once; every patient gets one message.",
        ),
        "stop.done": (
            "已停诊：{moved} 个预约由替诊医生接诊，{cancelled} 个已取消，患者均已通知。",
            "The clinic is stopped: {moved} bookings moved to the substitute, {cancelled} "
            "cancelled, every patient told.",
        ),
        "stop.not_open": ("该出诊不是开放状态，不能停诊。", "This session is not open."),
        "stop.bad_reason": (
            "请填写停诊原因（2–500 字）。",
            "Enter the reason (2 to 500 characters).",
        ),
        "stop.back": ("返回出诊列表", "Back to the sessions"),
    }
)


@dataclass(frozen=True)
class Row:
    """One booking as the wizard shows it, with what the plan does to it."""

    entry: booking.RosterEntry
    name: str
    moved: booking.Moved | None
    cancelled: bool


@router.get(PATH, response_class=HTMLResponse)
async def stop_clinic_list(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, Role.SCHEDULER)
    day = date_or_none(request.query_params.get("day")) or who.today
    department_id = uuid_or_none(request.query_params.get("department"))
    async with who.ctx.db.read() as session:
        sessions = await booking.day_sessions(
            session, actor=actor, day=day, department_id=department_id
        )
        departments = await scheduling.active_departments(session, hospital_id=who.hospital.id)
    return render(
        request,
        who,
        "desk_stop_clinic.html",
        chosen_day=day,
        department_id=department_id,
        departments=departments,
        sessions=sessions,
    )


async def _wizard(
    request: Request,
    who: FloorVisitor,
    session_id: uuid.UUID,
    *,
    reason: str = "",
    substitute_id: uuid.UUID | None = None,
    plan: booking.StopOutcome | None = None,
    error: str | None = None,
    status: int = 200,
    done: str | None = None,
) -> Response:
    actor = who.require(request, Role.SCHEDULER)
    async with who.ctx.db.read() as session:
        info = await session_info(session, hospital_id=who.hospital.id, session_id=session_id)
        roster = await booking.session_roster(session, actor=actor, session_id=session_id)
        names = await patients.masked_names(
            session,
            hospital_id=who.hospital.id,
            patient_ids=[e.patient_id for e in roster],
        )
        candidates = (
            await booking.substitutes(session, actor=actor, session_id=session_id)
            if info.status == SessionStatus.OPEN
            else []
        )
    moved = {m.from_appointment_id: m for m in plan.moved} if plan else {}
    cancelled = {a.id for a in plan.cancelled} if plan else set()
    rows = [
        Row(
            entry=e,
            name=names.get(e.patient_id, ""),
            moved=moved.get(e.appointment_id),
            cancelled=e.appointment_id in cancelled,
        )
        for e in roster
    ]
    return render(
        request,
        who,
        "desk_stop_clinic_session.html",
        status=status,
        error=error,
        info=info,
        rows=rows,
        candidates=candidates,
        reason=reason,
        substitute_id=substitute_id,
        plan=plan,
        done=done,
        reason_max=REASON_MAX,
        hhmm=_hhmm,
    )


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


@router.get(PATH + "/{session_id}", response_class=HTMLResponse)
async def stop_clinic_wizard(request: Request, who: StaffDep, session_id: uuid.UUID) -> Response:
    moved, cancelled = request.query_params.get("moved"), request.query_params.get("cancelled")
    done = (
        who.t("stop.done", moved=moved, cancelled=cancelled)
        if moved and cancelled and moved.isdigit() and cancelled.isdigit()
        else None
    )
    return await _wizard(request, who, session_id, done=done)


class _BadForm(Exception):
    status = 422


def _choice(form: dict[str, str], who: FloorVisitor) -> tuple[str, uuid.UUID | None]:
    reason = " ".join(form.get("reason", "").split())
    if not 2 <= len(reason) <= REASON_MAX:
        raise _BadForm(who.t("stop.bad_reason"))
    substitute = form.get("substitute", "")
    if substitute in ("", "none"):
        return reason, None
    chosen = uuid_or_none(substitute)
    if chosen is None:
        raise _BadForm(who.t("stop.bad_reason"))
    return reason, chosen


class _Preview(Exception):
    def __init__(self, outcome: booking.StopOutcome) -> None:
        self.outcome = outcome


@router.post(PATH + "/{session_id}/preview", response_class=HTMLResponse)
async def stop_clinic_preview(request: Request, who: StaffDep, session_id: uuid.UUID) -> Response:
    actor = who.require(request, Role.SCHEDULER)
    form = await form_of(request, who)
    try:
        reason, substitute_id = _choice(form, who)
    except _BadForm as bad:
        return await _wizard(request, who, session_id, error=str(bad), status=bad.status)

    async def work(session: AsyncSession) -> None:
        outcome = await booking.stop_clinic(
            session,
            actor=actor,
            session_id=session_id,
            reason=reason,
            now=who.ctx.clock.now(),
            substitute_session_id=substitute_id,
        )
        # Always rolled back: the plan is what the stop would do now.
        raise _Preview(outcome)

    try:
        await who.ctx.db.transact(work)
    except _Preview as planned:
        return await _wizard(
            request,
            who,
            session_id,
            reason=reason,
            substitute_id=substitute_id,
            plan=planned.outcome,
        )
    except YuyueError as error:
        return await _wizard(
            request,
            who,
            session_id,
            reason=reason,
            substitute_id=substitute_id,
            error=error.detail(who.locale),
            status=error.status,
        )
    raise AssertionError("a preview always rolls back")


@router.post(PATH + "/{session_id}", response_class=HTMLResponse)
async def stop_clinic_confirm(request: Request, who: StaffDep, session_id: uuid.UUID) -> Response:
    actor = who.require(request, Role.SCHEDULER)
    form = await form_of(request, who)
    try:
        reason, substitute_id = _choice(form, who)
    except _BadForm as bad:
        return await _wizard(request, who, session_id, error=str(bad), status=bad.status)

    async def work(session: AsyncSession) -> booking.StopOutcome:
        return await booking.stop_clinic(
            session,
            actor=actor,
            session_id=session_id,
            reason=reason,
            now=who.ctx.clock.now(),
            substitute_session_id=substitute_id,
        )

    try:
        outcome = await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _wizard(
            request,
            who,
            session_id,
            reason=reason,
            substitute_id=substitute_id,
            error=error.detail(who.locale),
            status=error.status,
        )
    who.ctx.session_infos.forget(session_id)
    await who.ctx.places_returned(who.hospital.id, session_id)
    if substitute_id is not None:
        await who.ctx.places_returned(who.hospital.id, substitute_id)
    request_delivery(who.ctx)
    if outcome.cancelled:
        request_refunds(who.ctx)
    return redirect(
        f"{PATH}/{session_id}?moved={len(outcome.moved)}&cancelled={len(outcome.cancelled)}"
    )
