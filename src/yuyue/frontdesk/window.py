"""The registration window (挂号窗口): a registrar finds a patient by ID number or mobile
number (or registers them), sees their visits and money, registers them for any clinic
session the window may book today or later, takes the fee (cash, bank card, insurance card)
with a receipt number, prints the slip with the voucher, and cancels (退号) and hands the
money back.

Thin like every floor page: each route parses, calls the owning context's public functions
(patients, booking's window channel, payments' window flows) in one transaction, and
renders; a refusal is the rule's sentence on the page and changes nothing. The registrar
books as the window channel (`staff.rules.STAFF_CHANNEL`): the window's pools, the window's
booking window (from the release until the session ends), the same limits and bans.

Every patient has a medical record number (病历号, ``MR00000042``), given by the patients
context when they are registered and shown on the patient page and the slip. Patients are
found by document number (a resident ID is checked, GB 11643, before it is looked up),
mobile number or medical record number; document numbers and phones through the blind
indexes, and the screen shows them masked. A registrar may show
the full identity number or phone once, with a reason (unmasking). Look-ups (the patients
found, never what was typed), patient pages, slips, unmaskings and registrations are written
to the audit trail, each in the transaction of the request's own work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import approvals, listing, views
from yuyue.booking import rules as booking_rules
from yuyue.booking import service as booking
from yuyue.booking.schemas import AppointmentRead
from yuyue.booking.states import AppointmentStatus
from yuyue.frontdesk.pages import StaffDep
from yuyue.frontdesk.web import FloorVisitor, form_of, redirect, render
from yuyue.jobs import request_delivery, request_refunds
from yuyue.kit import i18n
from yuyue.kit.errors import NotFound, YuyueError
from yuyue.patients import rules as patient_rules
from yuyue.patients import service as patients
from yuyue.patients.models import Patient
from yuyue.payments import rules as payment_rules
from yuyue.payments import service as payments
from yuyue.payments.gateway import PayMethod
from yuyue.payments.states import OrderState, RefundState
from yuyue.portal import formatting
from yuyue.scheduling import service as scheduling
from yuyue.staff import rules as staff_rules
from yuyue.staff.enums import Role
from yuyue.staff.errors import UnmaskReasonRequired
from yuyue.staff.rules import STAFF_CHANNEL, Actor, ReadKind
from yuyue.staff.service import record_audit, record_read
from yuyue.visits import service as visit_service
from yuyue.web.deps import read_source
from yuyue.web.pagekit import uuid_or_none as _uuid

router = APIRouter(include_in_schema=False)
PATH = "/desk/window"
WINDOW_ROLES = (Role.REGISTRAR,)
HISTORY_LIMIT = 30
RECEIPT_MAX = 40
NOTE_MAX = 200
# How far ahead the slip offers sessions to move a booking to.
MOVE_DAYS = 14
# The methods the window takes, in the order the form offers them.
WINDOW_METHODS: tuple[PayMethod, ...] = tuple(payment_rules.WINDOW_METHODS)
_ACTIVE = (AppointmentStatus.HELD, AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN)

i18n.register(
    {
        "window.title": ("挂号窗口", "Registration window"),
        "window.link": ("挂号窗口", "Registration window"),
        "window.find": ("查找患者", "Find a patient"),
        "window.find_label": (
            "证件号码、手机号或病历号",
            "ID number, mobile number or medical record number",
        ),
        "window.find_hint": (
            "居民身份证号会先核对校验位；一个手机号可能找到一家人的几位就诊人；"
            "病历号以 MR 开头（如 MR00000042）。",
            "A resident ID number is checked (its check digit) first; a mobile number may "
            "find several people of one family; a medical record number starts MR "
            "(MR00000042).",
        ),
        "window.record_number": ("病历号", "Medical record no."),
        "window.search": ("查找", "Find"),
        "window.not_found": (
            "没有找到该患者，请在下方登记。",
            "No patient found: register them below.",
        ),
        "window.several": ("找到 {n} 位患者，请核对后选择：", "{n} patients found; choose one:"),
        "window.choose": ("选择", "Choose"),
        "window.register": ("登记新患者", "Register a new patient"),
        "window.register_hint": (
            "实名登记。居民身份证自动得出出生日期和性别；其他证件请填写出生日期和性别。",
            "Real-name registration. A resident ID gives the birth date and sex; for other "
            "documents enter them.",
        ),
        "window.name": ("姓名", "Name"),
        "window.id_type": ("证件类型", "Document"),
        "window.id_number": ("证件号码", "Document number"),
        "window.phone": ("手机号", "Mobile number"),
        "window.birth_date": ("出生日期（非身份证）", "Birth date (other documents)"),
        "window.sex": ("性别（非身份证）", "Sex (other documents)"),
        "window.sex.M": ("男", "Male"),
        "window.sex.F": ("女", "Female"),
        "window.register_button": ("登记", "Register"),
        "window.registered": ("已登记，可以为其挂号。", "Registered: you can now book a clinic."),
        "window.open_existing": ("打开已登记的患者", "Open the registered patient"),
        "window.bad_birth_date": (
            "出生日期格式应为 年-月-日。",
            "Enter the birth date as year-month-day.",
        ),
        "window.patient": ("患者", "Patient"),
        "window.other_patient": ("换一位患者", "Another patient"),
        "window.age": ("{age} 岁", "{age} years"),
        "window.upcoming": ("待就诊", "Coming visits"),
        "window.history": ("历史记录", "Past visits"),
        "window.no_upcoming": ("没有待就诊的挂号。", "No coming visit."),
        "window.no_history": ("没有历史记录。", "No past visit."),
        "window.when": ("时间", "When"),
        "window.clinic": ("科室 / 医生", "Department / doctor"),
        "window.number": ("序号", "No."),
        "window.state": ("状态", "State"),
        "window.money": ("费用", "Fee"),
        "window.open_slip": ("凭条", "Slip"),
        "window.book": ("挂号", "Register for a clinic"),
        "window.day": ("就诊日期", "Visit day"),
        "window.department": ("科室", "Department"),
        "window.show": ("查看号源", "Show sessions"),
        "window.choose_department": (
            "请选择科室查看号源。",
            "Choose a department to see its sessions.",
        ),
        "window.no_sessions": (
            "这一天该科室没有出诊。",
            "No session of this department that day.",
        ),
        "window.remaining": ("窗口余号 {n}", "{n} left for the window"),
        "window.not_bookable": ("不可挂号", "Not bookable"),
        "window.department_clinic": ("普通门诊", "Department clinic"),
        "window.slots": ("选择时段", "Choose a time"),
        "window.any_slot": ("最早的空闲时段", "The earliest free time"),
        "window.slot_left": ("余 {n}", "{n} left"),
        "window.book_button": ("确认挂号", "Register"),
        "window.bad_day": ("日期格式应为 年-月-日。", "Enter the day as year-month-day."),
        "window.choose_session": ("请选择出诊。", "Choose a clinic session."),
        "window.slip": ("挂号凭条", "Registration slip"),
        "window.back": ("返回患者", "Back to the patient"),
        "window.booked_free": ("挂号成功。", "Registered."),
        "window.booked_held": (
            "号源已保留，请在 {at} 前收取挂号费 {amount}。",
            "The place is held: take the fee of {amount} before {at}.",
        ),
        "window.take_fee": ("收取挂号费", "Take the fee"),
        "window.method": ("支付方式", "Paid with"),
        "method.cash": ("现金", "Cash"),
        "method.bank_card": ("银行卡", "Bank card"),
        "method.insurance_card": ("医保卡", "Insurance card"),
        "window.receipt_no": ("收据号", "Receipt number"),
        "window.pay_button": ("确认收费 {amount}", "Take {amount}"),
        "window.paid_ok": ("已收费 {amount}，挂号完成。", "{amount} taken: registered."),
        "window.bad_method": ("请选择支付方式。", "Choose how the fee was paid."),
        "window.receipt_required": (
            "请填写收据号（1–40 个字符）。",
            "Enter the receipt number (1 to 40 characters).",
        ),
        "window.paid": (
            "已缴 {amount}（{method}，收据 {receipt}）",
            "Paid {amount} ({method}, receipt {receipt})",
        ),
        "window.paid_online": ("已缴 {amount}（{provider}）", "Paid {amount} ({provider})"),
        "window.print": ("打印凭条", "Print the slip"),
        "window.voucher_code": ("预约码", "Voucher code"),
        "window.voucher_hint": (
            "就诊当天凭二维码或预约码在自助机或分诊台报到。",
            "On the visit day, check in at a kiosk or the triage desk with the QR code or "
            "the voucher code.",
        ),
        "window.cancel": ("退号", "Cancel the registration"),
        "window.cancel_note": ("退号原因（可不填）", "Reason (optional)"),
        "window.cancel_button": ("确认退号", "Cancel it"),
        "window.gets_back_window": (
            "退号后应当场退还患者 {amount}（{method}）。",
            "Cancelling hands {amount} back to the patient here ({method}).",
        ),
        "window.gets_back_online": (
            "退号后 {amount} 原路退回{provider}。",
            "Cancelling sends {amount} back to the patient's {provider}.",
        ),
        "window.gets_back_nothing": (
            "尚未缴费，退号不涉及退款。",
            "Nothing was paid: cancelling refunds nothing.",
        ),
        "window.cancelled_ok": ("已退号。", "The registration is cancelled."),
        "window.cancel_requested": (
            "已过患者自行退号的截止时间：逾期退号申请已提交，值班主管批准后退号并按规则退费。",
            "Past the patients' deadline: the late cancellation is filed for a supervisor; "
            "it is cancelled and refunded by the rules once approved.",
        ),
        "window.reason_for_approval": (
            "已过退号截止时间，需主管审批：请在备注中写明退号原因（至少 2 个字）。",
            "Past the deadline a supervisor must approve: write the reason in the note "
            "(2 characters at least).",
        ),
        "window.refund_due": (
            "应退还患者 {amount}：请当场退还，并填写退费收据号。",
            "Hand {amount} back to the patient now, with the refund receipt number.",
        ),
        "window.refund_receipt": ("退费收据号（可不填）", "Refund receipt number (optional)"),
        "window.refund_button": ("已退还 {amount}", "{amount} handed back"),
        "window.refunded_ok": ("已退还 {amount}。", "{amount} handed back."),
        "window.refund_pending": (
            "{amount} 正在原路退回{provider}。",
            "{amount} is on its way back to the patient's {provider}.",
        ),
        "window.refunded": ("已退 {amount}", "Refunded {amount}"),
        "window.refunded_receipt": (
            "已退 {amount}（退费收据 {receipt}）",
            "Refunded {amount} (refund receipt {receipt})",
        ),
        "window.change": ("申请改约或更换就诊人", "Ask to move it or change the patient"),
        "window.change_hint": (
            "已预约的挂号，改约和更换就诊人需值班主管审批，批准后才生效并通知患者。",
            "A confirmed booking is moved or given to another patient only once a supervisor "
            "approves; the patient is told then.",
        ),
        "window.change_kind": ("申请内容", "What to change"),
        "window.move_to": (
            "改约到（同科室 {days} 天内有余号的出诊）",
            "Move to (sessions of the department with places in the next {days} days)",
        ),
        "window.no_move_targets": (
            "同科室近期没有可改约的出诊。",
            "No session of the department with places to move to soon.",
        ),
        "window.new_patient": (
            "新就诊人的证件号码、手机号或病历号",
            "The new patient's ID number, mobile number or medical record number",
        ),
        "window.change_reason": (
            "原因（必填，至少 2 个字）",
            "Reason (required, 2 characters at least)",
        ),
        "window.change_button": ("提交审批", "Ask a supervisor"),
        "window.change_requested": (
            "申请已提交，值班主管批准后生效。",
            "The request is filed: it takes effect once a supervisor approves.",
        ),
        "window.choose_target": ("请选择改约到的出诊。", "Choose the session to move to."),
        "window.new_patient_not_found": (
            "没有找到该就诊人，请先在窗口登记。",
            "No such patient: register them at the window first.",
        ),
        "window.new_patient_several": (
            "该手机号对应几位就诊人，请输入证件号码。",
            "That mobile number finds several patients: enter the ID number.",
        ),
        "window.masked_note": (
            "证件号码和手机号只显示部分。",
            "ID and mobile numbers are shown in part only.",
        ),
        "window.unmask": ("查看完整号码", "Show the full number"),
        "window.unmask_hint": (
            "完整号码只显示这一次，查看记录（含原因）写入审计日志。",
            "The full number is shown this once; who saw it and why goes to the audit trail.",
        ),
        "window.unmask_field": ("查看", "Show"),
        "window.unmask_reason": ("原因", "Reason"),
        "window.unmask_other": ("其他原因（请填写）", "Other reason (write it)"),
        "window.unmask_button": ("查看", "Show it"),
        "window.unmasked": ("完整{field}：", "Full {field}: "),
        "window.unmask_reason.card": ("核对患者证件", "Checking the patient's card"),
        "window.unmask_reason.patient_asks": (
            "患者本人要求核对",
            "The patient asks to check it",
        ),
        "window.unmask_reason.insurance": (
            "医保结算或发票需要",
            "Needed for insurance or an invoice",
        ),
        "window.unmask_reason.contact": (
            "需要联系患者",
            "The patient must be contacted",
        ),
    }
)


@dataclass(frozen=True)
class Visit:
    """One appointment of the patient as the window lists it, with its money."""

    view: AppointmentRead
    payment: payments.PaymentShown | None
    # The number the patient goes by: the booked one, or a walk-in's 现N.
    number: str = ""


@dataclass(frozen=True)
class Picker:
    """Where the registrar is in choosing a clinic: day → department → session → slot."""

    day: date
    department_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None


def _day(text: str | None, who: FloorVisitor) -> date | None:
    """The visit day asked for (today when none); None when it is not a date."""
    if not text:
        return who.today
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _picker(values: dict[str, str], who: FloorVisitor) -> Picker:
    day = _day(values.get("day"), who) or who.today
    return Picker(
        day=max(day, who.today),
        department_id=_uuid(values.get("department")),
        session_id=_uuid(values.get("session")),
    )


def _money(who: FloorVisitor, fen: int) -> str:
    return formatting.money(fen, who.locale)


def _qr(token: str) -> Markup:
    # Error correction "M" survives a creased slip; the border is the quiet zone scanners need.
    return Markup(segno.make(token, error="m").svg_inline(scale=4, border=4, dark="#111"))


async def _money_of(
    session: AsyncSession, appointment_id: uuid.UUID
) -> payments.PaymentShown | None:
    """The appointment's payment once money moved (an open, unpaid order is not shown)."""
    shown = await payments.payment_of(session, appointment_id=appointment_id)
    if shown is None or OrderState(shown.state) in (OrderState.CREATED, OrderState.CLOSED):
        return None
    return shown


