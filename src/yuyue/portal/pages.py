"""The patient's pages. Thin: each route reads the visitor, calls services inside one
transaction and renders a template; refusals become a sentence on the page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pypinyin import Style, lazy_pinyin
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue import jobs
from yuyue.accounts import service as accounts_service
from yuyue.attendance import service as attendance_service
from yuyue.booking import listing
from yuyue.booking import rules as booking_rules
from yuyue.booking import service as booking_service
from yuyue.booking import views as booking_views
from yuyue.booking.models import Appointment
from yuyue.booking.schemas import AppointmentRead
from yuyue.booking.states import AppointmentStatus
from yuyue.guidance import service as guidance_service
from yuyue.kit import i18n
from yuyue.kit.errors import NotFound, ValidationFailed, YuyueError
from yuyue.kit.localtime import local_today
from yuyue.notifications import service as notifications
from yuyue.operations import service as operations_service
from yuyue.operations.announcements import rules as announcement_rules
from yuyue.operations.announcements.rules import Place
from yuyue.patients import rules as patient_rules
from yuyue.patients import service as patient_service
from yuyue.patients.models import Patient
from yuyue.payments import rules as payment_rules
from yuyue.payments import service as payments_service
from yuyue.payments.gateway import PayMethod
from yuyue.payments.states import OrderState
from yuyue.portal import bans, formatting
from yuyue.portal import pay_texts as _pay_texts  # noqa: F401  (registers the sentences)
from yuyue.portal import texts as _texts  # noqa: F401  (registers the page sentences)
from yuyue.portal.web import (
    LANG_COOKIE,
    PORTAL_CHANNEL,
    SESSION_COOKIE,
    SIZE_COOKIE,
    Visitor,
    form_of,
    redirect,
    render,
    safe_next,
    visitor,
)
from yuyue.scheduling import service as scheduling_service
from yuyue.scheduling.models import Campus, ClinicSession, Department, Doctor
from yuyue.scheduling.rules import pools_for_channel
from yuyue.visits import service as visits_service
from yuyue.web.pagekit import is_htmx

router = APIRouter(include_in_schema=False)
VisitorDep = Annotated[Visitor, Depends(visitor)]


def _today(who: Visitor) -> date:
    return local_today(who.now, who.hospital.timezone)


def _refusal(who: Visitor, error: YuyueError) -> str:
    return error.detail(who.locale)


# --- home, language, text size --------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, who: VisitorDep) -> Response:
    upcoming: list[AppointmentRead] = []
    if who.account is not None:
        upcoming = [
            a
            for a in await _account_appointments(who)
            if a.status in (AppointmentStatus.BOOKED, AppointmentStatus.HELD)
        ][:3]
    return render(
        request, who, "home.html", upcoming=upcoming, notice_place=await _place_of(who, upcoming)
    )


async def _place_of(who: Visitor, appointments: list[AppointmentRead]) -> Place:
    """The campuses, departments, clinics and days of the visitor's coming visits: their
    notices join the hospital-wide ones on the home page."""
    if not appointments:
        return announcement_rules.HOSPITAL_WIDE
    departments = [a.session.department.id for a in appointments]
    async with who.ctx.db.read() as session:
        campuses = await scheduling_service.department_campuses(
            session, hospital_id=who.hospital.id, department_ids=departments
        )
    return Place.of(
        campuses=campuses.values(),
        departments=departments,
        sessions=[a.session.id for a in appointments],
        days=[a.session.date for a in appointments],
    )


@router.get("/announcements", response_class=HTMLResponse)
async def announcements_page(request: Request, who: VisitorDep) -> Response:
    """Every notice in force, whatever it covers (the link in a texted notice comes here)."""
    every = announcement_rules.shown_on(who.in_force, announcement_rules.EVERYWHERE, now=who.now)
    return render(request, who, "announcements.html", every=every, hide_notices=True)


@router.post("/preferences")
async def preferences(request: Request, who: VisitorDep) -> Response:
    form = await form_of(request, who)
    response = redirect(safe_next(form.get("next")))
    year = 365 * 24 * 3600
    if form.get("lang") in i18n.LOCALES:
        response.set_cookie(LANG_COOKIE, form["lang"], max_age=year, samesite="lax")
    if form.get("size") in ("large", "normal"):
        response.set_cookie(SIZE_COOKIE, form["size"], max_age=year, samesite="lax")
    return response


# --- sign-in ----------------------------------------------------------------------------------


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, who: VisitorDep, next: str | None = None) -> Response:
    return render(request, who, "signin.html", next=safe_next(next), phone="", step="phone")


@router.post("/signin/code", response_class=HTMLResponse)
async def signin_code(request: Request, who: VisitorDep) -> Response:
    form = await form_of(request, who)
    phone = form.get("phone", "").strip()
    next_path = safe_next(form.get("next"))

    async def work(session: AsyncSession) -> None:
        await accounts_service.request_code(
            session,
            hospital_id=who.hospital.id,
            cipher=who.ctx.cipher,
            phone=phone,
            client_address=_client_address(request),
            now=who.ctx.clock.now(),
        )

    try:
        await who.ctx.db.transact(work)
    except YuyueError as error:
        return render(
            request,
            who,
            "signin.html",
            status=error.status,
            next=next_path,
            phone=phone,
            step="phone",
            error=_refusal(who, error),
        )
    request_delivery(who)
    return render(request, who, "signin.html", next=next_path, phone=phone, step="code")


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request, who: VisitorDep) -> Response:
    form = await form_of(request, who)
    phone = form.get("phone", "").strip()
    next_path = safe_next(form.get("next"))
    lifetime = timedelta(days=who.ctx.settings.web_session_days)

    async def work(session: AsyncSession) -> tuple[uuid.UUID | None, YuyueError | None]:
        now = who.ctx.clock.now()
        outcome = await accounts_service.verify_code(
            session,
            hospital_id=who.hospital.id,
            cipher=who.ctx.cipher,
            phone=phone,
            code=form.get("code", ""),
            now=now,
        )
        if outcome.account is None:
            return None, outcome.refusal
        opened = await accounts_service.open_session(
            session,
            hospital_id=who.hospital.id,
            account_id=outcome.account.id,
            now=now,
            lifetime=lifetime,
        )
        return opened.id, None

    try:
        session_id, refusal = await who.ctx.db.transact(work)
    except YuyueError as error:
        session_id, refusal = None, error
    if session_id is None:
        assert refusal is not None
        return render(
            request,
            who,
            "signin.html",
            status=refusal.status,
            next=next_path,
            phone=phone,
            step="code",
            error=_refusal(who, refusal),
        )
    token = who.ctx.portal_signer.sign({"sid": str(session_id)}, expires_at=who.now + lifetime)
    response = redirect(next_path)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=who.ctx.settings.public_base_url.startswith("https://"),
    )
    return response


@router.post("/signout")
async def signout(request: Request, who: VisitorDep) -> Response:
    await form_of(request, who)
    if who.web_session_id is not None:
        session_id = who.web_session_id

        async def work(session: AsyncSession) -> None:
            await accounts_service.end_session(
                session, session_id=session_id, now=who.ctx.clock.now()
            )

        await who.ctx.db.transact(work)
    response = redirect("/")
    response.delete_cookie(SESSION_COOKIE)
    return response


# --- departments, doctors, sessions -------------------------------------------------------


def initials(name: str) -> str:
    """Pinyin initials (心血管内科 → xxgnk): how patients type a name on a phone keypad."""
    return "".join(lazy_pinyin(name, style=Style.FIRST_LETTER)).lower()


def full_pinyin(name: str) -> str:
    """Full pinyin (心血管内科 → xinxueguanneike): how patients type a name in words."""
    return "".join(lazy_pinyin(name)).lower()


def _matches(needle: str, *haystacks: str) -> bool:
    return any(needle in haystack.lower() for haystack in haystacks if haystack)


@router.get("/departments", response_class=HTMLResponse)
async def departments(request: Request, who: VisitorDep, q: str = "") -> Response:
    query = q.strip()[:40]
    needle = query.lower()
    async with who.ctx.db.read() as session:
        rows = (
            await session.scalars(
                select(Department)
                .where(Department.hospital_id == who.hospital.id, Department.active.is_(True))
                .order_by(Department.sort_order, Department.code)
            )
        ).all()
        doctors: list[tuple[Doctor, Department]] = []
        if needle:
            named = {d.id: d for d in rows}
            doctors = [
                (doctor, named[doctor.department_id])
                for doctor in (
                    await session.scalars(
                        select(Doctor)
                        .where(Doctor.hospital_id == who.hospital.id, Doctor.active.is_(True))
                        .order_by(Doctor.code)
                    )
                ).all()
                if doctor.department_id in named
                and _matches(needle, doctor.name, initials(doctor.name))
            ][:20]
    groups: dict[str, list[Department]] = {}
    # Symptom words (头疼) find the departments guidance suggests for them, first.
    suggested = guidance_service.departments_for_search(rows, text=query) if needle else []
    if suggested:
        named = {d.id: d for d in rows}
        groups[who.t("page.guidance_search_hint")] = [named[i] for i in suggested]
    for department in rows:
        if (
            not needle
            or _matches(
                needle,
                department.name,
                department.name_en,
                department.pinyin or initials(department.name),
                department.category,
            )
            or _matches(needle.replace(" ", ""), full_pinyin(department.name))
        ):
            groups.setdefault(who.pick(department.category, department.category_en), []).append(
                department
            )
    template = "_department_list.html" if is_htmx(request) else "departments.html"
    return render(request, who, template, groups=groups, doctors=doctors, q=query)


@dataclass(frozen=True)
class DaySchedule:
    day: date
    sessions: list[listing.ListedSession]


def _by_day(sessions: list[listing.ListedSession]) -> list[DaySchedule]:
    days: dict[date, list[listing.ListedSession]] = {}
    for listed in sessions:
        days.setdefault(listed.date, []).append(listed)
    return [DaySchedule(d, s) for d, s in sorted(days.items())]


async def _schedule(
    session: AsyncSession,
    who: Visitor,
    *,
    department_id: uuid.UUID | None = None,
    doctor_id: uuid.UUID | None = None,
) -> list[DaySchedule]:
    conn = await session.connection()
    rules = await listing.hospital_rules(conn, who.hospital.id, cache=who.ctx.reads.rules)
    today = _today(who)
    sessions = await listing.list_sessions(
        conn,
        hospital_id=who.hospital.id,
        rules=rules,
        channel=PORTAL_CHANNEL,
        start=today,
        # One day past the window: patients see when the next day opens.
        end=today + timedelta(days=rules.default.release_days_ahead + 1),
        now=who.now,
        department_id=department_id,
        doctor_id=doctor_id,
    )
    return _by_day(sessions)


@router.get("/departments/{department_id}", response_class=HTMLResponse)
async def department_page(request: Request, who: VisitorDep, department_id: uuid.UUID) -> Response:
    async with who.ctx.db.read() as session:
        department = await session.get(Department, department_id)
        if department is None or department.hospital_id != who.hospital.id:
            raise NotFound(what="department")
        campus = await session.get(Campus, department.campus_id) if department.campus_id else None
        doctors = (
            await session.scalars(
                select(Doctor)
                .where(Doctor.department_id == department_id, Doctor.active.is_(True))
                .order_by(Doctor.code)
            )
        ).all()
        schedule = await _schedule(session, who, department_id=department_id)
    return render(
        request,
        who,
        "department.html",
        department=department,
        campus=campus,
        doctors=doctors,
        schedule=schedule,
        notice_place=Place.of(campuses=[department.campus_id], departments=[department.id]),
    )


@router.get("/doctors/{doctor_id}", response_class=HTMLResponse)
async def doctor_page(request: Request, who: VisitorDep, doctor_id: uuid.UUID) -> Response:
    async with who.ctx.db.read() as session:
        doctor = await session.get(Doctor, doctor_id)
        if doctor is None or doctor.hospital_id != who.hospital.id:
            raise NotFound(what="doctor")
        department = await session.get(Department, doctor.department_id)
        schedule = await _schedule(session, who, doctor_id=doctor_id)
    return render(
        request, who, "doctor.html", doctor=doctor, department=department, schedule=schedule
    )


async def _listed(
    session: AsyncSession, who: Visitor, session_id: uuid.UUID
) -> listing.ListedSession:
    conn = await session.connection()
    return await listing.listed_session(
        conn,
        hospital_id=who.hospital.id,
        rules=await listing.hospital_rules(conn, who.hospital.id, cache=who.ctx.reads.rules),
        channel=PORTAL_CHANNEL,
        session_id=session_id,
        now=who.now,
    )


async def _slots(
    session: AsyncSession, who: Visitor, session_id: uuid.UUID
) -> list[listing.ListedSlot]:
    conn = await session.connection()
    found = await listing.list_slots(
        conn,
        hospital_id=who.hospital.id,
        rules=await listing.hospital_rules(conn, who.hospital.id, cache=who.ctx.reads.rules),
        channel=PORTAL_CHANNEL,
        session_id=session_id,
        now=who.now,
    )
    return found.slots


async def account_patients(session: AsyncSession, who: Visitor) -> list[Patient]:
    if who.account is None:
        return []
    return await patient_service.account_patients(
        session, hospital_id=who.hospital.id, account_id=who.account.id
    )


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
async def session_page(
    request: Request,
    who: VisitorDep,
    session_id: uuid.UUID,
    slot: uuid.UUID | None = None,
    patient: uuid.UUID | None = None,
) -> Response:
    async with who.ctx.db.read() as session:
        listed = await _listed(session, who, session_id)
        slots = await _slots(session, who, session_id)
        patients = await account_patients(session, who)
        campuses = await scheduling_service.department_campuses(
            session, hospital_id=who.hospital.id, department_ids=[listed.department.id]
        )
        # 加号: places added beyond the timetable, marked as such on their slot.
        extra_places = await scheduling_service.extra_places_left(
            session, session_id=session_id, pools=pools_for_channel(PORTAL_CHANNEL)
        )
    alternatives: list[dict[str, Any]] = []
    if listed.bookability.state is booking_rules.BookableState.FULL:
        alternatives = await _alternatives(who, session_id, None)
    return render(
        request,
        who,
        "session.html",
        notice_place=Place.of(
            campuses=campuses.values(),
            departments=[listed.department.id],
            sessions=[listed.id],
            days=[listed.date],
        ),
        s=listed,
        slots=slots,
        extra_places=extra_places,
        patients=patients,
        chosen_slot=slot,
        chosen_patient=patient or (patients[0].id if len(patients) == 1 else None),
        alternatives=alternatives,
    )


async def _alternatives(
    who: Visitor, session_id: uuid.UUID, slot_id: uuid.UUID | None
) -> list[dict[str, Any]]:
    """The nearest places this channel can book now instead: computed once for a burst of
    visitors and kept in the sold-out memory, exactly as a refused booking keeps them."""
    actor = who.actor

    async def compute() -> list[dict[str, Any]]:
        async with who.ctx.db.read() as session:
            return await booking_service.alternatives(
                session,
                actor=actor,
                session_id=session_id,
                slot_id=slot_id,
                now=who.ctx.clock.now(),
                caches=who.ctx.caches,
            )

    key = (session_id, pools_for_channel(PORTAL_CHANNEL), slot_id)
    return await who.ctx.sold_out.remember(key, compute)


async def choice(
    session: AsyncSession, who: Visitor, values: dict[str, str]
) -> tuple[uuid.UUID | None, Patient]:
    """The slot and patient chosen on the page, refusing ids that are not the visitor's."""
    errors: list[dict[str, str]] = []
    slot_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    try:
        slot_id = uuid.UUID(values["slot"]) if values.get("slot") else None
    except ValueError:
        errors.append({"field": "slot", "message": "not a time slot"})
    try:
        patient_id = uuid.UUID(values.get("patient", ""))
    except ValueError:
        errors.append({"field": "patient", "message": "choose a patient"})
    patients = {p.id: p for p in await account_patients(session, who)}
    if patient_id is not None and patient_id not in patients:
        errors.append({"field": "patient", "message": "choose a patient"})
    if errors or patient_id is None:
        raise ValidationFailed(
            errors=errors, summary=i18n.translate("page.choose_patient", who.locale)
        )
    return slot_id, patients[patient_id]


