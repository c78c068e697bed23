"""`GET /api/v1/reports/{name}`: a report as JSON, CSV or XLSX, for staff with a reports
role (finance, scheduler; administrators hold every role). Thin: parse, one service call
inside a read transaction, render."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from yuyue.kit.errors import NotFound
from yuyue.kit.localtime import local_today
from yuyue.reports import present, service
from yuyue.reports import texts as _texts  # noqa: F401  (registers the sentences)
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
    "revenue) over the daily summary tables",
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