async def _visits(session: AsyncSession, who: FloorVisitor, patient: Patient) -> list[Visit]:
    rows = await views.patient_appointments(
        session, hospital_id=who.hospital.id, patient_id=patient.id
    )
    found: list[Visit] = []
    walk_ins = await visit_service.walk_in_numbers(
        session, appointment_ids=[row.id for row in rows[:HISTORY_LIMIT]]
    )
    for row in rows[:HISTORY_LIMIT]:
        view = await views.appointment_view(
            session,
            appointment=row,
            voucher_signer=who.ctx.voucher_signer,
            locale=who.locale,
            caches=who.ctx.caches,
        )
        number = visit_service.number_label(
            row.sequence_number, walk_ins.get(row.id), locale=who.locale
        )
        found.append(Visit(view, await _money_of(session, row.id), number))
    return found


# The reasons the unmask form offers (each a sentence in both languages); "other" is typed.
UNMASK_REASONS = ("card", "patient_asks", "insurance", "contact")


async def _page(
    request: Request,
    who: FloorVisitor,
    *,
    patient_id: uuid.UUID | None = None,
    picker: Picker | None = None,
    found: list[Patient] | None = None,
    not_found: bool = False,
    register: dict[str, str] | None = None,
    existing_id: str | None = None,
    error: str | None = None,
    done: str | None = None,
    status: int = 200,
    unmasked: tuple[patient_rules.UnmaskField, str] | None = None,
    unmask_values: dict[str, str] | None = None,
) -> Response:
    actor = who.require(request, *WINDOW_ROLES)
    picker = picker or Picker(day=who.today)
    patient: Patient | None = None
    visits: list[Visit] = []
    sessions: list[listing.ListedSession] = []
    slots: list[listing.ListedSlot] = []
    chosen: listing.ListedSession | None = None
    async with who.ctx.db.read() as session:
        departments = await scheduling.active_departments(session, hospital_id=who.hospital.id)
        if patient_id is not None:
            patient = await patients.get_patient(
                session, hospital_id=who.hospital.id, patient_id=patient_id
            )
            visits = await _visits(session, who, patient)
            conn = await session.connection()
            hospital_rules = await listing.hospital_rules(
                conn, who.hospital.id, cache=who.ctx.reads.rules
            )
            if picker.department_id is not None:
                sessions = await listing.list_sessions(
                    conn,
                    hospital_id=who.hospital.id,
                    rules=hospital_rules,
                    channel=STAFF_CHANNEL,
                    start=picker.day,
                    end=picker.day,
                    now=who.now,
                    department_id=picker.department_id,
                )
            chosen = next((s for s in sessions if s.id == picker.session_id), None)
            if chosen is not None and chosen.bookable_now:
                listed = await listing.list_slots(
                    conn,
                    hospital_id=who.hospital.id,
                    rules=hospital_rules,
                    channel=STAFF_CHANNEL,
                    session_id=chosen.id,
                    now=who.now,
                )
                slots = [s for s in listed.slots if s.bookable_now]
    upcoming = [v for v in visits if v.view.session.date >= who.today and v.view.status in _ACTIVE]
    upcoming.sort(key=lambda v: (v.view.session.date, v.view.slot.start))
    past = [v for v in visits if v not in upcoming]
    response = render(
        request,
        who,
        "desk_window.html",
        status=status,
        patient=patient,
        age=patient_age(patient, who.today) if patient else None,
        upcoming=upcoming,
        past=past,
        picker=picker,
        departments=departments,
        sessions=sessions,
        chosen=chosen,
        slots=slots,
        found=found,
        not_found=not_found,
        register=register or {},
        existing_id=existing_id,
        id_types=list(patient_rules.IdType),
        sexes=list(patient_rules.Sex),
        error=error,
        done=done,
        money=lambda fen: _money(who, fen),
        can_unmask=actor.has_role(*staff_rules.UNMASKERS),
        unmask_fields=list(patient_rules.UnmaskField),
        unmask_reasons=UNMASK_REASONS,
        unmask_values=unmask_values or {},
        unmasked=unmasked,
    )
    if unmasked is not None:
        # A full number is for this screen only: neither the browser nor a proxy keeps it.
        response.headers["Cache-Control"] = "no-store"
    return response


