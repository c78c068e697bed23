"""The visit-day pages. Thin: each route finds who is at the screen, calls the visits
services inside one transaction, publishes the queue event after the commit and renders;
a refusal becomes a sentence on the page and changes nothing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

import segno
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import listing
from yuyue.booking.models import Appointment
from yuyue.frontdesk import texts as _texts  # noqa: F401  (registers the page sentences)
from yuyue.frontdesk.web import (
    KIOSK_COOKIE,
    FloorVisitor,
    KioskSetupRequired,
    StaffSignInRequired,
    form_of,
    fragment,
    kiosk_actor,
    kiosk_visitor,
    redirect,
    render,
    staff_sign_in_redirect,
    staff_visitor,
)
from yuyue.jobs import payment_notify_urls
from yuyue.kit import i18n
from yuyue.kit.crypto import InvalidToken, TokenSigner
from yuyue.kit.errors import NotFound, YuyueError
from yuyue.kit.live import LiveEvent
from yuyue.operations.announcements import rules as announcement_rules
from yuyue.operations.announcements import service as announcements
from yuyue.patients import rules as patient_rules
from yuyue.patients import service as patient_service
from yuyue.payments import kiosk as kiosk_payments
from yuyue.scheduling.enums import Period, SessionStatus
from yuyue.scheduling.models import ClinicSession, Department, Doctor
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor
from yuyue.visits import events
from yuyue.visits import rules as visit_rules
from yuyue.visits import service as visits
from yuyue.visits.events import QueueEvent, QueueEventKind
from yuyue.visits.live import board_channel, queue_channel
from yuyue.visits.models import Visit
from yuyue.visits.states import IN_LINE, PriorityClass
from yuyue.web.deps import read_source
from yuyue.web.pagekit import is_htmx, uuid_or_none
from yuyue.web.sse import event_stream

router = APIRouter(include_in_schema=False)
StaffDep = Annotated[FloorVisitor, Depends(staff_visitor)]
KioskDep = Annotated[FloorVisitor, Depends(kiosk_visitor)]
T = TypeVar("T")

DESK_ROLES = (Role.NURSE, Role.REGISTRAR)
TRIAGE_ROLES = (Role.NURSE,)
VIEW_ROLES = (Role.NURSE, Role.DOCTOR, Role.REGISTRAR)
_CODE = re.compile(r"\d{8}")
_LAST4 = re.compile(r"\d{4}")


async def _commit(who: FloorVisitor, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    return await who.ctx.db.transact(work)


async def _announce(who: FloorVisitor, event: QueueEvent | None) -> None:
    """After the commit: screens, queues and phones re-read what they show."""
    if event is not None:
        await events.publish(who.ctx, event)


# --- notices (公告) --------------------------------------------------------------------------

# An open kiosk or screen reads its notices again at least this often, so one whose time to
# be shown begins (or ends) appears without a post or a queue event to announce it.
NOTICE_REFRESH_SECONDS = 60.0


async def _notices(
    who: FloorVisitor, place: announcement_rules.Place, *, fresh: bool = False
) -> list[announcement_rules.Posted]:
    """The notices in force that cover `place`. A live update reads them `fresh`: it was
    prompted by a post or withdrawal that another process's memory may not know yet."""
    now = who.ctx.clock.now()
    if fresh:
        async with who.ctx.db.read() as session:
            found = await announcements.in_force(session, hospital_id=who.hospital.id, now=now)
    else:
        found = await announcements.cached_in_force(
            who.ctx.db.read, hospital_id=who.hospital.id, now=now
        )
    return announcement_rules.shown_on(found, place, now=now)


# --- kiosk ----------------------------------------------------------------------------------


async def _kiosk_page(
    request: Request, who: FloorVisitor, *, error: str | None = None, status: int = 200
) -> Response:
    notices = await _notices(who, announcement_rules.KIOSK)
    return render(request, who, "kiosk.html", error=error, status=status, notices=notices)


@router.get("/kiosk", response_class=HTMLResponse)
async def kiosk(request: Request, who: KioskDep) -> Response:
    return await _kiosk_page(request, who)