@router.get("/sessions/{session_id}/confirm", response_class=HTMLResponse)
async def confirm_page(request: Request, who: VisitorDep, session_id: uuid.UUID) -> Response:
    who.require_account(request)
    values = dict(request.query_params.items())
    async with who.ctx.db.read() as session:
        listed = await _listed(session, who, session_id)
        if not listed.bookable_now:
            # Never a "book" button for what this channel cannot book now.
            return redirect(f"/sessions/{session_id}")
        try:
            slot_id, patient = await choice(session, who, values)
        except ValidationFailed as error:
            return redirect(f"/sessions/{session_id}?error={error.code}")
        slots = {s.id: s for s in await _slots(session, who, session_id)}
        info, policy = await booking_service.session_facts(
            session, hospital_id=who.hospital.id, session_id=session_id, caches=who.ctx.caches
        )
    return render(
        request,
        who,
        "confirm.html",
        s=listed,
        slot=slots.get(slot_id) if slot_id else None,
        patient=patient,
        cancel_by=booking_rules.cancellation_deadline(policy, info.facts),
        hold_minutes=policy.hold_minutes,
    )


@router.post("/sessions/{session_id}/book", response_class=HTMLResponse)
async def book(request: Request, who: VisitorDep, session_id: uuid.UUID) -> Response:
    who.require_account(request)
    form = await form_of(request, who)
    actor = who.actor
    try:
        slot_key = uuid.UUID(form["slot"]) if form.get("slot") else None
    except ValueError:
        slot_key = None  # refused with a clear message by `choice` below
    # At the release second the website is a channel like any other: "sold out" is
    # answered from the same memory the API uses, without a transaction.
    await operations_service.ensure_bookable(who.ctx.db.read, hospital_id=who.actor.hospital_id)
    sold_out = who.ctx.sold_out
    key = (session_id, pools_for_channel(PORTAL_CHANNEL), slot_key)
    cached = sold_out.lookup(key)
    if cached is not None:
        return await _refused(
            request, who, session_id, form, booking_rules.SoldOut(), cached.alternatives
        )

    async def work(session: AsyncSession) -> uuid.UUID:
        slot_id, patient = await choice(session, who, form)
        booked = await booking_service.book(
            session,
            actor=actor,
            patient_id=patient.id,
            session_id=session_id,
            slot_id=slot_id,
            now=who.ctx.clock.now(),
            caches=who.ctx.caches,
        )
        return booked.appointment.id

    try:
        appointment_id = await who.ctx.db.transact(work)
    except booking_rules.SoldOut as error:
        alternatives = await _alternatives(who, session_id, slot_key)
        return await _refused(request, who, session_id, form, error, alternatives)
    except YuyueError as error:
        sold_out.release(key)
        return await _refused(request, who, session_id, form, error, [])
    except BaseException:
        sold_out.release(key)
        raise
    sold_out.forget(key)
    who.ctx.places_taken(who.hospital.id, session_id)
    request_delivery(who)
    return redirect(f"/appointments/{appointment_id}?booked=1")