def patient_age(patient: Patient, today: date) -> int:
    born = patient.birth_date
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@router.get(PATH, response_class=HTMLResponse)
async def window(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *WINDOW_ROLES)
    values = dict(request.query_params.items())
    patient_id = _uuid(values.get("patient"))
    if patient_id is not None and "department" not in values:
        # Opening a patient's page is a read of their data: logged (the picker's reloads,
        # which show nothing new of the patient, are not).
        chosen = patient_id

        async def read(session: AsyncSession) -> None:
            await patients.read_patient(
                session,
                actor=actor,
                patient_id=chosen,
                read="profile, visits",
                source=read_source(request),
                now=who.now,
            )

        await who.ctx.db.transact(read)
    done = who.t("window.registered") if values.get("done") == "registered" else None
    return await _page(request, who, patient_id=patient_id, picker=_picker(values, who), done=done)


@router.post(PATH + "/find", response_class=HTMLResponse)
async def find(request: Request, who: StaffDep) -> Response:
    """A POST, so the number typed stays out of addresses, histories and access logs."""
    actor = who.require(request, *WINDOW_ROLES)
    form = await form_of(request, who)
    query = form.get("q", "").strip()[:60]
    try:
        kind = patient_rules.lookup_kind(query)
        found = await who.ctx.db.transact(
            lambda session: _look_up(session, request, who, actor, query, by=kind.value)
        )
    except YuyueError as error:
        return await _page(request, who, error=error.detail(who.locale), status=error.status)
    if len(found) == 1:
        return redirect(f"{PATH}?patient={found[0].id}")
    if not found:
        # The register form starts from what was typed (the registrar's own input); a
        # record number is the hospital's, not something to register a person with.
        register = (
            {"phone": query}
            if kind is patient_rules.LookupKind.PHONE
            else {}
            if kind is patient_rules.LookupKind.RECORD_NUMBER
            else {
                "id_number": query,
                "id_type": patient_rules.IdType.RESIDENT_ID.value
                if kind is patient_rules.LookupKind.RESIDENT_ID
                else "",
            }
        )
        return await _page(request, who, not_found=True, register=register)
    return await _page(request, who, found=found)


