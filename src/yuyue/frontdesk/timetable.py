"""The scheduler's pages (排班): a department's week of sessions with the places of every
slot and pool, one session's places with extra places (加号), extra sessions (加诊), the
weekly timetable and generating its sessions, pool ratios and the booking policy, and the
departments' doctors with their levels and rooms.

Thin, like every floor page: each route finds who is at the screen, checks the form's shape
with the API's own schema, calls one scheduling or booking function inside one transaction
and renders or redirects; the rules (and their audit rows) are the services'. A refusal is a
sentence on the page and changes nothing. Stopping a clinic is the stop-clinic wizard's
(`frontdesk/stopclinic.py`); the week view links to it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import service as booking
from yuyue.frontdesk import apikeys, hospital_rules
from yuyue.frontdesk.pages import StaffDep
from yuyue.frontdesk.web import FloorVisitor, form_of, redirect, render
from yuyue.jobs import request_delivery
from yuyue.kit import i18n
from yuyue.kit.errors import NotFound
from yuyue.scheduling import rules
from yuyue.scheduling import service as scheduling
from yuyue.scheduling.enums import Channel, Period
from yuyue.scheduling.models import Department
from yuyue.scheduling.schemas import (
    BookingPolicyUpdate,
    DoctorUpdate,
    ExtraPlacesCreate,
    ExtraSessionCreate,
    PoolRatiosUpdate,
    TemplateCreate,
    TemplateUpdate,
)
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor
from yuyue.web.pagekit import FormFields, FormRefused, filled, with_query
from yuyue.web.pagekit import date_or_none as _date_or_none
from yuyue.web.pagekit import uuid_or_none as _uuid

router = APIRouter(include_in_schema=False)
# The administrator's channel keys sit among the scheduling pages (the console's settings).
router.include_router(apikeys.router)
# The hospital's visit, no-show and message rules sit among them too.
router.include_router(hospital_rules.router)
PREFIX = "/scheduling"
WEEK_PATH = PREFIX + "/week"
SESSIONS_PATH = PREFIX + "/sessions"
TEMPLATES_PATH = PREFIX + "/templates"
GENERATE_PATH = PREFIX + "/generate"
SETTINGS_PATH = PREFIX + "/settings"
DOCTORS_PATH = PREFIX + "/doctors"
STOP_CLINIC_PATH = "/desk/stop-clinic"
ROLES = (Role.SCHEDULER,)
PERIODS = tuple(Period)
# Pools in the order a scheduler reads them: the shared ones, then one per channel.
POOL_ORDER: tuple[str, ...] = (
    rules.APPOINTMENT,
    rules.ONSITE,
    rules.RESERVED,
    *(c.value for c in Channel),
)
# How far ahead the generate form offers weeks.
WEEKS_OFFERED = 8

i18n.register(
    {
        "console.entry.timetable": ("排班周视图", "Week of sessions"),
        "console.entry.timetable_hint": (
            "按科室查看一周的出诊和每个时段、每个号源池的号源；加号、加诊、停诊。",
            "A department's week of sessions with the places of every slot and pool; "
            "add places, add a session, stop a clinic.",
        ),
        "console.entry.templates": ("排班模板", "Weekly timetable"),
        "console.entry.templates_hint": (
            "科室的每周排班（医生 × 星期 × 时段），并据此生成下周的出诊。",
            "A department's weekly timetable (doctor × weekday × period), and generating "
            "next week's sessions from it.",
        ),
        "console.entry.scheduling_settings": ("号源比例与预约规则", "Pools and booking rules"),
        "console.entry.scheduling_settings_hint": (
            "预约、现场、预留及各渠道号源比例；放号时间、截止时间、退号时限、锁号时长和限号。",
            "Shares of the appointment, on-site, reserved and channel pools; release, "
            "cut-off, cancellation deadline, hold time and limits.",
        ),
        "console.entry.doctors": ("科室与医生", "Departments and doctors"),
        "console.entry.doctors_hint": (
            "各科室的医生、号别、职称和诊室；新增医生，调整号别和诊室，停用医生。",
            "Each department's doctors with level, title and room; add a doctor, change "
            "their level and room, deactivate them.",
        ),
        "console.entry.departments": ("科室管理", "Departments"),
        "console.entry.departments_hint": (
            "新增科室，修改名称、位置、年龄和性别限制及就诊须带，停用科室。",
            "Add a department; change its name, location, age and sex rules and what to "
            "bring; deactivate it.",
        ),
        "sched.area": ("排班", "Scheduling"),
        "sched.nav.week": ("周视图", "Week"),
        "sched.nav.templates": ("排班模板", "Timetable"),
        "sched.nav.settings": ("号源与预约规则", "Pools and rules"),
        "sched.nav.doctors": ("科室与医生", "Doctors"),
        "sched.department": ("科室", "Department"),
        "sched.no_departments": ("医院还没有科室。", "The hospital has no departments yet."),
        "sched.show": ("查看", "Show"),
        "sched.week_of": ("{start} – {end}", "{start} – {end}"),
        "sched.week_day": ("任一天", "Any day of the week"),
        "sched.previous": ("← 上一周", "← Previous week"),
        "sched.this_week": ("本周", "This week"),
        "sched.next": ("下一周 →", "Next week →"),
        "sched.week.title": ("出诊周视图", "Week of sessions"),
        "sched.week.empty": (
            "这一周没有出诊。可在排班模板中生成，或在下方加诊。",
            "No sessions this week. Generate them from the timetable, or add one below.",
        ),
        "sched.week.legend": (
            "号源：已约 / 锁号（待缴费或候补待确认）/ 余号；三者之和为总号数。",
            "Places: booked / held (awaiting payment or a waitlist answer) / free; the three "
            "add up to the places.",
        ),
        "sched.department_clinic": ("普通门诊", "Department clinic"),
        "sched.status.open": ("出诊", "Open"),
        "sched.status.stopped": ("已停诊", "Stopped"),
        "sched.extra": ("加诊", "Extra clinic"),
        "sched.places": (
            "已约 {booked} · 锁号 {held} · 余 {free} / 共 {capacity}",
            "{booked} booked · {held} held · {free} free of {capacity}",
        ),
        "sched.open_session": ("号源详情", "Places"),
        "sched.stop": ("停诊…", "Stop…"),
        "sched.add_session": ("加诊", "Add a session (加诊)"),
        "sched.add_session_hint": (
            "在排班之外增加一次出诊，患者端显示为“加诊”。",
            "A session outside the timetable, shown to patients as an extra clinic.",
        ),
        "sched.doctor": ("医生", "Doctor"),
        "sched.date": ("日期", "Date"),
        "sched.period": ("时段", "Period"),
        "sched.start": ("开始（可不填）", "Starts (optional)"),
        "sched.end": ("结束（可不填）", "Ends (optional)"),
        "sched.capacity": ("号数", "Places"),
        "sched.slot_minutes": ("每时段分钟", "Minutes per slot"),
        "sched.level": ("号别", "Level"),
        "sched.level_of_doctor": ("按医生号别", "The doctor's level"),
        "sched.room": ("诊室", "Room"),
        "sched.weekday": ("星期", "Weekday"),
        "sched.create_session": ("加诊", "Add the session"),
        "sched.done.extra_session": (
            "已加诊：{date} {period}，{capacity} 个号。",
            "Extra session added: {date} {period}, {capacity} places.",
        ),
        "sched.done.extra_places": (
            "已加号 {count} 个；候补的患者优先获得。",
            "{count} places added; patients on the waitlist are offered them first.",
        ),
        "sched.session.title": ("出诊号源", "Places of a session"),
        "sched.session.back": ("返回周视图", "Back to the week"),
        "sched.session.pools": ("各号源池", "By pool"),
        "sched.session.slots": ("各时段", "By slot"),
        "sched.session.pool": ("号源池", "Pool"),
        "sched.session.capacity": ("总号数", "Places"),
        "sched.session.booked": ("已约", "Booked"),
        "sched.session.held": ("锁号", "Held"),
        "sched.session.free": ("余号", "Free"),
        "sched.session.time": ("时段", "Time"),
        "sched.session.cell": ("已约/锁号/余号", "booked/held/free"),
        "sched.session.extra_pool": ("（加号）", "(extra)"),
        "sched.session.stopped": ("已停诊：{reason}", "Stopped: {reason}"),
        "sched.extra_places": ("加号", "Add places (加号)"),
        "sched.extra_places_hint": (
            "新号排在已有号之后，候补的患者优先获得。",
            "New places are numbered after the existing ones; the waitlist gets them first.",
        ),
        "sched.count": ("加号数量", "How many"),
        "sched.pool": ("号源池", "Pool"),
        "sched.slot": ("时段", "Slot"),
        "sched.last_slot": ("最后一个时段", "The last slot"),
        "sched.add_places": ("加号", "Add the places"),
        "pool.appointment": ("预约（各渠道共用）", "Appointments (shared by channels)"),
        "pool.onsite": ("现场", "On-site"),
        "pool.reserved": ("预留（复诊、转诊、绿色通道）", "Reserved (return, referral, green)"),
        "pool.app": ("App", "App"),
        "pool.wechat": ("微信", "WeChat"),
        "pool.alipay": ("支付宝", "Alipay"),
        "pool.web": ("网站", "Website"),
        "pool.kiosk": ("自助机", "Kiosk"),
        "pool.phone": ("电话", "Phone"),
        "pool.community": ("社区转诊", "Community referral"),
        "pool.window": ("挂号窗口", "Window"),
        "weekday.0": ("周一", "Mon"),
        "weekday.1": ("周二", "Tue"),
        "weekday.2": ("周三", "Wed"),
        "weekday.3": ("周四", "Thu"),
        "weekday.4": ("周五", "Fri"),
        "weekday.5": ("周六", "Sat"),
        "weekday.6": ("周日", "Sun"),
        # the weekly timetable
        "sched.templates.title": ("每周排班模板", "Weekly timetable"),
        "sched.templates.empty": ("该科室还没有排班。", "The department has no timetable yet."),
        "sched.templates.grid": ("一周概览", "The week at a glance"),
        "sched.templates.rows": ("排班明细", "Rows"),
        "sched.templates.cell": ("{period} {capacity}号", "{period} {capacity}"),
        "sched.templates.hours": ("时间", "Hours"),
        "sched.save": ("保存", "Save"),
        "sched.remove": ("删除", "Remove"),
        "sched.templates.add": ("新增排班", "Add a row"),
        "sched.templates.add_button": ("加入排班", "Add to the timetable"),
        "sched.templates.change_hint": (
            "修改或删除后，已生成且无人预约的出诊在下次生成时随之更新；已有预约的出诊保持不变，"
            "如需取消请停诊。",
            "After a change, sessions already generated that nobody has booked follow at "
            "the next generation; booked ones stay as they are (stop them to cancel).",
        ),
        "sched.generate": ("生成出诊", "Generate sessions"),
        "sched.generate_hint": (
            "按全院排班生成所选一周的出诊（已过去的日期除外）。可重复执行：已有出诊不会重复生成。",
            "Creates the chosen week's sessions from the whole hospital's timetable (past "
            "days excepted). Safe to repeat: existing sessions are not created twice.",
        ),
        "sched.generate_week": ("周", "Week"),
        "sched.generate_button": ("生成", "Generate"),
        "sched.done.generated": (
            "已生成 {start} – {end} 的出诊：新建 {created} 个，按新排班更新 {rebuilt} 个，"
            "无变化 {unchanged} 个，因已有预约或已停诊保持原样 {kept} 个。",
            "Sessions for {start} – {end}: {created} created, {rebuilt} rebuilt to the new "
            "timetable, {unchanged} unchanged, {kept} kept as they were (booked or stopped).",
        ),
        "sched.see_week": ("查看这一周", "See that week"),
        "sched.done.template_added": ("已加入排班。", "Added to the timetable."),
        "sched.done.template_changed": ("已保存排班。", "The row is saved."),
        "sched.done.template_removed": (
            "已删除该排班：撤下 {withdrawn} 个无人预约的出诊；{kept} 个已有预约的出诊保留，"
            "如需取消请停诊。",
            "Row removed: {withdrawn} unbooked sessions withdrawn; {kept} booked sessions "
            "kept (stop them to cancel).",
        ),
        # pools and rules
        "sched.settings.title": ("号源比例与预约规则", "Pools and booking rules"),
        "sched.scope": ("适用范围", "Applies to"),
        "sched.scope.hospital": ("全院", "The whole hospital"),
        "sched.ratios": ("号源比例（%）", "Pool shares (%)"),
        "sched.ratios_hint": (
            "合计须为 100。之后生成的出诊按此比例分配号源；"
            "已生成且无人预约的出诊在重新生成时更新。",
            "They must add up to 100. Sessions generated from now on are split this way; "
            "unbooked sessions already generated follow when generated again.",
        ),
        "sched.ratios.from.department": ("本科室的设置", "This department's own shares"),
        "sched.ratios.from.hospital": ("沿用全院设置", "The hospital's shares"),
        "sched.ratios.from.default": ("系统默认（尚未设置）", "The defaults (none saved yet)"),
        "sched.ratios.total": ("当前合计 {total}%", "Total now {total}%"),
        "sched.save_ratios": ("保存比例", "Save the shares"),
        "sched.policy": ("预约规则", "Booking rules"),
        "sched.policy.from.department": (
            "本科室单独的规则",
            "This department's own rules",
        ),
        "sched.policy.from.hospital": (
            "沿用全院规则；保存后成为本科室单独的规则",
            "The hospital's rules; saving makes them this department's own",
        ),
        "sched.policy.blank_keeps": (
            "留空的项保持原值。",
            "A field left empty keeps its value.",
        ),
        "sched.save_policy": ("保存规则", "Save the rules"),
        "sched.done.ratios": ("号源比例已保存。", "The pool shares are saved."),
        "sched.done.policy": ("预约规则已保存。", "The booking rules are saved."),
        "sched.bad_number": (
            "比例须为 0 到 100 的整数：{pool}",
            "Shares must be whole numbers from 0 to 100: {pool}",
        ),
        "policy.release_days_ahead": ("提前放号天数", "Days released ahead"),
        "policy.release_time": ("每日放号时间", "Daily release time"),
        "policy.advance_cutoff_time": ("预约截止时间（前一日）", "Advance cut-off (day before)"),
        "policy.same_day_booking": ("允许当日预约", "Same-day booking"),
        "policy.same_day_open_time": ("当日预约开放时间", "Same-day booking opens"),
        "policy.same_day_cutoff_minutes": (
            "当日预约截止（开诊前分钟）",
            "Same-day cut-off (minutes before start)",
        ),
        "policy.cancel_days_before": ("退号须提前天数", "Cancel up to days before"),
        "policy.cancel_deadline_time": ("退号截止时间", "Cancellation deadline time"),
        "policy.hold_minutes": ("锁号时长（分钟）", "Hold time (minutes)"),
        "policy.limit_per_doctor_per_day": (
            "每人每天同一医生限号",
            "Per patient: same doctor a day",
        ),
        "policy.limit_per_department_per_day": (
            "每人每天同一科室限号",
            "Per patient: same department a day",
        ),
        "policy.limit_per_day": ("每人每天限号", "Per patient a day"),
        "policy.limit_per_7_days": ("每人 7 天限号", "Per patient in 7 days"),
        "policy.limit_per_90_days": ("每人 90 天限号", "Per patient in 90 days"),
        "policy.limit_active": ("每人未就诊预约上限", "Open bookings per patient"),
        "policy.account_patients_max": ("每个账号就诊人上限", "Patients per account"),
        "policy.waitlist_enabled": ("开放候补", "Waitlist open"),
        "policy.waitlist_closes_minutes": (
            "候补截止（开诊前分钟）",
            "Waitlist closes (minutes before)",
        ),
        "policy.waitlist_offer_minutes": ("候补确认时限（分钟）", "Waitlist answer (minutes)"),
        "policy.waitlist_max_active": ("每人候补上限", "Waitlist lines per patient"),
        "policy.reserved_release_time": (
            "预留号转现场时间（就诊日）",
            "Reserved places go on-site at",
        ),
        # departments and doctors
        "sched.doctors.title": ("科室与医生", "Departments and doctors"),
        "sched.location": ("位置", "Location"),
        "sched.code": ("工号", "Code"),
        "sched.name": ("姓名", "Name"),
        "sched.title": ("职称", "Title"),
        "sched.rooms": ("诊室", "Rooms"),
        "sched.no_room": ("未设置", "Not set"),
        "sched.no_doctors": ("该科室没有出诊医生。", "No doctors in this department."),
        "sched.room_keep": ("留空则不改", "Empty keeps the rooms"),
        "sched.doctors.hint": (
            "诊室取自医生的排班。调整号别后，该医生原号别的排班随之调整；已有预约的出诊费用不变。",
            "Rooms come from the doctor's timetable. A new level moves the doctor's rows of "
            "the old level with it; sessions already booked keep their fee.",
        ),
        "sched.done.doctor": ("已保存 {name} 的号别和诊室。", "Saved {name}'s level and room."),
        "sched.field.level_code": ("号别", "level"),
        "sched.field.doctor_id": ("医生", "doctor"),
        "sched.field.department_id": ("科室", "department"),
        "sched.field.weekday": ("星期", "weekday"),
        "sched.field.period": ("时段", "period"),
        "sched.field.date": ("日期", "date"),
        "sched.field.start": ("开始时间", "start"),
        "sched.field.end": ("结束时间（须晚于开始）", "end (after the start)"),
        "sched.field.capacity": ("号数（1–500）", "places (1–500)"),
        "sched.field.slot_minutes": ("每时段分钟（5–240）", "minutes per slot (5–240)"),
        "sched.field.room": ("诊室（最多 100 字）", "room (at most 100 characters)"),
        "sched.field.count": ("加号数量（1–100）", "how many (1–100)"),
        "sched.field.pool": ("号源池", "pool"),
        "sched.field.slot_id": ("时段", "slot"),
        "sched.field.week": ("周", "week"),
        "sched.field.ratios": ("号源比例（0–100）", "shares (0–100)"),
    }
)
# A refused policy field is named as the form labels it.
for _field in scheduling.POLICY_FIELDS:
    i18n.register(
        {
            f"sched.field.{_field}": (
                i18n.translate(f"policy.{_field}", "zh-CN"),
                i18n.translate(f"policy.{_field}", "en"),
            )
        }
    )


# --- what the pages read from the form and the query --------------------------------------


class BadForm(Exception):
    """A form that does not have the shape the API's schema asks for: 422, nothing done."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def monday_of(text: str | None, today: date) -> date:
    """The Monday of the week a date (or an ISO week, 2026-W48) falls in; this week's for
    anything else."""
    day = today
    if text:
        try:
            if "-W" in text:
                year, week = text.split("-W", 1)
                day = date.fromisocalendar(int(year), int(week), 1)
            else:
                day = date.fromisoformat(text)
        except ValueError:
            day = today
    return day - timedelta(days=day.weekday())