async def _refused(
    request: Request,
    who: Visitor,
    session_id: uuid.UUID,
    form: dict[str, str],
    error: YuyueError,
    alternatives: list[dict[str, Any]],
) -> Response:
    async with who.ctx.db.read() as session:
        listed = await _listed(session, who, session_id)
    return render(
        request,
        who,
        "refused.html",
        status=error.status,
        s=listed,
        error=error,
        message=_refusal(who, error),
        alternatives=alternatives,
        patient_id=form.get("patient", ""),
        can_wait=isinstance(error, booking_rules.SoldOut),
    )


# --- my appointments and the voucher ------------------------------------------------------


async def _account_appointments(who: Visitor) -> list[AppointmentRead]:
    async with who.ctx.db.read() as session:
        patients = await account_patients(session, who)
        if not patients:
            return []
        rows = (
            await session.scalars(
                select(Appointment)
                .where(
                    Appointment.hospital_id == who.hospital.id,
                    Appointment.patient_id.in_([p.id for p in patients]),
                )
                .order_by(Appointment.visit_date.desc(), Appointment.created_at.desc())
                .limit(100)
            )
        ).all()
        return [
            await booking_views.appointment_view(
                session,
                appointment=row,
                voucher_signer=who.ctx.voucher_signer,
                locale=who.locale,
                caches=who.ctx.caches,
            )
            for row in rows
        ]