async def _look_up(
    session: AsyncSession,
    request: Request,
    who: FloorVisitor,
    actor: Actor,
    query: str,
    *,
    by: str,
) -> list[Patient]:
    """The patients a search finds, each look-up logged with the patients found and the kind
    of search, never the number typed."""
    found = await patients.find_patients(
        session, hospital_id=who.hospital.id, cipher=who.ctx.cipher, query=query, today=who.today
    )
    record_read(
        session,
        actor=actor,
        kind=ReadKind.LOOKUP,
        patient_ids=[p.id for p in found],
        source=read_source(request),
        now=who.now,
        by=by,
        found=len(found),
    )
    return found


@router.post(PATH + "/patients/{patient_id}/unmask", response_class=HTMLResponse)
async def unmask(request: Request, who: StaffDep, patient_id: uuid.UUID) -> Response:
    """Shows the patient's identity number or phone in full, once, on the answer to this form
    (never in an address), with a reason chosen or typed; logged with it. Without a reason
    nothing is shown and nothing is logged."""
    actor = who.require(request, *WINDOW_ROLES)
    form = await form_of(request, who)
    values = {
        "field": form.get("field", ""),
        "reason": form.get("reason", ""),
        "other": form.get("other", "").strip()[: staff_rules.UNMASK_REASON_MAX],
    }
    try:
        field = patient_rules.UnmaskField(values["field"])
    except ValueError:
        field = patient_rules.UnmaskField.ID_NUMBER
    # A typed reason wins; a chosen one is recorded as its sentence.
    reason = values["other"]
    if not reason and values["reason"] in UNMASK_REASONS:
        reason = who.t(f"window.unmask_reason.{values['reason']}")

    async def work(session: AsyncSession) -> str:
        return await patients.unmask(
            session,
            actor=actor,
            cipher=who.ctx.cipher,
            patient_id=patient_id,
            field=field,
            reason=reason,
            source=read_source(request),
            now=who.now,
        )

    try:
        shown = await who.ctx.db.transact(work)
    except UnmaskReasonRequired as error:
        return await _page(
            request,
            who,
            patient_id=patient_id,
            error=error.detail(who.locale),
            status=error.status,
            unmask_values=values,
        )
    return await _page(request, who, patient_id=patient_id, unmasked=(field, shown))


