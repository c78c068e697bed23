"""The outpatient office's announcements page: post a notice (公告) for the whole hospital, a
campus or a department, optionally texting the patients it concerns, and withdraw it. The
posting, the audit row and the messages are the operations service's; this page only shows
and submits, then tells open kiosks and screens (live) and rings the delivery doorbell."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.frontdesk.pages import StaffDep
from yuyue.frontdesk.web import FloorVisitor, form_of, redirect, render
from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.operations.announcements import rules, service
from yuyue.scheduling import service as scheduling

router = APIRouter(include_in_schema=False)
PATH = "/desk/announcements"
_FIELDS = (
    "kind",
    "severity",
    "scope",
    "day",
    "starts_at",
    "ends_at",
    "title",
    "body",
    "title_en",
    "body_en",
    "notify",
)

i18n.register(
    {
        "notices.title": ("医院公告", "Announcements"),
        "notices.area": ("公告管理", "Announcements"),
        "notices.link": ("发布公告", "Post an announcement"),
        "notices.new": ("发布新公告", "Post a new announcement"),
        "notices.kind": ("类型", "Kind"),
        "notices.severity": ("级别", "Severity"),
        "notices.severity.info": ("一般", "Information"),
        "notices.severity.warning": ("重要", "Important"),
        "notices.severity.urgent": ("紧急", "Urgent"),
        "notices.scope": ("范围", "Who it concerns"),
        "notices.scope.hospital": ("全院", "The whole hospital"),
        "notices.scope.campus": ("院区：{name}", "Campus: {name}"),
        "notices.scope.department": ("科室：{name}", "Department: {name}"),
        "notices.scope.session": ("出诊：{day}", "Clinic session on {day}"),
        "notices.day": ("所涉日期（可选）", "The day it concerns (optional)"),
        "notices.starts_at": ("开始展示", "Shown from"),
        "notices.ends_at": ("结束展示", "Shown until"),
        "notices.text_zh": ("标题（中文）", "Title (Chinese)"),
        "notices.body_zh": ("内容（中文）", "Text (Chinese)"),
        "notices.text_en": ("标题（英文，可选）", "Title (English, optional)"),
        "notices.body_en": ("内容（英文，可选）", "Text (English, optional)"),
        "notices.notify": (
            "同时短信通知该日期（或展示期间，最多 7 天）内在此范围有预约的患者",
            "Also text the patients with appointments in this scope on that day (or the days "
            "it is shown, at most 7)",
        ),
        "notices.post": ("发布", "Post"),
        "notices.withdraw": ("撤下", "Withdraw"),
        "notices.list": ("公告列表", "All announcements"),
        "notices.none": ("还没有公告。", "No announcements yet."),
        "notices.state.shown": ("展示中", "Shown"),
        "notices.state.scheduled": ("待展示", "Scheduled"),
        "notices.state.ended": ("已结束", "Ended"),
        "notices.state.withdrawn": ("已撤下", "Withdrawn"),
        "notices.window": ("{start} 至 {end}", "{start} to {end}"),
        "notices.notified": ("已短信通知 {n} 位患者", "{n} patients texted"),
        "notices.posted_ok": ("公告已发布。", "The announcement is posted."),
        "notices.posted_notified_ok": (
            "公告已发布，并将短信通知 {n} 位患者。",
            "The announcement is posted; {n} patients will be texted.",
        ),
        "notices.withdrawn_ok": (
            "公告已撤下，各页面和屏幕不再显示。",
            "The announcement is withdrawn from every page and screen.",
        ),
        "notices.bad_time": (
            "请按“年-月-日 时:分”填写展示时间。",
            "Enter the times as year-month-day hour:minute.",
        ),
    }
)


def _local_input(instant: datetime, tz: str) -> str:
    """An instant as a datetime-local field shows it, on the hospital's clock."""
    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def _instant(text: str, tz: str) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def _state(notice: rules.Posted, now: datetime) -> str:
    if notice.withdrawn_at is not None:
        return "withdrawn"
    if notice.ends_at <= now:
        return "ended"
    return "shown" if notice.starts_at <= now else "scheduled"