# The scheduling pages name a field in an error by `sched.field.*`; a problem of the form as
# a whole is the times' (an end before the start).
FIELDS = FormFields("sched.field", whole_form="end")


async def _departments(
    session: AsyncSession, who: FloorVisitor, chosen: str | None
) -> tuple[list[Department], Department | None]:
    """The hospital's departments and the one asked for (the first when none or another
    hospital's is asked for)."""
    departments = await scheduling.active_departments(session, hospital_id=who.hospital.id)
    wanted = _uuid(chosen)
    for department in departments:
        if department.id == wanted:
            return departments, department
    return departments, departments[0] if departments else None


# --- the week view -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Places:
    """Places of one pool (or of all, `pool` empty): booked + held + free = capacity."""

    pool: str
    capacity: int
    booked: int
    held: int
    is_extra: bool = False

    @property
    def free(self) -> int:
        return self.capacity - self.booked - self.held


def _sum(pool: str, parts: Sequence[Places]) -> Places:
    return Places(
        pool,
        sum(p.capacity for p in parts),
        sum(p.booked for p in parts),
        sum(p.held for p in parts),
        any(p.is_extra for p in parts),
    )


def _pool_key(pool: str) -> tuple[int, str]:
    return (POOL_ORDER.index(pool) if pool in POOL_ORDER else len(POOL_ORDER), pool)