@router.get("/appointments", response_class=HTMLResponse)
async def appointments(request: Request, who: VisitorDep) -> Response:
    who.require_account(request)
    today = _today(who)
    rows = await _account_appointments(who)
    async with who.ctx.db.read() as session:
        names = {p.id: p.name for p in await account_patients(session, who)}
        walk_ins = await visits_service.walk_in_numbers(
            session, appointment_ids=[a.id for a in rows]
        )
    # A booked appointment shows its booked number; a walk-in its walk-in number (现1).
    numbers = {
        a.id: visits_service.number_label(a.sequence_number, walk_ins.get(a.id), locale=who.locale)
        for a in rows
    }
    upcoming = sorted(
        (
            a
            for a in rows
            if a.session.date >= today
            and a.status
            in (AppointmentStatus.BOOKED, AppointmentStatus.HELD, AppointmentStatus.CHECKED_IN)
        ),
        key=lambda a: (a.session.date, a.slot.start),
    )
    past = [a for a in rows if a not in upcoming]
    return render(
        request,
        who,
        "appointments.html",
        upcoming=upcoming,
        past=past,
        names=names,
        numbers=numbers,
    )


async def own_appointment(
    session: AsyncSession, who: Visitor, appointment_id: uuid.UUID
) -> tuple[Appointment, Patient]:
    appointment = await session.get(Appointment, appointment_id)
    patients = {p.id: p for p in await account_patients(session, who)}
    if (
        appointment is None
        or appointment.hospital_id != who.hospital.id
        or appointment.patient_id not in patients
    ):
        # Someone else's appointment is answered exactly like a missing one.
        raise NotFound(what="appointment")
    return appointment, patients[appointment.patient_id]


