"""Tables for finance to open in Excel: CSV and XLSX from rows and column definitions.

Generic over columns: each has a key into the row, a zh-CN and an English title, and a kind
saying how its values are written:

- `text`: as text; a cell a spreadsheet would read as a formula or a command (starting with
  = + - @, a tab or a carriage return) gets a leading apostrophe, so it stays text
  (CSV / formula injection: a patient's name or a provider's remark is data, never a formula);
- `fen`: integer fen shown as yuan with two decimals, converted exactly (no float on the way:
  12345 fen is 123.45, always); in XLSX a number with the format 0.00 so sums work;
- `instant`: an aware instant shown on the hospital's clock (`YYYY-MM-DD HH:MM:SS`); in XLSX
  a date-time cell (Excel has no time zones, so the local wall-clock time is written);
- `date`: a calendar date, `YYYY-MM-DD`.

CSV is UTF-8 with a byte order mark, which is how Excel recognises UTF-8 and shows Chinese
rather than mojibake; lines end in CRLF as RFC 4180 says. XLSX has a bold header row that
stays in view while scrolling, and column widths fitted to their content (a Chinese
character counts twice)."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # type: ignore[import-untyped]
from openpyxl.styles import Font  # type: ignore[import-untyped]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

from yuyue.kit.i18n import DEFAULT_LOCALE

DEFAULT_TIMEZONE = "Asia/Shanghai"
YUAN_FORMAT = "0.00"
INSTANT_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_MIN_WIDTH = 6
_MAX_WIDTH = 60
# Excel's sheet titles: at most 31 characters, none of these.
_SHEET_TITLE_FORBIDDEN = str.maketrans(dict.fromkeys("[]:*?/\\", "_"))

Row = Mapping[str, object]


class ColumnKind(StrEnum):
    TEXT = "text"
    FEN = "fen"
    INSTANT = "instant"
    DATE = "date"


_FORMATS = {
    ColumnKind.FEN: YUAN_FORMAT,
    ColumnKind.INSTANT: INSTANT_FORMAT,
    ColumnKind.DATE: DATE_FORMAT,
}


@dataclass(frozen=True)
class Column:
    key: str
    title_zh: str
    title_en: str
    kind: ColumnKind = ColumnKind.TEXT

    def title(self, locale: str) -> str:
        return self.title_zh if locale == DEFAULT_LOCALE else self.title_en


def guard_text(value: str) -> str:
    """Text a spreadsheet must not take for a formula gets a leading apostrophe."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def fen_to_yuan(fen: int) -> Decimal:
    """Exact: 12345 → Decimal('123.45'), -5 → Decimal('-0.05')."""
    return Decimal(fen).scaleb(-2)


def _typed(value: object, kind: ColumnKind, tz: str) -> tuple[object, str]:
    """The value as an XLSX cell holds it, and as CSV shows it; refuses a value of the
    wrong kind rather than writing something finance would misread."""
    if kind is ColumnKind.FEN:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"an amount in fen must be an int, not {value!r}")
        yuan = fen_to_yuan(value)
        return yuan, f"{yuan:.2f}"
    if kind is ColumnKind.INSTANT:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError(f"an instant column needs aware datetimes, not {value!r}")
        local = value.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
        return local, local.strftime("%Y-%m-%d %H:%M:%S")
    if kind is ColumnKind.DATE:
        if isinstance(value, datetime) or not isinstance(value, date):
            raise TypeError(f"a date column needs dates, not {value!r}")
        return value, value.isoformat()
    text = guard_text(str(value))
    return text, text


def to_csv(
    rows: Iterable[Row],
    columns: Sequence[Column],
    *,
    locale: str = DEFAULT_LOCALE,
    tz: str = DEFAULT_TIMEZONE,
) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([guard_text(column.title(locale)) for column in columns])
    for row in rows:
        writer.writerow(
            [
                "" if (value := row.get(column.key)) is None else _typed(value, column.kind, tz)[1]
                for column in columns
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def to_xlsx(
    rows: Iterable[Row],
    columns: Sequence[Column],
    sheet_title: str,
    *,
    locale: str = DEFAULT_LOCALE,
    tz: str = DEFAULT_TIMEZONE,
) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = sheet_title.translate(_SHEET_TITLE_FORBIDDEN)[:31] or "Sheet1"
    bold = Font(bold=True)
    widths = [_display_width(column.title(locale)) for column in columns]

    for index, column in enumerate(columns, start=1):
        cell = sheet.cell(row=1, column=index, value=guard_text(column.title(locale)))
        cell.font = bold
        cell.data_type = "s"

    for row_number, row in enumerate(rows, start=2):
        for index, column in enumerate(columns, start=1):
            value = row.get(column.key)
            if value is None:
                continue
            stored, shown = _typed(value, column.kind, tz)
            widths[index - 1] = max(widths[index - 1], _display_width(shown))
            if column.kind is ColumnKind.TEXT:
                # Control characters XML 1.0 cannot hold are dropped, not fatal.
                cell = sheet.cell(row_number, index, ILLEGAL_CHARACTERS_RE.sub("", shown))
                cell.data_type = "s"  # never a formula, whatever the text
            else:
                cell = sheet.cell(row_number, index, stored)
                cell.number_format = _FORMATS[column.kind]

    sheet.freeze_panes = "A2"
    for index, width in enumerate(widths, start=1):
        fitted = min(max(width + 2, _MIN_WIDTH), _MAX_WIDTH)
        sheet.column_dimensions[get_column_letter(index)].width = fitted

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