@dataclass(frozen=True, slots=True)
class SlotPlaces:
    slot_id: uuid.UUID
    start: time
    end: time
    # One entry per pool the session has (None where this slot has no place of it).
    pools: list[Places | None]


@dataclass(frozen=True, slots=True)
class Card:
    """One session as the scheduler's pages show it."""

    item: scheduling.WeekSession
    total: Places
    pools: list[Places]
    slots: list[SlotPlaces]

    @property
    def clinic(self) -> Any:
        return self.item.clinic


def card_of(item: scheduling.WeekSession, held: Mapping[uuid.UUID, int]) -> Card:
    rows = [
        (
            p,
            Places(
                p.pool,
                p.capacity,
                p.taken - held.get(p.pool_id, 0),
                held.get(p.pool_id, 0),
                p.is_extra,
            ),
        )
        for p in item.pools
    ]
    names = sorted({p.pool for p, _ in rows}, key=_pool_key)
    by_pool = [_sum(name, [places for p, places in rows if p.pool == name]) for name in names]
    slots: dict[uuid.UUID, tuple[time, time, dict[str, list[Places]]]] = {}
    for p, places in rows:
        slots.setdefault(p.slot_id, (p.slot_start, p.slot_end, {}))[2].setdefault(
            p.pool, []
        ).append(places)
    slot_rows = [
        SlotPlaces(
            slot_id,
            start,
            end,
            [_sum(name, found[name]) if name in found else None for name in names],
        )
        for slot_id, (start, end, found) in sorted(slots.items(), key=lambda kv: kv[1][0])
    ]
    return Card(item, _sum("", [places for _, places in rows]), by_pool, slot_rows)