async def own_view(
    session: AsyncSession, who: Visitor, appointment_id: uuid.UUID
) -> tuple[Appointment, Patient, AppointmentRead]:
    """The visitor's appointment, its patient, and what its pages show."""
    appointment, patient = await own_appointment(session, who, appointment_id)
    view = await booking_views.appointment_view(
        session, appointment=appointment, voucher_signer=who.ctx.voucher_signer, locale=who.locale
    )
    return appointment, patient, view


async def money_of(
    session: AsyncSession, appointment_id: uuid.UUID
) -> payments_service.PaymentShown | None:
    """The appointment's payment once money moved (an open, unpaid order is not shown)."""
    shown = await payments_service.payment_of(session, appointment_id=appointment_id)
    if shown is None or OrderState(shown.state) in (OrderState.CREATED, OrderState.CLOSED):
        return None
    return shown


def refund_note(
    who: Visitor, view: AppointmentRead, payment: payments_service.PaymentShown | None
) -> str | None:
    """What cancelling does with the money, said before the patient confirms."""
    if payment is not None and OrderState(payment.state) is OrderState.PAID:
        amount = formatting.money(payment.amount_fen, who.locale)
        route = payment_rules.refund_route(
            PayMethod(payment.method or PayMethod.CASH), invoice_printed=payment.invoice_printed
        )
        if route is payment_rules.RefundRoute.ONLINE:
            provider = who.t(f"provider.{payment.provider}")
            return who.t("cancel.refund_online", amount=amount, provider=provider)
        return who.t("cancel.refund_window", amount=amount)
    if view.status is AppointmentStatus.HELD and view.fee > 0:
        return who.t("cancel.unpaid")
    return None