_REGISTER_FIELDS = ("name", "id_type", "id_number", "phone", "birth_date", "sex")


@router.post(PATH + "/patients", response_class=HTMLResponse)
async def register_patient(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *WINDOW_ROLES)
    form = await form_of(request, who)
    values = {name: form.get(name, "").strip()[:60] for name in _REGISTER_FIELDS}

    async def refuse(message: str, status: int = 422, existing: str | None = None) -> Response:
        return await _page(
            request, who, register=values, existing_id=existing, error=message, status=status
        )

    try:
        id_type = patient_rules.IdType(values["id_type"] or patient_rules.IdType.RESIDENT_ID)
    except ValueError:
        return await refuse(who.t("page.field.id_type_invalid"))
    try:
        birth_date = date.fromisoformat(values["birth_date"]) if values["birth_date"] else None
    except ValueError:
        return await refuse(who.t("window.bad_birth_date"))
    try:
        sex = patient_rules.Sex(values["sex"]) if values["sex"] else None
    except ValueError:
        sex = None

    async def work(session: AsyncSession) -> Patient:
        policy, _ = await listing.policies(session, who.hospital.id)
        patient = await patients.register_patient(
            session,
            hospital_id=who.hospital.id,
            cipher=who.ctx.cipher,
            name=values["name"],
            id_type=id_type,
            id_number=values["id_number"],
            phone=values["phone"],
            account_phone=None,
            birth_date=birth_date,
            sex=sex,
            account_patients_max=policy.account_patients_max,
            today=who.today,
            now=who.now,
        )
        record_audit(
            session,
            actor=actor,
            action="patient.registered",
            entity_type="patient",
            entity_id=patient.id,
            before=None,
            after={
                "where": "window",
                "id_type": patient.id_type,
                "id_number": patient.id_masked,
                "phone": patient.phone_masked,
            },
            now=who.now,
        )
        return patient

    try:
        patient = await who.ctx.db.transact(work)
    except patients.PatientAlreadyRegistered as error:
        existing = error.values.get("patient_id")
        return await refuse(
            error.detail(who.locale), error.status, str(existing) if existing else None
        )
    except YuyueError as error:
        return await refuse(error.detail(who.locale), error.status)
    return redirect(f"{PATH}?patient={patient.id}&done=registered")