@router.get("/kiosk/notices/live")
async def kiosk_notices_live(request: Request, who: KioskDep) -> Response:
    """The kiosk's notices, live: a notice posted or withdrawn shows without a reload."""

    async def snapshot() -> dict[str, Any]:
        notices = await _notices(who, announcement_rules.KIOSK, fresh=True)
        return {"html": fragment(request, who, "_notices.html", notices=notices)}

    return event_stream(
        request,
        bus=who.ctx.live,
        channels=(announcement_rules.live_channel(who.hospital.id),),
        snapshot=snapshot,
        refresh=NOTICE_REFRESH_SECONDS,
    )


async def _kiosk_checked_in(who: FloorVisitor, checked: visits.CheckIn) -> Response:
    suffix = "?already=1" if checked.already else ""
    return redirect(f"/kiosk/tickets/{checked.ticket.visit_id}{suffix}")


@router.post("/kiosk/scan", response_class=HTMLResponse)
async def kiosk_scan(request: Request, who: KioskDep) -> Response:
    """A hand-held scanner types the voucher's token and Enter into the focused field."""
    form = await form_of(request, who)
    token = form.get("token", "").strip()[:2000]
    if not token:
        return await _kiosk_page(request, who, error=who.t("kiosk.nothing_scanned"), status=422)
    actor = _actor(who)

    async def work(session: AsyncSession) -> tuple[visits.CheckIn, QueueEvent | None]:
        checked = await visits.check_in_by_token(
            session, actor=actor, token=token, signer=who.ctx.voucher_signer, now=who.now
        )
        return checked, _check_in_event(checked, who)

    try:
        checked, event = await _commit(who, work)
    except visit_rules.AppointmentUnpaid:
        # Held and not paid yet: the kiosk takes the payment (a voucher that verified).
        payload = who.ctx.voucher_signer.verify(token, now=who.now)
        return _pay_redirect(
            who, visit_rules.voucher_appointment_id(payload, hospital_id=who.hospital.id)
        )
    except YuyueError as error:
        return await _kiosk_page(request, who, error=error.detail(who.locale), status=error.status)
    await _announce(who, event)
    return await _kiosk_checked_in(who, checked)


@router.post("/kiosk/code", response_class=HTMLResponse)
async def kiosk_code(request: Request, who: KioskDep) -> Response:
    """The 8-digit short code and the last four digits of the patient's phone."""
    form = await form_of(request, who)
    code = re.sub(r"\s", "", form.get("code", ""))[:20]
    last4 = re.sub(r"\s", "", form.get("last4", ""))[:10]
    if not _CODE.fullmatch(code) or not _LAST4.fullmatch(last4):
        return await _kiosk_page(request, who, error=who.t("kiosk.code_format"), status=422)
    actor = _actor(who)
    client = f"kiosk:{actor.id}"

    async def work(session: AsyncSession) -> tuple[visits.CheckIn, QueueEvent | None]:
        checked = await visits.check_in_by_code(
            session, actor=actor, code=code, phone_last4=last4, client=client, now=who.now
        )
        return checked, _check_in_event(checked, who)

    try:
        checked, event = await _commit(who, work)
    except visits.CodeNotMatched as error:
        # Counted for the rate limit, in a transaction of its own (the check-in rolled back).
        async def count(session: AsyncSession) -> None:
            await visits.record_code_failure(
                session, hospital_id=who.hospital.id, client=client, code=code, now=who.now
            )

        await _commit(who, count)
        return await _kiosk_page(request, who, error=error.detail(who.locale), status=error.status)
    except visit_rules.AppointmentUnpaid:
        # The code and the phone digits matched a held appointment: the kiosk takes the fee.
        async with who.ctx.db.read() as session:
            unpaid = await session.scalar(
                select(Appointment.id).where(
                    Appointment.hospital_id == who.hospital.id, Appointment.voucher_code == code
                )
            )
        assert unpaid is not None
        return _pay_redirect(who, unpaid)
    except YuyueError as error:
        return await _kiosk_page(request, who, error=error.detail(who.locale), status=error.status)
    await _announce(who, event)
    return await _kiosk_checked_in(who, checked)


# --- paying at the kiosk ---------------------------------------------------------------------

# How long a kiosk's payment page stays valid (its link names the appointment): longer than
# any hold, shorter than a day.
PAY_LINK_MINUTES = 30
PAY_REFRESH_SECONDS = 3


def _pay_signer(who: FloorVisitor) -> TokenSigner:
    return who.ctx.keys.signer("kiosk-pay")