def qr_svg(token: str) -> str:
    # Error correction "M" survives a cracked phone screen; the border is the quiet zone
    # scanners need.
    return segno.make(token, error="m").svg_inline(scale=4, border=4, dark="#111")


@router.get("/appointments/{appointment_id}", response_class=HTMLResponse)
async def appointment_page(
    request: Request, who: VisitorDep, appointment_id: uuid.UUID
) -> Response:
    from yuyue.portal import live  # the live panel builds on these pages' helpers

    who.require_account(request)
    async with who.ctx.db.read() as session:
        appointment, patient, view = await own_view(session, who, appointment_id)
        department = await session.get(Department, appointment.department_id)
        assert department is not None
        campus = await session.get(Campus, department.campus_id) if department.campus_id else None
        clinic = await session.get(ClinicSession, appointment.session_id)
        reminders = await notifications.pending_reminders(session, appointment_id=appointment.id)
        panel = await live.live_panel(session, who, appointment)
        payment = await money_of(session, appointment.id)
        number = await visits_service.patient_number(
            session,
            appointment_id=appointment.id,
            sequence_number=appointment.sequence_number,
            locale=who.locale,
        )
        extra_place = await scheduling_service.is_extra_place(session, pool_id=appointment.pool_id)
    fee_note = request.query_params.get("fee")
    return render(
        request,
        who,
        "appointment.html",
        notice_place=Place.of(
            campuses=[department.campus_id],
            departments=[department.id],
            sessions=[appointment.session_id],
            days=[appointment.visit_date],
        ),
        live=panel,
        payment=payment,
        fee_note=fee_note if fee_note in ("carried", "refunded") else None,
        reminders=reminders,
        a=view,
        number=number,
        extra_place=extra_place,
        patient=patient,
        department=department,
        campus=campus,
        clinic=clinic,
        qr=qr_svg(view.voucher.token) if view.voucher else None,
        can_cancel=view.status in (AppointmentStatus.BOOKED, AppointmentStatus.HELD)
        and who.now < view.cancellation_deadline,
        just_booked=request.query_params.get("booked") == "1",
    )


@router.get("/appointments/{appointment_id}/cancel", response_class=HTMLResponse)
async def cancel_page(request: Request, who: VisitorDep, appointment_id: uuid.UUID) -> Response:
    who.require_account(request)
    async with who.ctx.db.read() as session:
        _, patient, view = await own_view(session, who, appointment_id)
        note = refund_note(who, view, await money_of(session, appointment_id))
    return render(request, who, "cancel.html", a=view, patient=patient, refund_note=note)


