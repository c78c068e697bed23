"""`GET /api/v1/reports/{name}`: a report as JSON, CSV or XLSX, for staff with a reports
role (finance, scheduler; administrators hold every role). Thin: parse, one service call
inside a read transaction, render."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.errors import NotFound
from yuyue.kit.localtime import local_today
from yuyue.kit.schemas import Input
from yuyue.reports import present, service
from yuyue.reports import texts as _texts  # noqa: F401  (registers the sentences)
from yuyue.reports.quota import service as quota
from yuyue.reports.quota import texts as quota_texts
from yuyue.reports.rules import ReportFilters, ReportFormat, ReportName
from yuyue.scheduling.enums import Channel
from yuyue.web.deps import ActorDep, CtxDep, LocaleDep

router = APIRouter(prefix="/api/v1", tags=["reports"])
DEFAULT_DAYS = 30

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown token (`unauthorized`)"},
    403: {"description": "`forbidden`: finance, scheduler or administrator only"},
    404: {"description": "`not_found`: no report of that name"},
    422: {
        "description": "`validation_error`: a bad date, id, channel or format, or a range "
        "that runs backwards or spans more than 400 days"
    },
}


def parse_name(name: str) -> ReportName:
    try:
        return ReportName(name)
    except ValueError:
        raise NotFound(what="report") from None


def default_range(last: date) -> tuple[date, date]:
    """The DEFAULT_DAYS days up to `last` (the given end, or today)."""
    return last - timedelta(days=DEFAULT_DAYS - 1), last


# --- quota advice (before /reports/{name}, which would take the path for a report's name) --


class QuotaAdviceAccept(Input):
    department_id: uuid.UUID
    doctor_id: uuid.UUID | None = Field(
        default=None, description="a doctor of the department: writes the doctor's ratios"
    )
    ratios: dict[str, Annotated[int, Field(ge=0, le=100)]] = Field(
        description="the advised split or the scheduler's edit of it; adds up to 100",
        examples=[{"appointment": 65, "onsite": 25, "reserved": 10}],
    )
    weeks: Annotated[int, Field(ge=1, le=quota.MAX_WEEKS)] = quota.DEFAULT_WEEKS


def advice_json(item: quota.ScopeAdvice, locale: str) -> dict[str, Any]:
    demand = item.demand
    zh, en = item.department
    return {
        "department_id": str(item.department_id),
        "department": en if locale == "en" else zh,
        "doctor_id": str(item.doctor_id) if item.doctor_id else None,
        "doctor": item.doctor,
        "demand": {
            "sessions": demand.sessions,
            "capacity": demand.capacity,
            "remote_capacity": demand.remote_capacity,
            "remote_used": demand.remote_used,
            "local_used": demand.local_used,
            "sold_out": demand.sold_out,
            "median_sellout_minutes": demand.median_sellout_minutes,
            "waitlist_joined": demand.waitlist_joined,
            "waitlist_accepted": demand.waitlist_accepted,
            "attended": demand.attended,
            "no_show": demand.no_show,
        },
        "capacity_change": item.advice.capacity_change,
        "current": dict(item.advice.current),
        "ratios": dict(item.advice.ratios),
        "reasons": [
            {
                "code": reason.code.value,
                "values": dict(reason.values),
                "text": quota_texts.sentence(reason, locale),
            }
            for reason in item.advice.reasons
        ],
    }


@router.get(
    "/reports/quota-advice",
    responses={
        401: _REFUSALS[401],
        403: _REFUSALS[403],
        422: {"description": "`validation_error`: a bad department id or weeks"},
    },
    summary="Advice on places per session and the pool split, per department and doctor, "
    "from the last weeks' demand",
)
async def get_quota_advice(
    ctx: CtxDep,
    actor: ActorDep,
    locale: LocaleDep,
    department_id: uuid.UUID | None = None,
    weeks: Annotated[int, Query(ge=1, le=quota.MAX_WEEKS)] = quota.DEFAULT_WEEKS,
) -> dict[str, Any]:
    service.require_reader(actor)
    async with ctx.db.read() as session:
        timezone = await service.timezone_of(session, actor.hospital_id)
        period = quota.period_of(local_today(ctx.clock.now(), timezone), weeks)
        items = await quota.advise(session, actor=actor, period=period, department_id=department_id)
    return {
        "date_from": period.first.isoformat(),
        "date_to": period.last.isoformat(),
        "weeks": period.weeks,
        "advice": [advice_json(item, locale) for item in items],
    }


@router.post(
    "/reports/quota-advice/accept",
    responses={
        401: _REFUSALS[401],
        403: {"description": "`forbidden`: the scheduler or an administrator only"},
        404: {"description": "`not_found`: no such department, or not a doctor of it"},
        422: {
            "description": "`validation_error` or `invalid_schedule`: ratios that are not "
            "known pools or do not add up to 100; nothing is written"
        },
    },
    summary="Accept (or edit and accept) a quota advice: writes the pool ratios",
)
async def accept_quota_advice(
    body: QuotaAdviceAccept, ctx: CtxDep, actor: ActorDep, locale: LocaleDep
) -> dict[str, Any]:
    now = ctx.clock.now()

    async def work(session: AsyncSession) -> quota.Accepted:
        timezone = await service.timezone_of(session, actor.hospital_id)
        return await quota.accept(
            session,
            actor=actor,
            department_id=body.department_id,
            doctor_id=body.doctor_id,
            ratios=body.ratios,
            period=quota.period_of(local_today(now, timezone), body.weeks),
            now=now,
        )

    done = await ctx.db.transact(work)
    return {
        "department_id": str(body.department_id),
        "doctor_id": str(body.doctor_id) if body.doctor_id else None,
        "written": done.written,
        "edited": done.edited,
        "advice": advice_json(done.advice, locale) if done.advice else None,
    }


@router.get(
    "/reports/{name}",
    responses={
        **_REFUSALS,
        200: {
            "description": "the report: JSON (`columns`, `rows`, `totals`, `refreshed_at`), "
            "or a CSV (UTF-8 with BOM) or XLSX file",
            "content": {"text/csv": {}, present.XLSX: {}},
        },
    },
    summary="A report (bookings-by-channel, demand-heatmap, utilisation, no-shows, waits, "
    "revenue, sell-outs) over the daily summary tables",
)
async def get_report(
    name: str,
    ctx: CtxDep,
    actor: ActorDep,
    locale: LocaleDep,
    date_from: date | None = None,
    date_to: date | None = None,
    campus_id: uuid.UUID | None = None,
    department_id: uuid.UUID | None = None,
    doctor_id: uuid.UUID | None = None,
    channel: Channel | None = None,
    format: Annotated[ReportFormat, Query(description="json, csv or xlsx")] = ReportFormat.JSON,
) -> Response:
    service.require_reader(actor)
    report = parse_name(name)
    async with ctx.db.read() as session:
        timezone = await service.timezone_of(session, actor.hospital_id)
        first, last = default_range(date_to or local_today(ctx.clock.now(), timezone))
        filters = ReportFilters(
            date_from=date_from or first,
            date_to=last,
            campus_id=campus_id,
            department_id=department_id,
            doctor_id=doctor_id,
            channel=channel,
        )
        table = await service.report(
            session, actor=actor, name=report, filters=filters, locale=locale
        )
        refreshed = await service.last_refreshed(
            session,
            hospital_id=actor.hospital_id,
            date_from=filters.date_from,
            date_to=filters.date_to,
        )
    stem = f"{report.value}-{filters.date_from.isoformat()}-{filters.date_to.isoformat()}"
    if format is ReportFormat.CSV:
        return download(present.to_csv(table, locale), "text/csv; charset=utf-8", f"{stem}.csv")
    if format is ReportFormat.XLSX:
        return download(present.to_xlsx(table, locale), present.XLSX, f"{stem}.xlsx")
    shown = {
        "date_from": filters.date_from.isoformat(),
        "date_to": filters.date_to.isoformat(),
        "campus_id": str(campus_id) if campus_id else None,
        "department_id": str(department_id) if department_id else None,
        "doctor_id": str(doctor_id) if doctor_id else None,
        "channel": channel.value if channel else None,
    }
    return JSONResponse(
        present.json_body(
            table, filters=shown, refreshed_at=refreshed.isoformat() if refreshed else None
        )
    )


def download(data: bytes, media_type: str, filename: str) -> Response:
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