def _pay_redirect(who: FloorVisitor, appointment_id: uuid.UUID) -> Response:
    token = _pay_signer(who).sign(
        {"aid": str(appointment_id), "hid": str(who.hospital.id)},
        expires_at=who.now + timedelta(minutes=PAY_LINK_MINUTES),
    )
    return redirect(f"/kiosk/pay?t={token}")


@router.get("/kiosk/pay", response_class=HTMLResponse)
async def kiosk_pay(request: Request, who: KioskDep, t: str = "") -> Response:
    """A held appointment's WeChat Pay QR code; the page refreshes itself (no script) and
    asks the provider each time until the payment is in, then says so."""
    try:
        payload = _pay_signer(who).verify(t[:2000], now=who.now)
        appointment_id = visit_rules.voucher_appointment_id(payload, hospital_id=who.hospital.id)
    except (InvalidToken, visit_rules.VoucherInvalid):
        return await _kiosk_page(request, who, error=who.t("kiosk.pay_link_invalid"), status=422)
    ctx = who.ctx
    try:
        paying = await kiosk_payments.kiosk_payment(
            db=ctx.db,
            gateways=ctx.gateways,
            actor=_actor(who),
            appointment_id=appointment_id,
            notify_url=payment_notify_urls(ctx)[kiosk_payments.KIOSK_PROVIDER],
            clock=ctx.clock,
        )
    except YuyueError as error:
        return await _kiosk_page(request, who, error=error.detail(who.locale), status=error.status)
    qr_svg = (
        Markup(
            segno.make(paying.qr_content, error="m").svg_inline(
                scale=6, border=4, title=who.t("kiosk.pay_qr")
            )
        )
        if paying.qr_content
        else None
    )
    return render(
        request,
        who,
        "kiosk_pay.html",
        paying=paying,
        qr_svg=qr_svg,
        amount=f"{paying.fee_fen // 100}.{paying.fee_fen % 100:02d}",
        refresh=PAY_REFRESH_SECONDS,
    )


def _check_in_event(checked: visits.CheckIn, who: FloorVisitor) -> QueueEvent | None:
    if checked.already:
        return None
    return visits.event_of(checked.visit, QueueEventKind.CHECKED_IN, at=who.now)


def _actor(who: FloorVisitor) -> Actor:
    assert who.actor is not None
    return who.actor


@router.get("/kiosk/tickets/{visit_id}", response_class=HTMLResponse)
async def kiosk_ticket(request: Request, who: KioskDep, visit_id: uuid.UUID) -> Response:
    async with who.ctx.db.read() as session:
        ticket = await visits.visit_ticket(session, actor=_actor(who), visit_id=visit_id)
    return render(
        request,
        who,
        "kiosk_ticket.html",
        ticket=ticket,
        already=request.query_params.get("already") == "1",
    )


# --- triage desk ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeskFilter:
    """The desk's choice of department and period (上午/下午/晚上), kept in the query
    string so a reload, a bookmark and the page after a check-in show the same list."""

    department_id: uuid.UUID | None = None
    period: Period | None = None

    @classmethod
    def of(cls, values: Mapping[str, str]) -> DeskFilter:
        period = values.get("period", "")
        return cls(
            department_id=uuid_or_none(values.get("department") or None),
            period=Period(period) if period in set(Period) else None,
        )

    @property
    def query(self) -> str:
        """`department=…&period=…` for links and redirects ("" when nothing is chosen)."""
        parts = {"department": self.department_id, "period": self.period}
        return urlencode({k: str(v) for k, v in parts.items() if v is not None})


async def _today_sessions(
    session: AsyncSession, who: FloorVisitor, chosen: DeskFilter | None = None
) -> list[dict[str, Any]]:
    """Today's open clinic sessions, with how many are waiting in each, as a nurse reads the
    hall: by room, then doctor, then start."""
    chosen = chosen or DeskFilter()
    waiting = (
        select(Visit.session_id, func.count().label("n"))
        .where(Visit.status.in_([s.value for s in IN_LINE]), Visit.visit_date == who.today)
        .group_by(Visit.session_id)
        .subquery()
    )
    rows = await session.execute(
        select(ClinicSession, Department, Doctor, waiting.c.n)
        .join(Department, Department.id == ClinicSession.department_id)
        .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
        .outerjoin(waiting, waiting.c.session_id == ClinicSession.id)
        .where(
            ClinicSession.hospital_id == who.hospital.id,
            ClinicSession.date == who.today,
            ClinicSession.status == SessionStatus.OPEN,
            *(
                [ClinicSession.department_id == chosen.department_id]
                if chosen.department_id
                else []
            ),
            *([ClinicSession.period == chosen.period] if chosen.period else []),
        )
        .order_by(ClinicSession.room, Doctor.name, ClinicSession.start_time, Department.name)
    )
    return [
        {"clinic": clinic, "department": department, "doctor": doctor, "waiting": n or 0}
        for clinic, department, doctor, n in rows
    ]