async def _cards(
    session: AsyncSession, who: FloorVisitor, items: Sequence[scheduling.WeekSession]
) -> list[Card]:
    held = await booking.held_places(
        session, hospital_id=who.hospital.id, session_ids=[i.clinic.id for i in items]
    )
    return [card_of(item, held) for item in items]


async def _week_page(
    request: Request,
    who: FloorVisitor,
    *,
    department_text: str | None,
    week_text: str | None,
    error: str | None = None,
    status: int = 200,
    form: Mapping[str, str] | None = None,
) -> Response:
    who.require(request, *ROLES)
    monday = monday_of(week_text, who.today)
    async with who.ctx.db.read() as session:
        departments, department = await _departments(session, who, department_text)
        cards: list[Card] = []
        doctors: list[Any] = []
        if department is not None:
            items = await scheduling.week_sessions(
                session, hospital_id=who.hospital.id, department_id=department.id, start=monday
            )
            cards = await _cards(session, who, items)
            doctors = await scheduling.department_doctors(
                session, hospital_id=who.hospital.id, department_id=department.id
            )
        levels = await scheduling.levels(session, hospital_id=who.hospital.id)
    days = [monday + timedelta(days=n) for n in range(7)]
    grid = {
        (period.value, day): [
            c for c in cards if c.clinic.date == day and c.clinic.period == period
        ]
        for period in PERIODS
        for day in days
    }
    done = _done_sentence(request, who)
    return render(
        request,
        who,
        "scheduling_week.html",
        status=status,
        error=error,
        done=done,
        departments=departments,
        department=department,
        monday=monday,
        days=days,
        periods=PERIODS,
        grid=grid,
        cards=cards,
        doctors=doctors,
        levels=levels,
        form=form or {},
        nav="week",
        hhmm=_hhmm,
        stop_path=STOP_CLINIC_PATH,
        timedelta_week=timedelta(weeks=1),
        week_link=lambda d: with_query(
            WEEK_PATH, department=department.id if department else None, week=d.isoformat()
        ),
    )


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def _done_sentence(request: Request, who: FloorVisitor) -> str | None:
    """The sentence for a `done=` redirect: only known outcomes with plain values."""
    q = request.query_params
    done = q.get("done")
    numbers = {k: v for k, v in q.items() if v.isdigit()}
    if done == "extra_session" and "capacity" in numbers:
        when = _date_or_none(q.get("date"))
        period = q.get("period", "")
        if when is not None and period in {p.value for p in PERIODS}:
            return who.t(
                "sched.done.extra_session",
                date=i18n.format_day(when, who.locale),
                period=who.t(f"period.{period}"),
                capacity=numbers["capacity"],
            )
    if done == "extra_places" and "count" in numbers:
        return who.t("sched.done.extra_places", count=numbers["count"])
    if done in ("template_added", "template_changed", "ratios", "policy"):
        return who.t(f"sched.done.{done}")
    if done == "template_removed" and {"withdrawn", "kept"} <= set(numbers):
        return who.t(
            "sched.done.template_removed", withdrawn=numbers["withdrawn"], kept=numbers["kept"]
        )
    return None