@router.post("/appointments/{appointment_id}/cancel", response_class=HTMLResponse)
async def cancel(request: Request, who: VisitorDep, appointment_id: uuid.UUID) -> Response:
    who.require_account(request)
    await form_of(request, who)
    actor = who.actor

    async def work(session: AsyncSession) -> uuid.UUID:
        await own_appointment(session, who, appointment_id)
        cancelled = await booking_service.cancel(
            session,
            actor=actor,
            appointment_id=appointment_id,
            note=None,
            now=who.ctx.clock.now(),
            caches=who.ctx.caches,
        )
        return cancelled.session_id

    try:
        session_id = await who.ctx.db.transact(work)
    except YuyueError as error:
        async with who.ctx.db.read() as session:
            _, patient, view = await own_view(session, who, appointment_id)
            note = refund_note(who, view, await money_of(session, appointment_id))
        return render(
            request,
            who,
            "cancel.html",
            status=error.status,
            a=view,
            patient=patient,
            refund_note=note,
            error=_refusal(who, error),
        )
    await who.ctx.places_returned(who.hospital.id, session_id)
    request_delivery(who)
    # A paid booking cancelled is refunded by the refund job: ring it now.
    jobs.request_refunds(who.ctx)
    return redirect(f"/appointments/{appointment_id}?cancelled=1")


# --- changing the time (paying a held booking is in `paying`) ----------------------


@router.get("/appointments/{appointment_id}/reschedule", response_class=HTMLResponse)
async def reschedule_page(request: Request, who: VisitorDep, appointment_id: uuid.UUID) -> Response:
    who.require_account(request)
    async with who.ctx.db.read() as session:
        appointment, patient, view = await own_view(session, who, appointment_id)
        schedule = await _schedule(session, who, department_id=appointment.department_id)
    # The same doctor first (another time in the same session included), then the
    # department's other sessions with places left.
    options = [
        listed
        for day_schedule in schedule
        for listed in day_schedule.sessions
        if listed.bookable_now
    ]
    options.sort(key=lambda s: (s.doctor_id != appointment.doctor_id, s.date))
    options = options[:20]
    # What happens to a paid fee, per option: booking's own rule decides.
    paid = bool(appointment.paid_fen)
    fee_moves = {
        s.id: booking_rules.payment_follows(
            AppointmentStatus(appointment.status),
            paid_fen=appointment.paid_fen,
            refund_state=appointment.refund_state,
            new_fee_fen=s.fee_fen,
        )
        for s in options
    }
    return render(
        request,
        who,
        "reschedule.html",
        a=view,
        patient=patient,
        options=options,
        paid=paid,
        fee_moves=fee_moves,
    )


@router.get("/appointments/{appointment_id}/reschedule/{session_id}", response_class=HTMLResponse)
async def reschedule_slots(
    request: Request, who: VisitorDep, appointment_id: uuid.UUID, session_id: uuid.UUID
) -> Response:
    who.require_account(request)
    async with who.ctx.db.read() as session:
        appointment, patient = await own_appointment(session, who, appointment_id)
        listed = await _listed(session, who, session_id)
        slots = await _slots(session, who, session_id)
    return render(
        request,
        who,
        "reschedule_slots.html",
        appointment_id=appointment.id,
        patient=patient,
        s=listed,
        slots=slots,
    )


@router.post("/appointments/{appointment_id}/reschedule", response_class=HTMLResponse)
async def reschedule(request: Request, who: VisitorDep, appointment_id: uuid.UUID) -> Response:
    who.require_account(request)
    form = await form_of(request, who)
    actor = who.actor
    try:
        session_id = uuid.UUID(form.get("session", ""))
        slot_id = uuid.UUID(form["slot"]) if form.get("slot") else None
    except ValueError:
        raise ValidationFailed(summary="session, slot") from None

    await operations_service.ensure_bookable(who.ctx.db.read, hospital_id=who.actor.hospital_id)

    async def work(session: AsyncSession) -> tuple[uuid.UUID, uuid.UUID, str]:
        old, _ = await own_appointment(session, who, appointment_id)
        old_session, was_paid = old.session_id, bool(old.paid_fen)
        booked = await booking_service.reschedule(
            session,
            actor=actor,
            appointment_id=appointment_id,
            session_id=session_id,
            slot_id=slot_id,
            now=who.ctx.clock.now(),
            caches=who.ctx.caches,
        )
        # Booking's answer says where a paid fee went: onto the new place, or back.
        fee = "" if not was_paid else "carried" if booked.payment_carried_over else "refunded"
        return booked.appointment.id, old_session, fee

    try:
        new_id, old_session, fee = await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _refused(request, who, session_id, form, error, [])
    await who.ctx.places_returned(who.hospital.id, old_session)
    who.ctx.places_taken(who.hospital.id, session_id)
    request_delivery(who)
    if fee == "refunded":
        jobs.request_refunds(who.ctx)
    return redirect(f"/appointments/{new_id}?booked=1" + (f"&fee={fee}" if fee else ""))