async def _desk_page(
    request: Request,
    who: FloorVisitor,
    *,
    query: str = "",
    error: str | None = None,
    done_text: str | None = None,
    walk_in: Mapping[str, str] | None = None,
    status: int = 200,
    chosen: DeskFilter | None = None,
) -> Response:
    actor = who.require(request, *DESK_ROLES)
    chosen = chosen or DeskFilter()
    matches: list[visits.DeskMatch] | None = None
    if query:

        async def look_up(session: AsyncSession) -> list[visits.DeskMatch]:
            # Logged with the patients found, never the text typed.
            return await visits.find_for_desk(
                session,
                actor=actor,
                query=query[:200],
                cipher=who.ctx.cipher,
                signer=who.ctx.voucher_signer,
                now=who.now,
                source=read_source(request),
            )

        matches = await who.ctx.db.transact(look_up)
    async with who.ctx.db.read() as session:
        sessions = await _today_sessions(session, who, chosen)
        departments = await _today_departments(session, who)
    return render(
        request,
        who,
        "desk.html",
        status=status,
        query=query,
        matches=matches,
        sessions=sessions,
        error=error,
        done_text=done_text,
        walk_in=walk_in or {},
        id_types=list(patient_rules.IdType),
        priorities=list(PriorityClass),
        chosen=chosen,
        departments=departments,
        periods=list(Period),
    )


async def _today_departments(session: AsyncSession, who: FloorVisitor) -> list[Department]:
    """The departments with an open session today: the desk's department filter."""
    return list(
        (
            await session.scalars(
                select(Department)
                .where(
                    Department.id.in_(
                        select(ClinicSession.department_id).where(
                            ClinicSession.hospital_id == who.hospital.id,
                            ClinicSession.date == who.today,
                            ClinicSession.status == SessionStatus.OPEN,
                        )
                    )
                )
                .order_by(Department.sort_order, Department.name)
            )
        ).all()
    )


@router.get("/desk", response_class=HTMLResponse)
async def desk(request: Request, who: StaffDep) -> Response:
    done_text = None
    done = request.query_params.get("done")
    number = request.query_params.get("number", "")
    if done in ("checked_in", "already", "walk_in") and number.isdigit() and len(number) < 6:
        label = visit_rules.queue_label(int(number), walk_in=done == "walk_in", locale=who.locale)
        done_text = who.t(f"desk.{done}_ok", number=label)
    # Never a search from the address (`?q=`): an identity or phone number there would be
    # kept in access logs and the browser's history. The search form posts to /desk/find.
    return await _desk_page(
        request, who, done_text=done_text, chosen=DeskFilter.of(request.query_params)
    )


@router.post("/desk/find", response_class=HTMLResponse)
async def desk_find(request: Request, who: StaffDep) -> Response:
    """The desk's search: what was typed travels in the form's body (with its token) and
    the answer is the page itself, so the number is in no address."""
    who.require(request, *DESK_ROLES)
    form = await form_of(request, who)
    return await _desk_page(
        request, who, query=form.get("q", "").strip(), chosen=DeskFilter.of(form)
    )


@router.post("/desk/check-in", response_class=HTMLResponse)
async def desk_check_in(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *DESK_ROLES)
    form = await form_of(request, who)
    query = form.get("q", "")
    chosen = DeskFilter.of(form)
    appointment_id = uuid_or_none(form.get("appointment"))
    if appointment_id is None:
        raise NotFound(what="appointment")

    async def work(session: AsyncSession) -> tuple[visits.CheckIn, QueueEvent | None]:
        checked = await visits.check_in(
            session, actor=actor, appointment_id=appointment_id, now=who.now
        )
        return checked, _check_in_event(checked, who)

    try:
        checked, event = await _commit(who, work)
    except YuyueError as error:
        return await _desk_page(
            request,
            who,
            query=query,
            error=error.detail(who.locale),
            status=error.status,
            chosen=chosen,
        )
    await _announce(who, event)
    done = "already" if checked.already else "checked_in"
    kept = f"&{chosen.query}" if chosen.query else ""
    return redirect(f"/desk?done={done}&number={checked.ticket.queue_number}{kept}")