@router.get(WEEK_PATH, response_class=HTMLResponse)
async def week_view(request: Request, who: StaffDep) -> Response:
    return await _week_page(
        request,
        who,
        department_text=request.query_params.get("department"),
        week_text=request.query_params.get("week"),
    )


@router.post(SESSIONS_PATH, response_class=HTMLResponse)
async def add_extra_session(request: Request, who: StaffDep) -> Response:
    """加诊: a session outside the timetable for a doctor (or the department), day and
    period."""
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    department_text, week_text = form.get("department"), form.get("week")
    try:
        body = FIELDS.validated(
            who,
            ExtraSessionCreate,
            {
                "department_id": form.get("department", ""),
                **filled(form, ("doctor_id", "level_code", "date", "period", "start", "end")),
                **filled(form, ("capacity", "slot_minutes", "room")),
            },
        )
        default_start, default_end = rules.DEFAULT_PERIOD_HOURS[body.period]

        async def work(session: AsyncSession) -> None:
            level_id = await scheduling.resolve_level(
                session,
                hospital_id=actor.hospital_id,
                level_code=body.level_code,
                doctor_id=body.doctor_id,
            )
            await scheduling.add_extra_session(
                session,
                actor=actor,
                shape=scheduling.SessionShape(
                    department_id=body.department_id,
                    doctor_id=body.doctor_id,
                    level_id=level_id,
                    date=body.date,
                    period=body.period,
                    start_time=body.start or default_start,
                    end_time=body.end or default_end,
                    capacity=body.capacity,
                    slot_minutes=body.slot_minutes,
                    room=body.room,
                ),
                today=who.today,
                now=who.ctx.clock.now(),
            )

        await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _week_page(
            request,
            who,
            department_text=department_text,
            week_text=week_text,
            error=refused.sentence,
            status=refused.status,
            form=form,
        )
    return redirect(
        with_query(
            WEEK_PATH,
            department=body.department_id,
            week=body.date.isoformat(),
            done="extra_session",
            date=body.date.isoformat(),
            period=body.period.value,
            capacity=body.capacity,
        )
    )


# --- one session's places, extra places (加号) ----------------------------------------------


async def _session_page(
    request: Request,
    who: FloorVisitor,
    session_id: uuid.UUID,
    *,
    error: str | None = None,
    status: int = 200,
    form: Mapping[str, str] | None = None,
) -> Response:
    who.require(request, *ROLES)
    async with who.ctx.db.read() as session:
        item = await scheduling.session_places(
            session, hospital_id=who.hospital.id, session_id=session_id
        )
        if item is None:
            raise NotFound(what="session")
        [card] = await _cards(session, who, [item])
        departments = await scheduling.active_departments(session, hospital_id=who.hospital.id)
    department = next((d for d in departments if d.id == item.clinic.department_id), None)
    return render(
        request,
        who,
        "scheduling_session.html",
        status=status,
        error=error,
        done=_done_sentence(request, who),
        card=card,
        department=department,
        pools=POOL_ORDER,
        form=form or {},
        nav="week",
        hhmm=_hhmm,
        stop_path=STOP_CLINIC_PATH,
        week_path=with_query(
            WEEK_PATH,
            department=item.clinic.department_id,
            week=item.clinic.date.isoformat(),
        ),
    )