async def _page(
    request: Request,
    who: FloorVisitor,
    *,
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    actor = who.require(request, *service.POST_ROLES)
    tz = who.hospital.timezone
    async with who.ctx.db.read() as session:
        every = await service.all_notices(session, actor=actor)
        campuses = await scheduling.campuses(session, hospital_id=who.hospital.id)
        departments = await scheduling.active_departments(session, hospital_id=who.hospital.id)
    names: dict[uuid.UUID, str] = {c.id: who.pick(c.name, c.name_en) for c in campuses}
    names.update({d.id: who.pick(d.name, d.name_en) for d in departments})
    done = request.query_params.get("done")
    done_text = None
    if done == "posted":
        notified = request.query_params.get("n", "0")
        done_text = (
            who.t("notices.posted_notified_ok", n=notified)
            if notified.isdigit() and int(notified) > 0
            else who.t("notices.posted_ok")
        )
    elif done == "withdrawn":
        done_text = who.t("notices.withdrawn_ok")
    defaults = {
        "kind": rules.AnnouncementKind.GENERAL.value,
        "severity": rules.Severity.WARNING.value,
        "scope": "hospital",
        "starts_at": _local_input(who.now, tz),
        "ends_at": _local_input(who.now + timedelta(days=1), tz),
    }
    return render(
        request,
        who,
        "desk_announcements.html",
        status=status,
        error=error,
        done_text=done_text,
        form={**defaults, **(values or {})},
        every=[(n, _state(n, who.now), _scope_label(who, n.scope, names)) for n in every],
        campuses=campuses,
        departments=departments,
        kinds=list(rules.AnnouncementKind),
        severities=list(rules.Severity),
        limits={"title": rules.TITLE_MAX, "body": rules.BODY_MAX},
    )


def _scope_label(who: FloorVisitor, scope: rules.Scope, names: dict[uuid.UUID, str]) -> str:
    level = scope.level
    if level is rules.ScopeLevel.HOSPITAL:
        label = who.t("notices.scope.hospital")
    elif level is rules.ScopeLevel.CAMPUS:
        label = who.t("notices.scope.campus", name=names.get(scope.campus_id, "?"))  # type: ignore[arg-type]
    elif level is rules.ScopeLevel.DEPARTMENT:
        label = who.t("notices.scope.department", name=names.get(scope.department_id, "?"))  # type: ignore[arg-type]
    else:
        label = who.t("notices.scope.session", day=str(scope.day))
    return (
        f"{label} · {scope.day}" if scope.day and level is not rules.ScopeLevel.SESSION else label
    )


@router.get(PATH, response_class=HTMLResponse)
async def announcements_page(request: Request, who: StaffDep) -> Response:
    return await _page(request, who)


def _draft(values: dict[str, str], tz: str) -> rules.Draft:
    """The form as a draft; a malformed field is refused like the API refuses it."""
    scope_kind, _, scope_id = values["scope"].partition(":")
    try:
        target = uuid.UUID(scope_id) if scope_id else None
        day = date.fromisoformat(values["day"]) if values["day"] else None
        starts_at = _instant(values["starts_at"], tz)
        ends_at = _instant(values["ends_at"], tz)
        kind = rules.AnnouncementKind(values["kind"])
        severity = rules.Severity(values["severity"])
    except ValueError:
        raise rules.InvalidAnnouncement(field="form", problem="bad_form") from None
    if ends_at is None:
        raise rules.InvalidAnnouncement(field="ends_at", problem="ends_before_start")
    return rules.Draft(
        kind=kind,
        severity=severity,
        title=values["title"],
        title_en=values["title_en"],
        body=values["body"],
        body_en=values["body_en"],
        scope=rules.Scope(
            campus_id=target if scope_kind == "campus" else None,
            department_id=target if scope_kind == "department" else None,
            day=day,
        ),
        starts_at=starts_at,
        ends_at=ends_at,
    )


@router.post(PATH, response_class=HTMLResponse)
async def post_announcement(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *service.POST_ROLES)
    form = await form_of(request, who)
    values = {name: form.get(name, "").strip()[:2000] for name in _FIELDS}
    now = who.ctx.clock.now()

    async def work(session: AsyncSession) -> rules.Posted:
        return await service.post(
            session,
            actor=actor,
            draft=_draft(values, who.hospital.timezone),
            notify_patients=values["notify"] == "1",
            now=now,
        )

    try:
        notice = await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _page(
            request, who, status=error.status, error=error.detail(who.locale), values=values
        )
    await _after(who, notice)
    return redirect(f"{PATH}?done=posted&n={notice.notified}")


@router.post(PATH + "/{announcement_id}/withdraw", response_class=HTMLResponse)
async def withdraw_announcement(
    request: Request, who: StaffDep, announcement_id: uuid.UUID
) -> Response:
    actor = who.require(request, *service.POST_ROLES)
    await form_of(request, who)

    async def work(session: AsyncSession) -> rules.Posted:
        return await service.withdraw(
            session, actor=actor, announcement_id=announcement_id, now=who.ctx.clock.now()
        )

    try:
        notice = await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _page(request, who, status=error.status, error=error.detail(who.locale))
    await _after(who, notice)
    return redirect(f"{PATH}?done=withdrawn")


async def _after(who: FloorVisitor, notice: rules.Posted) -> None:
    await service.publish_change(
        who.ctx.live, hospital_id=who.hospital.id, announcement_id=notice.id
    )
    if notice.notified:
        from yuyue.jobs import request_delivery

        request_delivery(who.ctx)