_WALK_IN_FIELDS = ("name", "id_type", "id_number", "phone", "session", "priority", "reason")


@router.post("/desk/walk-in", response_class=HTMLResponse)
async def desk_walk_in(request: Request, who: StaffDep) -> Response:
    """Registers a patient standing at the desk (found by their document, or added with the
    same checks as the patient pages) into today's on-site places and checks them in."""
    actor = who.require(request, *DESK_ROLES)
    form = await form_of(request, who)
    values = {name: form.get(name, "").strip()[:200] for name in _WALK_IN_FIELDS}
    values["payment_reference"] = form.get("payment_reference", "").strip()[:64]
    chosen = DeskFilter.of(form)

    def refuse(message: str, status: int = 422) -> Awaitable[Response]:
        return _desk_page(request, who, error=message, walk_in=values, status=status, chosen=chosen)

    try:
        id_type = patient_rules.IdType(values["id_type"] or patient_rules.IdType.RESIDENT_ID)
    except ValueError:
        return await refuse(who.t("page.field.id_type_invalid"))
    session_id = uuid_or_none(values["session"])
    if session_id is None:
        return await refuse(who.t("floor.choose_session"))
    priority: PriorityClass | None = None
    if values["priority"]:
        try:
            priority = PriorityClass(values["priority"])
        except ValueError:
            return await refuse(who.t("floor.reason_required"))
        if not values["reason"]:
            return await refuse(who.t("floor.reason_required"))

    async def work(session: AsyncSession) -> tuple[visits.CheckIn, QueueEvent]:
        patient = await patient_service.find_by_identity(
            session,
            hospital_id=who.hospital.id,
            cipher=who.ctx.cipher,
            id_type=id_type,
            id_number=values["id_number"],
            today=who.today,
        )
        if patient is None:
            policy, _ = await listing.policies(session, who.hospital.id)
            patient = await patient_service.register_patient(
                session,
                hospital_id=who.hospital.id,
                cipher=who.ctx.cipher,
                name=values["name"],
                id_type=id_type,
                id_number=values["id_number"],
                phone=values["phone"],
                account_phone=None,
                birth_date=None,
                sex=None,
                account_patients_max=policy.account_patients_max,
                today=who.today,
                now=who.now,
            )
        checked = await visits.walk_in(
            session,
            actor=actor,
            patient_id=patient.id,
            session_id=session_id,
            slot_id=None,
            now=who.now,
            priority=priority,
            priority_reason=values["reason"] or None,
            payment_reference=values["payment_reference"] or None,
        )
        return checked, visits.event_of(checked.visit, QueueEventKind.CHECKED_IN, at=who.now)

    try:
        checked, event = await _commit(who, work)
    except YuyueError as error:
        return await refuse(error.detail(who.locale), error.status)
    who.ctx.places_taken(who.hospital.id, session_id)
    await _announce(who, event)
    kept = f"&{chosen.query}" if chosen.query else ""
    return redirect(f"/desk?done=walk_in&number={checked.ticket.queue_number}{kept}")


async def _desk_queue_page(
    request: Request,
    who: FloorVisitor,
    session_id: uuid.UUID,
    *,
    error: str | None = None,
    done_text: str | None = None,
    status: int = 200,
) -> Response:
    actor = who.require(request, *DESK_ROLES)
    async with who.ctx.db.read() as session:
        view = await visits.queue_view(session, actor=actor, session_id=session_id)
        awaited = await visits.not_arrived(session, actor=actor, session_id=session_id)
    return render(
        request,
        who,
        "desk_queue.html",
        status=status,
        view=view,
        awaited=awaited,
        back=DeskFilter.of(request.query_params).query,
        error=error,
        done_text=done_text,
        priorities=list(PriorityClass),
        can_triage=actor.has_role(*TRIAGE_ROLES),
    )


@router.get("/desk/queues/{session_id}", response_class=HTMLResponse)
async def desk_queue(request: Request, who: StaffDep, session_id: uuid.UUID) -> Response:
    return await _desk_queue_page(request, who, session_id)