@router.post(PATH + "/book", response_class=HTMLResponse)
async def book(request: Request, who: StaffDep) -> Response:
    """Registers the patient for the chosen session (and slot, else the earliest free one)
    through booking's one booking path, as the window channel."""
    actor = who.require(request, *WINDOW_ROLES)
    form = await form_of(request, who)
    patient_id = _uuid(form.get("patient"))
    if patient_id is None:
        raise NotFound(what="patient")
    picker = _picker(form, who)
    session_id = picker.session_id
    slot_id = _uuid(form.get("slot"))
    if session_id is None:
        return await _page(
            request,
            who,
            patient_id=patient_id,
            picker=picker,
            error=who.t("window.choose_session"),
            status=422,
        )

    async def work(session: AsyncSession) -> uuid.UUID:
        await patients.get_patient(session, hospital_id=who.hospital.id, patient_id=patient_id)
        booked = await booking.book(
            session,
            actor=actor,
            patient_id=patient_id,
            session_id=session_id,
            slot_id=slot_id,
            now=who.ctx.clock.now(),
            caches=who.ctx.caches,
        )
        return booked.appointment.id

    try:
        appointment_id = await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _page(
            request,
            who,
            patient_id=patient_id,
            picker=picker,
            error=error.detail(who.locale),
            status=error.status,
        )
    who.ctx.places_taken(who.hospital.id, session_id)
    request_delivery(who.ctx)
    return redirect(f"{PATH}/appointments/{appointment_id}?done=booked")


# --- the slip: pay, print, cancel, refund ---------------------------------------------------


def _gets_back(who: FloorVisitor, payment: payments.PaymentShown | None) -> str:
    """What cancelling gives the patient back, said before the registrar confirms."""
    if payment is None or OrderState(payment.state) is not OrderState.PAID:
        return who.t("window.gets_back_nothing")
    amount = _money(who, payment.amount_fen)
    method = PayMethod(payment.method or PayMethod.CASH)
    route = payment_rules.refund_route(method, invoice_printed=payment.invoice_printed)
    if route is payment_rules.RefundRoute.ONLINE:
        return who.t(
            "window.gets_back_online", amount=amount, provider=who.t(f"provider.{payment.provider}")
        )
    return who.t("window.gets_back_window", amount=amount, method=who.t(f"method.{method.value}"))


_DONE = {"booked", "paid", "cancelled", "refunded", "requested", "change_requested"}


async def _move_targets(
    session: AsyncSession, who: FloorVisitor, current: uuid.UUID, department_id: uuid.UUID
) -> list[listing.ListedSession]:
    """Where a booking may be asked to move: the department's other sessions in the next
    days that the window could book now and that have places left. Whether the place is
    still there is decided again when the supervisor approves."""
    conn = await session.connection()
    hospital_rules = await listing.hospital_rules(conn, who.hospital.id, cache=who.ctx.reads.rules)
    found = await listing.list_sessions(
        conn,
        hospital_id=who.hospital.id,
        rules=hospital_rules,
        channel=STAFF_CHANNEL,
        start=who.today,
        end=who.today + timedelta(days=MOVE_DAYS),
        now=who.now,
        department_id=department_id,
    )
    return [s for s in found if s.id != current and s.bookable_now and s.remaining > 0]