@router.get(SESSIONS_PATH + "/{session_id}", response_class=HTMLResponse)
async def session_view(request: Request, who: StaffDep, session_id: uuid.UUID) -> Response:
    return await _session_page(request, who, session_id)


@router.post(SESSIONS_PATH + "/{session_id}/extra-places", response_class=HTMLResponse)
async def add_extra_places(request: Request, who: StaffDep, session_id: uuid.UUID) -> Response:
    """加号 through booking's service, which offers the new places to the waitlist first."""
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    try:
        body = FIELDS.validated(who, ExtraPlacesCreate, filled(form, ("count", "pool", "slot_id")))

        async def work(session: AsyncSession) -> None:
            await booking.add_extra_places(
                session,
                actor=actor,
                session_id=session_id,
                count=body.count,
                pool=body.pool,
                slot_id=body.slot_id,
                now=who.ctx.clock.now(),
            )

        await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _session_page(
            request, who, session_id, error=refused.sentence, status=refused.status, form=form
        )
    # As the API does: sold-out answers end, and offers to the waitlist go out now.
    await who.ctx.places_returned(who.hospital.id, session_id)
    request_delivery(who.ctx)
    return redirect(
        with_query(f"{SESSIONS_PATH}/{session_id}", done="extra_places", count=body.count)
    )


# --- the weekly timetable and generating sessions ------------------------------------------


def _weeks_offered(today: date) -> list[date]:
    monday = monday_of(None, today)
    return [monday + timedelta(weeks=n) for n in range(WEEKS_OFFERED)]


async def _templates_page(
    request: Request,
    who: FloorVisitor,
    *,
    department_text: str | None,
    error: str | None = None,
    status: int = 200,
    form: Mapping[str, str] | None = None,
    failed_row: uuid.UUID | None = None,
) -> Response:
    who.require(request, *ROLES)
    async with who.ctx.db.read() as session:
        departments, department = await _departments(session, who, department_text)
        rows: list[scheduling.TemplateRow] = []
        doctors: list[Any] = []
        if department is not None:
            rows = await scheduling.department_templates(
                session, hospital_id=who.hospital.id, department_id=department.id
            )
            doctors = await scheduling.department_doctors(
                session, hospital_id=who.hospital.id, department_id=department.id
            )
        levels = await scheduling.levels(session, hospital_id=who.hospital.id)
    # The overview: one line per doctor (and one for the department clinic), a column per
    # weekday.
    people: dict[str, dict[int, list[scheduling.TemplateRow]]] = {}
    for row in rows:
        name = row.doctor_name or ""
        people.setdefault(name, {}).setdefault(row.template.weekday, []).append(row)
    q = request.query_params
    generated = None
    if q.get("done") == "generated" and all(
        q.get(k, "").isdigit() for k in ("created", "rebuilt", "unchanged", "kept")
    ):
        week = _date_or_none(q.get("week"))
        if week is not None:
            generated = {
                "week": week,
                "sentence": who.t(
                    "sched.done.generated",
                    start=i18n.format_day(week, who.locale),
                    end=i18n.format_day(week + timedelta(days=6), who.locale),
                    created=q["created"],
                    rebuilt=q["rebuilt"],
                    unchanged=q["unchanged"],
                    kept=q["kept"],
                ),
            }
    return render(
        request,
        who,
        "scheduling_templates.html",
        status=status,
        error=error,
        done=_done_sentence(request, who),
        generated=generated,
        departments=departments,
        department=department,
        rows=rows,
        people=people,
        doctors=doctors,
        levels=levels,
        periods=PERIODS,
        weekdays=range(7),
        weeks=_weeks_offered(who.today),
        next_week=monday_of(None, who.today) + timedelta(weeks=1),
        form=form or {},
        failed_row=failed_row,
        nav="templates",
        hhmm=_hhmm,
        six_days=timedelta(days=6),
        week_link=lambda d: with_query(
            WEEK_PATH, department=department.id if department else None, week=d.isoformat()
        ),
    )


@router.get(TEMPLATES_PATH, response_class=HTMLResponse)
async def templates_view(request: Request, who: StaffDep) -> Response:
    return await _templates_page(
        request, who, department_text=request.query_params.get("department")
    )