@router.post("/desk/queues/{session_id}/priority", response_class=HTMLResponse)
async def desk_priority(request: Request, who: StaffDep, session_id: uuid.UUID) -> Response:
    actor = who.require(request, *TRIAGE_ROLES)
    form = await form_of(request, who)
    visit_id = uuid_or_none(form.get("visit"))
    reason = form.get("reason", "").strip()[:200]
    choice = form.get("priority", "")
    if visit_id is None:
        raise NotFound(what="visit")
    if not reason:
        return await _desk_queue_page(
            request, who, session_id, error=who.t("floor.reason_required"), status=422
        )
    try:
        priority = PriorityClass(choice) if choice else None
    except ValueError:
        return await _desk_queue_page(
            request, who, session_id, error=who.t("floor.reason_required"), status=422
        )

    async def work(session: AsyncSession) -> QueueEvent:
        visit = await visits.set_priority(
            session, actor=actor, visit_id=visit_id, priority=priority, reason=reason, now=who.now
        )
        return visits.event_of(visit, QueueEventKind.PRIORITY_SET, at=who.now)

    return await _desk_queue_change(request, who, session_id, work, "desk.priority_ok")


@router.post("/desk/queues/{session_id}/move", response_class=HTMLResponse)
async def desk_move(request: Request, who: StaffDep, session_id: uuid.UUID) -> Response:
    actor = who.require(request, *TRIAGE_ROLES)
    form = await form_of(request, who)
    visit_id = uuid_or_none(form.get("visit"))
    other = uuid_or_none(form.get("other"))
    where = form.get("where", "before")
    reason = form.get("reason", "").strip()[:200]
    if visit_id is None:
        raise NotFound(what="visit")
    if not reason:
        return await _desk_queue_page(
            request, who, session_id, error=who.t("floor.reason_required"), status=422
        )
    if other is None or where not in ("before", "after"):
        return await _desk_queue_page(
            request,
            who,
            session_id,
            error=visit_rules.InvalidMove().detail(who.locale),
            status=422,
        )

    async def work(session: AsyncSession) -> QueueEvent:
        visit = await visits.move(
            session,
            actor=actor,
            visit_id=visit_id,
            before=other if where == "before" else None,
            after=other if where == "after" else None,
            reason=reason,
            now=who.now,
        )
        return visits.event_of(visit, QueueEventKind.MOVED, at=who.now)

    return await _desk_queue_change(request, who, session_id, work, "desk.move_ok")


async def _desk_queue_change(
    request: Request,
    who: FloorVisitor,
    session_id: uuid.UUID,
    work: Callable[[AsyncSession], Awaitable[QueueEvent]],
    done: str,
) -> Response:
    try:
        event = await _commit(who, work)
    except YuyueError as error:
        return await _desk_queue_page(
            request, who, session_id, error=error.detail(who.locale), status=error.status
        )
    await _announce(who, event)
    return await _desk_queue_page(
        request, who, session_id, done_text=who.t(done, number=event.queue_number)
    )


# --- doctor's workstation -------------------------------------------------------------------


async def _doctor_session(
    request: Request, who: FloorVisitor, session_id: uuid.UUID | None
) -> ClinicSession | None:
    """The doctor's own clinic session today: the one asked for, else the one running now
    (or the next, or the last)."""
    who.require(request, Role.DOCTOR)
    doctor_id = who.user.doctor_id if who.user else None
    if doctor_id is None:
        if session_id is not None:
            # An administrator who is nobody's doctor has no sessions of their own.
            raise NotFound(what="session")
        return None
    async with who.ctx.db.read() as session:
        mine = list(
            (
                await session.scalars(
                    select(ClinicSession)
                    .where(
                        ClinicSession.hospital_id == who.hospital.id,
                        ClinicSession.doctor_id == doctor_id,
                        ClinicSession.date == who.today,
                    )
                    .order_by(ClinicSession.start_time)
                )
            ).all()
        )
    if session_id is not None:
        chosen = next((c for c in mine if c.id == session_id), None)
        if chosen is None:
            # Not one of this doctor's sessions today: as a patient's page for another's
            # appointment, it does not exist for them (and whether it exists is not told).
            raise NotFound(what="session")
        return chosen
    if not mine:
        return None
    local_now = who.now.astimezone(_zone(who)).time()
    running = [c for c in mine if c.start_time <= local_now < c.end_time]
    upcoming = [c for c in mine if c.start_time > local_now]
    return (running or upcoming or mine[-1:])[0]


def _zone(who: FloorVisitor) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(who.hospital.timezone)


