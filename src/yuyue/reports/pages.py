"""The staff's report pages: one per report, with filters, the chart drawn on the server
(inline SVG, no script) and links to the same figures as CSV and XLSX.

Staff sign in as on every floor page (the staff cookie); finance, the scheduler and
administrators may read reports, anyone else gets the usual refusal page. A bad filter is
a sentence on the page (422) and nothing else happens."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.frontdesk.pages import StaffDep
from yuyue.frontdesk.web import FloorVisitor, form_of, redirect
from yuyue.kit.errors import ValidationFailed, YuyueError
from yuyue.portal import formatting
from yuyue.reports import present, service
from yuyue.reports import texts as _texts
from yuyue.reports.api import DEFAULT_DAYS, download, parse_name
from yuyue.reports.quota import service as quota
from yuyue.reports.quota import texts as quota_texts
from yuyue.reports.rules import ReportFilters, ReportName, ReportTable, busiest, check_range
from yuyue.scheduling.enums import Channel
from yuyue.staff.enums import Role
from yuyue.web.pagekit import PageTemplates, parse_date, parse_uuid

router = APIRouter(include_in_schema=False)
templates = PageTemplates("yuyue.reports", "yuyue.frontdesk", "yuyue.portal")
render = templates.render
# Reports whose figures do not depend on how a place was booked: no channel menu.
NO_CHANNEL_FILTER = (ReportName.WAITS, ReportName.SELL_OUTS)
FILTER_KEYS = ("date_from", "date_to", "campus_id", "department_id", "doctor_id", "channel")


def _channel(value: str | None) -> Channel | None:
    if not value:
        return None
    try:
        return Channel(value)
    except ValueError:
        raise ValidationFailed(summary="channel") from None


def filters_of(params: dict[str, str], today: date) -> ReportFilters:
    date_to = parse_date(params.get("date_to")) or today
    date_from = parse_date(params.get("date_from")) or date_to - timedelta(days=DEFAULT_DAYS - 1)
    check_range(date_from, date_to)
    return ReportFilters(
        date_from=date_from,
        date_to=date_to,
        campus_id=parse_uuid(params.get("campus_id")),
        department_id=parse_uuid(params.get("department_id")),
        doctor_id=parse_uuid(params.get("doctor_id")),
        channel=_channel(params.get("channel")),
    )


@router.get("/reports", response_class=HTMLResponse)
async def reports_home(request: Request, who: StaffDep) -> Response:
    who.require(request, *service.REPORT_ROLES)
    return redirect(f"/reports/{ReportName.BOOKINGS_BY_CHANNEL.value}")


# --- quota advice (before /reports/{name}, which would take it for a report's name) ---------

QUOTA_PATH = "/reports/quota-advice"


def _weeks(value: str | None) -> int:
    if not value:
        return quota.DEFAULT_WEEKS
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed(summary="weeks") from None


@router.get(QUOTA_PATH, response_class=HTMLResponse)
async def quota_advice_page(request: Request, who: StaffDep) -> Response:
    params = request.query_params
    return await _quota_page(
        request,
        who,
        weeks=params.get("weeks"),
        department=params.get("department_id"),
        accepted=params.get("accepted"),
    )


async def _quota_page(
    request: Request,
    who: FloorVisitor,
    *,
    weeks: str | None,
    department: str | None,
    accepted: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    actor = who.require(request, *service.REPORT_ROLES)
    try:
        period = quota.period_of(who.today, _weeks(weeks))
        department_id = parse_uuid(department)
    except ValidationFailed:
        error, status = who.t("reports.bad_filter"), 422
        period, department_id = quota.period_of(who.today), None
    async with who.ctx.db.read() as session:
        choices = await service.filter_choices(session, actor=actor)
        items = await quota.advise(session, actor=actor, period=period, department_id=department_id)
    done = None
    if accepted:
        chosen = next(
            (item for item in items if str(item.doctor_id or item.department_id) == accepted),
            None,
        )
        if chosen is not None:
            scope = who.pick(*chosen.department) + (f" · {chosen.doctor}" if chosen.doctor else "")
            async with who.ctx.db.read() as session:
                written = await quota.current_ratios(session, actor=actor, scope=chosen)
            done = who.t(
                "quota.accepted",
                scope=scope,
                ratios=" / ".join(
                    f"{quota_texts.pool(name, who.locale)} {percent}%"
                    for name, percent in written.items()
                ),
            )
    return render(
        request,
        who,
        "quota_advice.html",
        status=status,
        reports=list(ReportName),
        period=period,
        max_weeks=quota.MAX_WEEKS,
        department_id=str(department_id) if department_id else "",
        departments=service.sorted_names(choices["names"]["department"], who.locale),
        items=items,
        can_accept=actor.has_role(Role.SCHEDULER),
        sentence=lambda reason: quota_texts.sentence(reason, who.locale),
        pool=lambda name: quota_texts.pool(name, who.locale),
        error=error,
        done=done,
    )


@router.post(QUOTA_PATH + "/accept", response_class=HTMLResponse)
async def accept_quota_advice(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, Role.SCHEDULER)
    values = await form_of(request, who)
    weeks, department = values.get("weeks"), values.get("department_id")
    try:
        department_id = parse_uuid(department)
        doctor_id = parse_uuid(values.get("doctor_id"))
        period = quota.period_of(who.today, _weeks(weeks))
        ratios: dict[str, int] = {}
        for key, value in values.items():
            if key.startswith("pool."):
                try:
                    ratios[key.removeprefix("pool.")] = int(value)
                except ValueError:
                    raise ValidationFailed(summary="ratios") from None
        if department_id is None:
            raise ValidationFailed(summary="department_id")
    except ValidationFailed as error:
        return await _quota_page(
            request, who, weeks=weeks, department=None, error=_refusal(error, who), status=422
        )

    async def work(session: AsyncSession) -> quota.Accepted:
        assert department_id is not None
        return await quota.accept(
            session,
            actor=actor,
            department_id=department_id,
            doctor_id=doctor_id,
            ratios=ratios,
            period=period,
            now=who.now,
        )

    try:
        await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _quota_page(
            request,
            who,
            weeks=weeks,
            department=None,
            error=who.t("quota.refused", detail=_refusal(error, who)),
            status=error.status,
        )
    query = urlencode({"weeks": period.weeks, "accepted": str(doctor_id or department_id)})
    return redirect(f"{QUOTA_PATH}?{query}")


def _refusal(error: YuyueError, who: FloorVisitor) -> str:
    return error.detail(who.locale)


@router.get("/reports/{name}", response_class=HTMLResponse)
async def report_page(request: Request, who: StaffDep, name: str) -> Response:
    actor = who.require(request, *service.REPORT_ROLES)
    report = parse_name(name)
    params = {
        k: v.strip()[:64] for k, v in request.query_params.items() if k in (*FILTER_KEYS, "format")
    }
    error: str | None = None
    status = 200
    table = None
    refreshed = None
    try:
        filters = filters_of(params, who.today)
    except ValidationFailed:
        error, status = who.t("reports.bad_filter"), 422
        filters = filters_of({}, who.today)
    async with who.ctx.db.read() as session:
        choices = await service.filter_choices(session, actor=actor)
        if error is None:
            table = await service.report(
                session, actor=actor, name=report, filters=filters, locale=who.locale
            )
            refreshed = await service.last_refreshed(
                session,
                hospital_id=actor.hospital_id,
                date_from=filters.date_from,
                date_to=filters.date_to,
            )
    fmt = params.get("format")
    if table is not None and fmt in ("csv", "xlsx"):
        stem = f"{report.value}-{filters.date_from.isoformat()}-{filters.date_to.isoformat()}"
        if fmt == "csv":
            return download(
                present.to_csv(table, who.locale), "text/csv; charset=utf-8", f"{stem}.csv"
            )
        return download(present.to_xlsx(table, who.locale), present.XLSX, f"{stem}.xlsx")
    shown = {
        "date_from": filters.date_from.isoformat(),
        "date_to": filters.date_to.isoformat(),
        **{k: params[k] for k in FILTER_KEYS[2:] if params.get(k)},
    }
    listed, heat_note = table, None
    if table is not None and report is ReportName.DEMAND_HEATMAP:
        # The chart shows every cell; the table below it only the busiest (files hold all).
        listed = ReportTable(table.name, table.columns, busiest(table.rows), table.totals)
        if len(listed.rows) < len(table.rows):
            heat_note = who.t("reports.heat_top", shown=len(listed.rows), total=len(table.rows))
    return render(
        request,
        who,
        "report.html",
        status=status,
        report=report,
        reports=list(ReportName),
        table=present.localise(listed, who.locale) if listed else None,
        heat_note=heat_note,
        channel_filter=report not in NO_CHANNEL_FILTER,
        chart=present.chart(table, who.locale) if table else None,
        cell=present.cell,
        title=lambda key: present.title(key, who.locale),
        params=shown,
        query=urlencode(shown),
        error=error,
        refreshed=formatting.local(refreshed, who.hospital.timezone, who.locale)
        if refreshed
        else None,
        campuses=service.sorted_names(choices["names"]["campus"], who.locale),
        departments=service.sorted_names(choices["names"]["department"], who.locale),
        doctors=choices["doctors"],
        channels=list(Channel),
        channel_label=lambda value: _texts.label("channel", value, who.locale),
    )