async def _slip(
    request: Request,
    who: FloorVisitor,
    appointment_id: uuid.UUID,
    *,
    error: str | None = None,
    status: int = 200,
    done: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    who.require(request, *WINDOW_ROLES)
    async with who.ctx.db.read() as session:
        appointment = await booking.get_appointment(
            session, hospital_id=who.hospital.id, appointment_id=appointment_id
        )
        patient = await patients.get_patient(
            session, hospital_id=who.hospital.id, patient_id=appointment.patient_id
        )
        view = await views.appointment_view(
            session,
            appointment=appointment,
            voucher_signer=who.ctx.voucher_signer,
            locale=who.locale,
            caches=who.ctx.caches,
        )
        payment = await _money_of(session, appointment.id)
        number = await visit_service.patient_number(
            session,
            appointment_id=appointment.id,
            sequence_number=appointment.sequence_number,
            locale=who.locale,
        )
        targets = (
            await _move_targets(session, who, appointment.session_id, view.session.department.id)
            if view.status is AppointmentStatus.BOOKED
            else []
        )
    refund_state = RefundState(payment.refund_state) if payment and payment.refund_state else None
    done_text: str | None = None
    if done == "booked":
        done_text = (
            who.t(
                "window.booked_held",
                amount=_money(who, view.fee),
                at=formatting.local(view.hold_expires_at, who.hospital.timezone, who.locale),
            )
            if view.status is AppointmentStatus.HELD and view.hold_expires_at
            else who.t("window.booked_free")
        )
    elif done == "paid" and payment is not None:
        done_text = who.t("window.paid_ok", amount=_money(who, payment.amount_fen))
    elif done == "cancelled":
        done_text = who.t("window.cancelled_ok")
    elif done == "requested":
        done_text = who.t("window.cancel_requested")
    elif done == "change_requested":
        done_text = who.t("window.change_requested")
    elif done == "refunded" and payment is not None:
        done_text = who.t("window.refunded_ok", amount=_money(who, payment.refund_amount_fen or 0))
    return render(
        request,
        who,
        "desk_window_slip.html",
        status=status,
        a=view,
        number=number,
        patient=patient,
        payment=payment,
        refund_state=refund_state,
        # The money the window hands back: a refund waiting at the window, or an online
        # one that failed.
        refund_here=refund_state in (RefundState.AT_WINDOW, RefundState.FAILED),
        can_pay=view.status is AppointmentStatus.HELD and view.fee > 0,
        can_cancel=view.status in (AppointmentStatus.HELD, AppointmentStatus.BOOKED),
        gets_back=_gets_back(who, payment),
        can_request=view.status is AppointmentStatus.BOOKED,
        targets=targets,
        move_days=MOVE_DAYS,
        qr=_qr(view.voucher.token) if view.voucher else None,
        methods=WINDOW_METHODS,
        values=values or {},
        error=error,
        done=done_text,
        money=lambda fen: _money(who, fen),
    )


@router.get(PATH + "/appointments/{appointment_id}", response_class=HTMLResponse)
async def slip(request: Request, who: StaffDep, appointment_id: uuid.UUID) -> Response:
    actor = who.require(request, *WINDOW_ROLES)

    async def read(session: AsyncSession) -> None:
        # The slip shows the patient: a read of their data, logged.
        appointment = await booking.get_appointment(
            session, hospital_id=who.hospital.id, appointment_id=appointment_id
        )
        record_read(
            session,
            actor=actor,
            kind=ReadKind.RECORD,
            patient_ids=[appointment.patient_id],
            source=read_source(request),
            now=who.now,
            read="appointment",
            appointment_id=str(appointment.id),
        )

    await who.ctx.db.transact(read)
    done = request.query_params.get("done")
    return await _slip(request, who, appointment_id, done=done if done in _DONE else None)


@router.post(PATH + "/appointments/{appointment_id}/pay", response_class=HTMLResponse)
async def pay(request: Request, who: StaffDep, appointment_id: uuid.UUID) -> Response:
    actor = who.require(request, *WINDOW_ROLES)
    form = await form_of(request, who)
    values = {"method": form.get("method", ""), "receipt_no": form.get("receipt_no", "").strip()}
    try:
        method = PayMethod(values["method"])
        payment_rules.window_provider(method)
    except (ValueError, YuyueError):
        return await _slip(
            request,
            who,
            appointment_id,
            error=who.t("window.bad_method"),
            status=422,
            values=values,
        )
    receipt_no = values["receipt_no"]
    if not 1 <= len(receipt_no) <= RECEIPT_MAX:
        return await _slip(
            request,
            who,
            appointment_id,
            error=who.t("window.receipt_required"),
            status=422,
            values=values,
        )

    async def work(session: AsyncSession) -> None:
        await payments.pay_at_window(
            session,
            actor=actor,
            appointment_id=appointment_id,
            method=method,
            receipt_no=receipt_no,
            now=who.ctx.clock.now(),
        )

    try:
        await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _slip(
            request,
            who,
            appointment_id,
            error=error.detail(who.locale),
            status=error.status,
            values=values,
        )
    request_delivery(who.ctx)
    return redirect(f"{PATH}/appointments/{appointment_id}?done=paid")


@router.post(PATH + "/appointments/{appointment_id}/cancel", response_class=HTMLResponse)
async def cancel(request: Request, who: StaffDep, appointment_id: uuid.UUID) -> Response:
    """退号: before the patients' deadline the registrar cancels at once; after it, the
    cancellation is a request a supervisor approves (审批), filed here with the note as its
    reason. A paid fee is refunded by the payments rules (here at the window, or online)."""
    actor = who.require(request, *WINDOW_ROLES)
    form = await form_of(request, who)
    note = " ".join(form.get("note", "").split())[:NOTE_MAX] or None

    async def work(session: AsyncSession) -> uuid.UUID:
        cancelled = await booking.cancel(
            session,
            actor=actor,
            appointment_id=appointment_id,
            note=note,
            now=who.ctx.clock.now(),
            caches=who.ctx.caches,
        )
        return cancelled.session_id

    try:
        session_id = await who.ctx.db.transact(work)
    except booking_rules.ApprovalRequired:
        return await _request_late_cancel(request, who, actor, appointment_id, note)
    except YuyueError as error:
        return await _slip(
            request, who, appointment_id, error=error.detail(who.locale), status=error.status
        )
    await who.ctx.places_returned(who.hospital.id, session_id)
    request_delivery(who.ctx)
    request_refunds(who.ctx)
    return redirect(f"{PATH}/appointments/{appointment_id}?done=cancelled")


async def _request_late_cancel(
    request: Request, who: FloorVisitor, actor: Actor, appointment_id: uuid.UUID, note: str | None
) -> Response:
    async def ask(session: AsyncSession) -> None:
        await approvals.request_change(
            session,
            actor=actor,
            appointment_id=appointment_id,
            kind=booking_rules.ChangeKind.CANCEL_LATE,
            reason=note or "",
            now=who.ctx.clock.now(),
        )

    try:
        await who.ctx.db.transact(ask)
    except booking_rules.InvalidReason:
        return await _slip(
            request, who, appointment_id, error=who.t("window.reason_for_approval"), status=422
        )
    except YuyueError as error:
        return await _slip(
            request, who, appointment_id, error=error.detail(who.locale), status=error.status
        )
    return redirect(f"{PATH}/appointments/{appointment_id}?done=requested")


_CHANGE_KINDS = {
    booking_rules.ChangeKind.MOVE.value: booking_rules.ChangeKind.MOVE,
    booking_rules.ChangeKind.CHANGE_PATIENT.value: booking_rules.ChangeKind.CHANGE_PATIENT,
}


@router.post(PATH + "/appointments/{appointment_id}/change-request", response_class=HTMLResponse)
async def change_request(request: Request, who: StaffDep, appointment_id: uuid.UUID) -> Response:
    """Asks a supervisor to move a confirmed booking to another session or give it to
    another patient (审批); nothing changes until it is approved."""
    actor = who.require(request, *WINDOW_ROLES)
    form = await form_of(request, who)
    values = {
        "kind": form.get("kind", ""),
        "target": form.get("target", ""),
        "new_patient": form.get("new_patient", "").strip()[:60],
        "reason": " ".join(form.get("reason", "").split())[:NOTE_MAX],
    }

    async def refuse(message: str, status: int = 422) -> Response:
        return await _slip(
            request, who, appointment_id, error=message, status=status, values=values
        )

    kind = _CHANGE_KINDS.get(values["kind"])
    if kind is None:
        return await refuse(who.t("window.choose_target"))
    target = _uuid(values["target"]) if kind is booking_rules.ChangeKind.MOVE else None
    if kind is booking_rules.ChangeKind.MOVE and target is None:
        return await refuse(who.t("window.choose_target"))
    new_patient: uuid.UUID | None = None
    if kind is booking_rules.ChangeKind.CHANGE_PATIENT:
        query = values["new_patient"]
        try:
            by = patient_rules.lookup_kind(query).value
            found = await who.ctx.db.transact(
                lambda session: _look_up(session, request, who, actor, query, by=by)
            )
        except YuyueError as error:
            return await refuse(error.detail(who.locale), error.status)
        if not found:
            return await refuse(who.t("window.new_patient_not_found"), 404)
        if len(found) > 1:
            return await refuse(who.t("window.new_patient_several"))
        new_patient = found[0].id

    async def ask(session: AsyncSession) -> None:
        await approvals.request_change(
            session,
            actor=actor,
            appointment_id=appointment_id,
            kind=kind,
            reason=values["reason"],
            now=who.ctx.clock.now(),
            session_id=target,
            patient_id=new_patient,
        )

    try:
        await who.ctx.db.transact(ask)
    except YuyueError as error:
        return await refuse(error.detail(who.locale), error.status)
    return redirect(f"{PATH}/appointments/{appointment_id}?done=change_requested")


@router.post(PATH + "/appointments/{appointment_id}/refund", response_class=HTMLResponse)
async def refund(request: Request, who: StaffDep, appointment_id: uuid.UUID) -> Response:
    """The money handed back at the window, recorded with who did it and the receipt."""
    actor = who.require(request, *WINDOW_ROLES)
    form = await form_of(request, who)
    receipt_no = form.get("receipt_no", "").strip()
    if len(receipt_no) > RECEIPT_MAX:
        return await _slip(
            request, who, appointment_id, error=who.t("window.receipt_required"), status=422
        )

    async def work(session: AsyncSession) -> None:
        await booking.get_appointment(
            session, hospital_id=who.hospital.id, appointment_id=appointment_id
        )
        payment = await payments.payment_of(session, appointment_id=appointment_id)
        if payment is None or payment.refund_id is None:
            raise NotFound(what="refund")
        await payments.refund_at_window(
            session,
            actor=actor,
            refund_id=payment.refund_id,
            receipt_no=receipt_no or None,
            now=who.ctx.clock.now(),
        )

    try:
        await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _slip(
            request, who, appointment_id, error=error.detail(who.locale), status=error.status
        )
    request_delivery(who.ctx)
    return redirect(f"{PATH}/appointments/{appointment_id}?done=refunded")