async def _doctor_panel(
    request: Request, who: FloorVisitor, clinic: ClinicSession, *, error: str | None = None
) -> dict[str, Any]:
    async with who.ctx.db.read() as session:
        view = await visits.queue_view(session, actor=_actor(who), session_id=clinic.id)
    return {"view": view, "clinic": clinic, "error": error}


@router.get("/doctor", response_class=HTMLResponse)
async def doctor(request: Request, who: StaffDep) -> Response:
    clinic = await _doctor_session(request, who, uuid_or_none(request.query_params.get("session")))
    if clinic is None:
        message = "doctor.not_linked" if who.user and who.user.doctor_id is None else None
        return render(request, who, "doctor.html", clinic=None, message=message)
    panel = await _doctor_panel(request, who, clinic)
    return render(request, who, "doctor.html", message=None, **panel)


DOCTOR_ACTIONS = ("recall", "skip", "start", "finish", "return-visit")


@router.post("/doctor/sessions/{session_id}/{action}", response_class=HTMLResponse)
async def doctor_action(
    request: Request, who: StaffDep, session_id: uuid.UUID, action: str
) -> Response:
    """call-next on the session, or recall / skip / start / finish / return-visit on one
    visit of it. htmx swaps the queue panel; without JavaScript the page reloads."""
    clinic = await _doctor_session(request, who, session_id)
    if clinic is None:
        raise NotFound(what="session")
    actor = _actor(who)
    form = await form_of(request, who)
    visit_id = uuid_or_none(form.get("visit"))
    if action != "call-next" and (action not in DOCTOR_ACTIONS or visit_id is None):
        raise NotFound(what="visit")

    async def work(session: AsyncSession) -> QueueEvent:
        if visit_id is not None and action != "call-next":
            # The visit must be in this doctor's session.
            owner = await session.scalar(select(Visit.session_id).where(Visit.id == visit_id))
            if owner != clinic.id:
                raise NotFound(what="visit")
        if action == "call-next":
            visit = await visits.call_next(session, actor=actor, session_id=clinic.id, now=who.now)
            return visits.event_of(visit, QueueEventKind.CALLED, at=who.now)
        assert visit_id is not None
        if action == "recall":
            visit = await visits.recall(session, actor=actor, visit_id=visit_id, now=who.now)
            kind = QueueEventKind.RECALLED
        elif action == "skip":
            visit = await visits.skip(session, actor=actor, visit_id=visit_id, now=who.now)
            kind = QueueEventKind.SKIPPED
        elif action == "start":
            visit = await visits.start(session, actor=actor, visit_id=visit_id, now=who.now)
            kind = QueueEventKind.STARTED
        elif action == "finish":
            visit = await visits.finish(session, actor=actor, visit_id=visit_id, now=who.now)
            kind = QueueEventKind.FINISHED
        else:
            visit = await visits.mark_return_visit(
                session, actor=actor, visit_id=visit_id, needed=True, now=who.now
            )
            kind = QueueEventKind.RETURN_VISIT
        return visits.event_of(visit, kind, at=who.now)

    error: str | None = None
    status = 200
    try:
        event = await _commit(who, work)
    except YuyueError as refused:
        error, status = refused.detail(who.locale), refused.status
    else:
        await _announce(who, event)
    if not is_htmx(request) and error is None:
        return redirect(f"/doctor?session={clinic.id}")
    panel = await _doctor_panel(request, who, clinic, error=error)
    template = "_doctor_panel.html" if is_htmx(request) else "doctor.html"
    # htmx swaps only 2xx answers by default: a refusal is a panel with its sentence.
    return render(
        request, who, template, status=200 if is_htmx(request) else status, message=None, **panel
    )


@router.get("/doctor/sessions/{session_id}/live")
async def doctor_live(request: Request, who: StaffDep, session_id: uuid.UUID) -> Response:
    """The doctor's queue panel, live: a check-in at the kiosk appears without a reload."""
    clinic = await _doctor_session(request, who, session_id)
    if clinic is None:
        raise NotFound(what="session")

    async def snapshot() -> dict[str, Any]:
        panel = await _doctor_panel(request, who, clinic)
        return {"html": fragment(request, who, "_doctor_panel.html", **panel)}

    return event_stream(
        request, bus=who.ctx.live, channels=(queue_channel(clinic.id),), snapshot=snapshot
    )