@router.post(TEMPLATES_PATH, response_class=HTMLResponse)
async def add_template(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    department_text = form.get("department")
    try:
        body = FIELDS.validated(
            who,
            TemplateCreate,
            {
                "department_id": form.get("department", ""),
                "weekday": form.get("weekday", ""),
                **filled(form, ("doctor_id", "level_code", "period", "start", "end")),
                **filled(form, ("capacity", "slot_minutes", "room")),
            },
        )
        default_start, default_end = rules.DEFAULT_PERIOD_HOURS[body.period]

        async def work(session: AsyncSession) -> None:
            await scheduling.add_template(
                session,
                actor=actor,
                shape=scheduling.TemplateShape(
                    department_id=body.department_id,
                    doctor_id=body.doctor_id,
                    level_id=await scheduling.resolve_level(
                        session,
                        hospital_id=actor.hospital_id,
                        level_code=body.level_code,
                        doctor_id=body.doctor_id,
                    ),
                    weekday=body.weekday,
                    period=body.period,
                    start_time=body.start or default_start,
                    end_time=body.end or default_end,
                    capacity=body.capacity,
                    slot_minutes=body.slot_minutes,
                    room=body.room,
                ),
                now=who.ctx.clock.now(),
            )

        await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _templates_page(
            request,
            who,
            department_text=department_text,
            error=refused.sentence,
            status=refused.status,
            form=form,
        )
    return redirect(
        with_query(TEMPLATES_PATH, department=body.department_id, done="template_added")
    )


@router.post(TEMPLATES_PATH + "/{template_id}", response_class=HTMLResponse)
async def change_template(request: Request, who: StaffDep, template_id: uuid.UUID) -> Response:
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    department_text = form.get("department")
    try:
        body = FIELDS.validated(
            who,
            TemplateUpdate,
            filled(form, ("level_code", "period", "start", "end", "capacity", "slot_minutes"))
            | {"room": form.get("room", "").strip()},
        )
        default_start, default_end = rules.DEFAULT_PERIOD_HOURS[body.period]

        async def work(session: AsyncSession) -> None:
            await scheduling.update_template(
                session,
                actor=actor,
                template_id=template_id,
                change=scheduling.TemplateChange(
                    level_id=await scheduling.resolve_level(
                        session,
                        hospital_id=actor.hospital_id,
                        level_code=body.level_code,
                        doctor_id=None,
                    ),
                    period=body.period,
                    start_time=body.start or default_start,
                    end_time=body.end or default_end,
                    capacity=body.capacity,
                    slot_minutes=body.slot_minutes,
                    room=body.room,
                ),
                now=who.ctx.clock.now(),
            )

        await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _templates_page(
            request,
            who,
            department_text=department_text,
            error=refused.sentence,
            status=refused.status,
            failed_row=template_id,
        )
    return redirect(with_query(TEMPLATES_PATH, department=department_text, done="template_changed"))


@router.post(TEMPLATES_PATH + "/{template_id}/remove", response_class=HTMLResponse)
async def remove_template(request: Request, who: StaffDep, template_id: uuid.UUID) -> Response:
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    department_text = form.get("department")

    async def work(session: AsyncSession) -> scheduling.Withdrawal:
        return await scheduling.remove_template(
            session,
            actor=actor,
            template_id=template_id,
            today=who.today,
            now=who.ctx.clock.now(),
        )

    try:
        withdrawal = await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _templates_page(
            request,
            who,
            department_text=department_text,
            error=refused.sentence,
            status=refused.status,
        )
    return redirect(
        with_query(
            TEMPLATES_PATH,
            department=department_text,
            done="template_removed",
            withdrawn=withdrawal.withdrawn,
            kept=len(withdrawal.kept),
        )
    )


@router.post(GENERATE_PATH, response_class=HTMLResponse)
async def generate(request: Request, who: StaffDep) -> Response:
    """Generates the chosen week's sessions from the hospital's timetable, from today on."""
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    department_text = form.get("department")
    week = _date_or_none(form.get("week"))
    if week is None:
        return await _templates_page(
            request,
            who,
            department_text=department_text,
            error=FIELDS.sentence(who, ["week"]),
            status=422,
        )
    monday = monday_of(week.isoformat(), who.today)
    sunday = monday + timedelta(days=6)
    start = max(monday, who.today)

    async def work(session: AsyncSession) -> scheduling.GenerationReport:
        rules.check_generation_start(sunday, who.today)
        return await scheduling.generate_sessions(
            session,
            hospital_id=actor.hospital_id,
            start=start,
            days=(sunday - start).days + 1,
            now=who.ctx.clock.now(),
        )

    try:
        report = await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _templates_page(
            request,
            who,
            department_text=department_text,
            error=refused.sentence,
            status=refused.status,
        )
    return redirect(
        with_query(
            TEMPLATES_PATH,
            department=department_text,
            done="generated",
            week=monday.isoformat(),
            created=report.created,
            rebuilt=report.rebuilt,
            unchanged=report.unchanged,
            kept=report.kept_with_bookings,
        )
    )


# --- pool ratios and the booking policy ----------------------------------------------------


async def _settings_page(
    request: Request,
    who: FloorVisitor,
    *,
    department_text: str | None,
    error: str | None = None,
    status: int = 200,
    ratio_form: Mapping[str, str] | None = None,
    policy_form: Mapping[str, str] | None = None,
) -> Response:
    who.require(request, *ROLES)
    async with who.ctx.db.read() as session:
        departments = await scheduling.active_departments(session, hospital_id=who.hospital.id)
        wanted = _uuid(department_text)
        department = next((d for d in departments if d.id == wanted), None)
        department_id = department.id if department else None
        ratios, ratio_source = await scheduling.ratios_in_force(
            session, hospital_id=who.hospital.id, department_id=department_id
        )
        own = None
        if department_id is not None:
            own = await scheduling.policy_row(
                session, hospital_id=who.hospital.id, department_id=department_id
            )
        row = own or await scheduling.policy_row(
            session, hospital_id=who.hospital.id, department_id=None
        )
    policy = scheduling.policy_values(row)
    policy_source = "department" if own is not None else "hospital"
    return render(
        request,
        who,
        "scheduling_settings.html",
        status=status,
        error=error,
        done=_done_sentence(request, who),
        departments=departments,
        department=department,
        ratios=ratios,
        ratio_source=ratio_source,
        pools=POOL_ORDER,
        ratio_form=ratio_form,
        policy=policy,
        policy_form=policy_form,
        policy_source=policy_source,
        policy_fields=scheduling.POLICY_FIELDS,
        nav="settings",
        shown=_shown_policy_value,
    )


def _shown_policy_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return str(value)


async def _scope(session: AsyncSession, who: FloorVisitor, text: str | None) -> uuid.UUID | None:
    """The department a setting is for (None: the hospital); an unknown one is refused."""
    if not text:
        return None
    wanted = _uuid(text)
    if wanted is None or not await scheduling.department_in_hospital(
        session, hospital_id=who.hospital.id, department_id=wanted
    ):
        raise NotFound(what="department")
    return wanted


@router.get(SETTINGS_PATH, response_class=HTMLResponse)
async def settings_view(request: Request, who: StaffDep) -> Response:
    return await _settings_page(
        request, who, department_text=request.query_params.get("department")
    )


@router.post(SETTINGS_PATH + "/ratios", response_class=HTMLResponse)
async def save_ratios(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    department_text = form.get("department")
    ratios: dict[str, int] = {}
    for pool in POOL_ORDER:
        text = form.get(f"ratio_{pool}", "").strip()
        if not text:
            continue
        if not text.isdigit():
            return await _settings_page(
                request,
                who,
                department_text=department_text,
                error=who.t("sched.bad_number", pool=who.t(f"pool.{pool}")),
                status=422,
                ratio_form=form,
            )
        if int(text):
            ratios[pool] = int(text)
    try:
        body = FIELDS.validated(who, PoolRatiosUpdate, {"ratios": ratios})

        async def work(session: AsyncSession) -> None:
            await scheduling.set_pool_ratios(
                session,
                actor=actor,
                ratios=body.ratios,
                department_id=await _scope(session, who, department_text),
                now=who.ctx.clock.now(),
            )

        await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _settings_page(
            request,
            who,
            department_text=department_text,
            error=refused.sentence,
            status=refused.status,
            ratio_form=form,
        )
    return redirect(with_query(SETTINGS_PATH, department=department_text, done="ratios"))


BOOLEAN_POLICY_FIELDS = ("same_day_booking", "waitlist_enabled")


@router.post(SETTINGS_PATH + "/policy", response_class=HTMLResponse)
async def save_policy(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    department_text = form.get("department")
    values: dict[str, Any] = filled(
        form, (f for f in scheduling.POLICY_FIELDS if f not in BOOLEAN_POLICY_FIELDS)
    )
    # An unticked box is not sent: the form always carries the boxes, so absent means off.
    for name in BOOLEAN_POLICY_FIELDS:
        values[name] = form.get(name) == "on"
    try:
        body = FIELDS.validated(who, BookingPolicyUpdate, values)

        async def work(session: AsyncSession) -> None:
            await scheduling.update_policy(
                session,
                actor=actor,
                department_id=await _scope(session, who, department_text),
                changes=body.model_dump(exclude={"department_id"}, exclude_none=True),
                now=who.ctx.clock.now(),
            )

        await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _settings_page(
            request,
            who,
            department_text=department_text,
            error=refused.sentence,
            status=refused.status,
            policy_form=form,
        )
    # As the API does: the windows changed, and every kept answer with them.
    who.ctx.sold_out.clear()
    who.ctx.policies.clear()
    who.ctx.reads.changed(None)
    return redirect(with_query(SETTINGS_PATH, department=department_text, done="policy"))


# --- departments and doctors ---------------------------------------------------------------


async def doctors_page(
    request: Request,
    who: FloorVisitor,
    *,
    error: str | None = None,
    status: int = 200,
    form: Mapping[str, str] | None = None,
) -> Response:
    """The departments' doctors with level and room, the form to add one (`form`: what was
    typed, shown again after a refusal) and the deactivated doctors (frontdesk/structure.py
    handles adding, editing and deactivating)."""
    who.require(request, *ROLES)
    async with who.ctx.db.read() as session:
        departments = await scheduling.active_departments(session, hospital_id=who.hospital.id)
        doctors = await scheduling.all_doctors(session, hospital_id=who.hospital.id)
        rooms = await scheduling.doctor_rooms(session, hospital_id=who.hospital.id)
        levels = await scheduling.levels(session, hospital_id=who.hospital.id)
    by_department: dict[uuid.UUID, list[Any]] = {}
    for doctor, level in doctors:
        if doctor.active:
            by_department.setdefault(doctor.department_id, []).append((doctor, level))
    done = None
    name = request.query_params.get("name", "")[:50]
    outcome = request.query_params.get("done")
    if outcome == "doctor":
        done = who.t("sched.done.doctor", name=name)
    elif outcome in ("added", "saved", "deactivated", "reactivated"):
        done = who.t(f"doc.done.{outcome}", name=name)
    return render(
        request,
        who,
        "scheduling_doctors.html",
        status=status,
        error=error,
        done=done,
        departments=departments,
        by_department=by_department,
        inactive=[(doctor, level) for doctor, level in doctors if not doctor.active],
        rooms=rooms,
        levels=levels,
        form=form or {},
        nav="doctors",
    )


@router.get(DOCTORS_PATH, response_class=HTMLResponse)
async def doctors_view(request: Request, who: StaffDep) -> Response:
    return await doctors_page(request, who)


@router.post(DOCTORS_PATH + "/{doctor_id}", response_class=HTMLResponse)
async def change_doctor(request: Request, who: StaffDep, doctor_id: uuid.UUID) -> Response:
    actor: Actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    try:
        body = FIELDS.validated(who, DoctorUpdate, filled(form, ("level_code", "room")))

        async def work(session: AsyncSession) -> str:
            doctor = await scheduling.update_doctor(
                session,
                actor=actor,
                doctor_id=doctor_id,
                level_id=await scheduling.resolve_level(
                    session,
                    hospital_id=actor.hospital_id,
                    level_code=body.level_code,
                    doctor_id=None,
                ),
                room=body.room,
                now=who.ctx.clock.now(),
            )
            return doctor.name

        name = await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await doctors_page(request, who, error=refused.sentence, status=refused.status)
    return redirect(with_query(DOCTORS_PATH, done="doctor", name=name))