# --- family patients ----------------------------------------------------------------------


@router.get("/patients", response_class=HTMLResponse)
async def patients_page(request: Request, who: VisitorDep) -> Response:
    who.require_account(request)
    async with who.ctx.db.read() as session:
        patients = await account_patients(session, who)
        policy, _ = await listing.policies(session, who.hospital.id)
        blocked = await bans.blocked_patients(session, who, patients)
    return render(
        request,
        who,
        "patients.html",
        patients=patients,
        maximum=policy.account_patients_max,
        blocked=blocked,
        until=bans.until_text(who),
    )


@router.get("/patients/new", response_class=HTMLResponse)
async def new_patient_page(request: Request, who: VisitorDep, next: str | None = None) -> Response:
    who.require_account(request)
    return render(
        request, who, "patient_new.html", values={}, errors={}, next=safe_next(next or "/patients")
    )


_PATIENT_FIELDS = ("name", "id_type", "id_number", "phone", "birth_date", "sex")


@router.post("/patients", response_class=HTMLResponse)
async def add_patient(request: Request, who: VisitorDep) -> Response:
    account = who.require_account(request)
    form = await form_of(request, who)
    values = {name: form.get(name, "").strip() for name in _PATIENT_FIELDS}
    next_path = safe_next(form.get("next") or "/patients")
    errors: dict[str, str] = {}
    id_type: patient_rules.IdType | None = None
    try:
        id_type = patient_rules.IdType(values["id_type"] or patient_rules.IdType.RESIDENT_ID)
    except ValueError:
        errors["id_type"] = who.t("page.field.id_type_invalid")
    birth: date | None = None
    if values["birth_date"]:
        try:
            birth = date.fromisoformat(values["birth_date"])
        except ValueError:
            errors["birth_date"] = who.t("page.field.date_invalid")
    sex: patient_rules.Sex | None = None
    if values["sex"]:
        try:
            sex = patient_rules.Sex(values["sex"])
        except ValueError:
            errors["sex"] = who.t("page.field.sex_invalid")
    if not errors and id_type is not None:
        holder = who.ctx.cipher.decrypt(account.phone_cipher)

        async def work(session: AsyncSession) -> None:
            policy, _ = await listing.policies(session, who.hospital.id)
            await patient_service.register_patient(
                session,
                hospital_id=who.hospital.id,
                cipher=who.ctx.cipher,
                name=values["name"],
                id_type=id_type,
                id_number=values["id_number"],
                phone=values["phone"] or holder,
                account_phone=holder,
                birth_date=birth,
                sex=sex,
                account_patients_max=policy.account_patients_max,
                today=_today(who),
                now=who.ctx.clock.now(),
                through=PORTAL_CHANNEL,
            )

        try:
            await who.ctx.db.transact(work)
        except YuyueError as error:
            return render(
                request,
                who,
                "patient_new.html",
                status=error.status,
                values=values,
                errors=_field_errors(who, error),
                error=_refusal(who, error),
                next=next_path,
            )
        return redirect(next_path)
    return render(
        request,
        who,
        "patient_new.html",
        status=422,
        values=values,
        errors=errors,
        error=who.t("page.check_fields"),
        next=next_path,
    )


def _field_errors(who: Visitor, error: YuyueError) -> dict[str, str]:
    fields: dict[str, str] = {}
    code_fields = {
        "invalid_id_number": "id_number",
        "invalid_phone": "phone",
        "invalid_name": "name",
    }
    if error.code in code_fields:
        fields[code_fields[error.code]] = _refusal(who, error)
    if isinstance(error, ValidationFailed):
        for item in error.errors:
            field = str(item.get("field", "")).split("/")[0]
            fields[field] = who.t("page.field.required")
    return fields


# --- the rules, in plain words ------------------------------------------------------------


@router.get("/rules", response_class=HTMLResponse)
async def rules_page(request: Request, who: VisitorDep) -> Response:
    async with who.ctx.db.read() as session:
        policy, _ = await listing.policies(session, who.hospital.id)
        no_shows = await attendance_service.load_policy(session, hospital_id=who.hospital.id)
    return render(request, who, "rules.html", p=policy, ns=no_shows)


# --- background delivery --------------------------------------------------------------------


def request_delivery(who: Visitor) -> None:
    """Asks the worker to deliver what this request queued, right away."""
    jobs.request_delivery(who.ctx)
