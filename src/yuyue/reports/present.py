"""A report as people read it: titled columns in their language, cells formatted, CSV and
XLSX files, and the chart. The same for the JSON route, the download and the page.

CSV is UTF-8 with a byte order mark (Excel then shows Chinese, not mojibake), CRLF line
ends; a text cell that a spreadsheet would take for a formula gets a leading apostrophe
(`payments.export.guard_text`). XLSX keeps numbers as numbers (counts, yuan with two
decimals, rates as percentages) so people can sum and chart them in Excel."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from markupsafe import Markup
from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.styles import Font  # type: ignore[import-untyped]

from yuyue.kit import i18n
from yuyue.payments.export import fen_to_yuan, guard_text
from yuyue.reports import charts, texts
from yuyue.reports.rules import (
    ColumnKind,
    ReportName,
    ReportTable,
    heat_grid,
    rate,
    revenue_by_period,
)
from yuyue.reports.rules import waits_by_hour as _waits_by_hour

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_XLSX_FORMATS = {
    ColumnKind.RATE: "0.0%",
    ColumnKind.MINUTES: "0.0",
    ColumnKind.FEN: "0.00",
    ColumnKind.DATE: "yyyy-mm-dd",
}


def localise(table: ReportTable, locale: str) -> ReportTable:
    """Channel, provider and weekday values named in `locale` (codes stay in JSON)."""
    rows = []
    for row in table.rows:
        shown = dict(row)
        if "channel" in shown:
            shown["channel"] = texts.label("channel", str(shown["channel"]), locale)
        if "provider" in shown:
            shown["provider"] = texts.label("provider", str(shown["provider"]), locale)
        if "weekday" in shown:
            shown["weekday"] = texts.weekday(int(shown["weekday"]), locale)
        rows.append(shown)
    return ReportTable(table.name, table.columns, rows, table.totals)


def title(key: str, locale: str) -> str:
    return i18n.translate(f"reports.col.{key}", locale)


def cell(value: Any, kind: ColumnKind) -> str:
    """A cell as the page and the CSV show it."""
    if value is None:
        return ""
    if kind is ColumnKind.RATE:
        return f"{float(value) * 100:.1f}%"
    if kind is ColumnKind.FEN:
        return f"{fen_to_yuan(int(value)):.2f}"
    if kind is ColumnKind.MINUTES:
        return f"{float(value):.1f}"
    if kind is ColumnKind.DATE and isinstance(value, date):
        return value.isoformat()
    return str(value)


def to_csv(table: ReportTable, locale: str) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([guard_text(title(column.key, locale)) for column in table.columns])
    for row in localise(table, locale).rows:
        writer.writerow(
            [
                guard_text(cell(row.get(c.key), c.kind))
                if c.kind is ColumnKind.TEXT
                else cell(row.get(c.key), c.kind)
                for c in table.columns
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


def _xlsx_value(value: Any, kind: ColumnKind) -> Any:
    if value is None:
        return None
    if kind is ColumnKind.FEN:
        return fen_to_yuan(int(value))
    if kind is ColumnKind.TEXT:
        return guard_text(str(value))
    return value


def to_xlsx(table: ReportTable, locale: str) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = table.name.value[:31]
    bold = Font(bold=True)
    for index, column in enumerate(table.columns, start=1):
        header = sheet.cell(row=1, column=index, value=title(column.key, locale))
        header.font = bold
    for number, row in enumerate(localise(table, locale).rows, start=2):
        for index, column in enumerate(table.columns, start=1):
            value = _xlsx_value(row.get(column.key), column.kind)
            if value is None:
                continue
            target = sheet.cell(row=number, column=index, value=value)
            if column.kind is ColumnKind.TEXT:
                target.data_type = "s"  # never a formula, whatever the text
            elif column.kind in _XLSX_FORMATS:
                target.number_format = _XLSX_FORMATS[column.kind]
    sheet.freeze_panes = "A2"
    for index, column in enumerate(table.columns, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        sheet.column_dimensions[letter].width = max(10, 2 * len(title(column.key, locale)) + 2)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def json_body(
    table: ReportTable, *, filters: Mapping[str, Any], refreshed_at: str | None
) -> dict[str, Any]:
    return {
        "report": table.name.value,
        "filters": dict(filters),
        "refreshed_at": refreshed_at,
        "columns": [{"key": c.key, "kind": c.kind.value} for c in table.columns],
        "rows": [
            {k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items()}
            for row in table.rows
        ],
        "totals": table.totals,
    }


def chart(table: ReportTable, locale: str) -> Markup:
    """The report's chart, in `locale`."""

    def t(key: str, **values: object) -> str:
        return i18n.translate(f"reports.{key}", locale, **values)

    name = t(f"name.{table.name.value}")
    empty = t("chart.no_data")
    blue, orange = charts.PALETTE[0], charts.PALETTE[1]
    rows: Sequence[tuple[str, Sequence[float | None]]]
    series: tuple[charts.Series, ...]

    if table.name is ReportName.BOOKINGS_BY_CHANNEL:
        per_channel: dict[str, list[float]] = {}
        for row in table.rows:
            sums = per_channel.setdefault(texts.label("channel", row["channel"], locale), [0, 0])
            sums[0] += row["kept"]
            sums[1] += row["cancelled"] + row["expired"]
        ordered = sorted(per_channel.items(), key=lambda item: -(item[1][0] + item[1][1]))
        rows = [(label, list(values)) for label, values in ordered]
        series = (
            charts.Series(t("chart.kept"), blue),
            charts.Series(t("chart.given_back"), orange),
        )
        return charts.bars(rows, series, title=name, stacked=True, empty=empty)

    if table.name is ReportName.DEMAND_HEATMAP:
        # Shaded by booking attempts (booked + refused); a range from before attempts were
        # counted has none, and is shaded by the requests recorded (bookings made).
        counted = int(table.totals.get("attempts") or 0) > 0
        attempts = heat_grid(table.rows, "attempts")
        refused = heat_grid(table.rows, "sold_out_refusals")
        shares: list[list[float | None]] = [
            [rate(refused[day][hour], attempts[day][hour]) for hour in range(24)]
            for day in range(7)
        ]
        return charts.heatmap(
            attempts if counted else heat_grid(table.rows),
            heat_grid(table.rows, "sellouts"),
            weekdays=[texts.weekday(day, locale) for day in range(7)],
            title=name,
            value_name=t("chart.attempts") if counted else t("chart.requests"),
            mark_name=t("chart.sellouts"),
            mark_legend=t("chart.sellouts_legend"),
            shares=shares if counted else None,
            share_name=t("chart.sold_out_refused"),
        )

    if table.name is ReportName.UTILISATION:
        rows = [(row["department"], [row["used"], row["unused"]]) for row in table.rows]
        series = (charts.Series(t("chart.used"), blue), charts.Series(t("chart.unused"), "#cbd5e1"))
        return charts.bars(rows, series, title=name, stacked=True, empty=empty)

    if table.name is ReportName.NO_SHOWS:
        rows = [
            (
                row["department"],
                [
                    _percent(row["cancellation_rate"]),
                    _percent(row["no_show_rate"]),
                    _percent(row["waitlist_success_rate"]),
                ],
            )
            for row in table.rows
        ]
        series = (
            charts.Series(title("cancellation_rate", locale), orange),
            charts.Series(title("no_show_rate", locale), charts.PALETTE[3]),
            charts.Series(title("waitlist_success_rate", locale), charts.PALETTE[2]),
        )
        return charts.bars(rows, series, title=name, shown=lambda v: f"{v:.1f}%", empty=empty)

    if table.name is ReportName.WAITS:
        rows = [
            (f"{hour:02d}:00", [wait, consult])
            for hour, wait, consult in _waits_by_hour(table.rows)
        ]
        series = (
            charts.Series(t("chart.wait"), blue),
            charts.Series(t("chart.consult"), charts.PALETTE[2]),
        )
        return charts.bars(
            rows,
            series,
            title=name,
            shown=lambda v: t("chart.minutes", value=f"{v:.1f}"),
            empty=empty,
        )

    if table.name is ReportName.SELL_OUTS:
        return charts.spans(
            [
                charts.Span(
                    row["department"],
                    row["median_minutes"],
                    row["p90_minutes"],
                    row["sold_out_rate"],
                    f"{row['sold_out']}/{row['sessions']}",
                )
                for row in table.rows
            ],
            title=name,
            median_name=t("chart.median"),
            slow_name=t("chart.p90"),
            share_name=t("chart.sold_out_share"),
            shown=lambda value: duration(value, locale),
            never=t("chart.never_sold_out"),
            empty=empty,
        )

    rows = [
        (period.isoformat(), [paid / 100, refunded / 100])
        for period, paid, refunded in revenue_by_period(table.rows)
    ]
    series = (charts.Series(t("chart.paid"), blue), charts.Series(t("chart.refunded"), orange))
    return charts.bars(rows, series, title=name, shown=lambda v: f"¥{v:,.2f}", empty=empty)


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def duration(minutes: float, locale: str) -> str:
    """Minutes as people say them: minutes up to two hours, hours up to two days, then days."""
    if minutes < 120:
        return i18n.translate("reports.chart.minutes", locale, value=f"{minutes:.0f}")
    if minutes < 48 * 60:
        return i18n.translate("reports.chart.hours", locale, value=f"{minutes / 60:.1f}")
    return i18n.translate("reports.chart.days", locale, value=f"{minutes / 1440:.1f}")