# --- waiting-room screens -------------------------------------------------------------------


async def screen_visitor(request: Request) -> FloorVisitor:
    """A screen is a device set up like a kiosk (its key), or a member of staff's browser."""
    who = await staff_visitor(request)
    if who.actor is not None:
        who.require(request, *VIEW_ROLES)
        return who
    key = request.cookies.get(KIOSK_COOKIE)
    actor = await kiosk_actor(who, key) if key else None
    if actor is None:
        raise StaffSignInRequired(request.url.path)
    who.actor, who.credential = actor, key
    return who


ScreenDep = Annotated[FloorVisitor, Depends(screen_visitor)]


async def _board(who: FloorVisitor, department_id: uuid.UUID) -> list[visits.BoardRoom]:
    async with who.ctx.db.read() as session:
        return await visits.department_board(
            session,
            actor=_actor(who),
            department_id=department_id,
            day=who.today,
            at=who.now.astimezone(_zone(who)).time(),
        )


async def _department(who: FloorVisitor, department_id: uuid.UUID) -> Department:
    async with who.ctx.db.read() as session:
        department = await session.get(Department, department_id)
    if department is None or department.hospital_id != who.hospital.id:
        raise NotFound(what="department")
    return department


def _zh_announcement(*, number: str, name: str, room: str) -> str:
    # Always in Chinese: the whole room hears it, whatever language the screen shows.
    return i18n.translate("screen.announce", "zh-CN", number=number, name=name, room=room)


def _screen_place(department: Department) -> announcement_rules.Place:
    """A department's waiting room shows the hospital's, its campus's and its own notices
    (those about any of its clinics too)."""
    return announcement_rules.Place.of(campuses=[department.campus_id], departments=[department.id])


@router.get("/screens/{department_id}", response_class=HTMLResponse)
async def screen(request: Request, who: ScreenDep, department_id: uuid.UUID) -> Response:
    department = await _department(who, department_id)
    rooms = await _board(who, department_id)
    notices = await _notices(who, _screen_place(department))
    return render(request, who, "screen.html", department=department, rooms=rooms, notices=notices)


@router.get("/screens/{department_id}/live")
async def screen_live(request: Request, who: ScreenDep, department_id: uuid.UUID) -> Response:
    department = await _department(who, department_id)

    async def snapshot() -> dict[str, Any]:
        rooms = await _board(who, department_id)
        notices = await _notices(who, _screen_place(department), fresh=True)
        return {
            "html": fragment(
                request, who, "_board.html", department=department, rooms=rooms, notices=notices
            )
        }

    async def forward(event: LiveEvent) -> tuple[str, Mapping[str, Any]] | None:
        if event.get("kind") not in (QueueEventKind.CALLED, QueueEventKind.RECALLED):
            return None
        for room in await _board(who, department_id):
            for row in room.current:
                if str(row.visit_id) == event.get("visit_id"):
                    text = _zh_announcement(
                        number=row.label("zh-CN"), name=row.patient_name, room=room.room
                    )
                    return "call", {"text": text, "lang": "zh-CN", "number": row.label("zh-CN")}
        return None

    return event_stream(
        request,
        bus=who.ctx.live,
        channels=(
            board_channel(department_id),
            announcement_rules.live_channel(who.hospital.id),
        ),
        snapshot=snapshot,
        forward=forward,
        refresh=NOTICE_REFRESH_SECONDS,
    )


# --- installing ----------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """The floor pages and what their sign-ins answer when missing."""
    from yuyue.frontdesk import (
        announcements,
        appeals,
        approvals,
        console,
        finance,
        signin,
        stopclinic,
        structure,
        timetable,
        window,
    )

    app.include_router(signin.router)
    app.include_router(router)
    app.include_router(appeals.router)
    app.include_router(announcements.router)
    app.include_router(stopclinic.router)
    app.include_router(approvals.router)
    app.include_router(window.router)
    app.include_router(timetable.router)
    app.include_router(structure.router)
    app.include_router(finance.router)
    app.include_router(console.router)

    async def on_staff_sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StaffSignInRequired)
        return staff_sign_in_redirect(exc.next_path)

    async def on_kiosk_setup(request: Request, exc: Exception) -> Response:
        return redirect("/kiosk/setup")

    app.add_exception_handler(StaffSignInRequired, on_staff_sign_in)
    app.add_exception_handler(KioskSetupRequired, on_kiosk_setup)
