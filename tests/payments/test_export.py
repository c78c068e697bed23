"""CSV and XLSX exports, read back the way finance's tools read them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import openpyxl
import pytest

from yuyue.payments.export import Column, ColumnKind, fen_to_yuan, guard_text, to_csv, to_xlsx

COLUMNS = [
    Column("order", "订单号", "Order"),
    Column("patient", "患者", "Patient"),
    Column("amount", "金额（元）", "Amount (yuan)", ColumnKind.FEN),
    Column("paid_at", "支付时间", "Paid at", ColumnKind.INSTANT),
    Column("visit_day", "就诊日期", "Visit day", ColumnKind.DATE),
]
ROWS: list[dict[str, object]] = [
    {
        "order": "YY20261120000001",
        "patient": "张三",
        "amount": 12345,
        # 23:59:59 in Shanghai, still the 20th there.
        "paid_at": datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC),
        "visit_day": date(2026, 11, 23),
    },
    {
        "order": "YY20261120000002",
        "patient": '=HYPERLINK("http://x","点我")',
        "amount": -5,
        "paid_at": datetime(2026, 11, 20, 16, 0, tzinfo=UTC),
        "visit_day": None,
    },
    {"order": "+86 138", "patient": "@SUM(A1)", "amount": 1, "paid_at": None},
    {"order": "-1+2", "patient": "\tcmd", "amount": 0, "paid_at": None},
]


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_xlsx(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


class TestCsv:
    def test_utf8_with_bom_crlf_and_chinese_titles(self) -> None:
        data = to_csv(ROWS, COLUMNS)
        assert data.startswith("\ufeff订单号,患者".encode())
        assert b"\r\n" in data
        assert read_csv(data)[0] == ["订单号", "患者", "金额（元）", "支付时间", "就诊日期"]

    def test_english_titles(self) -> None:
        assert read_csv(to_csv([], COLUMNS, locale="en")) == [
            ["Order", "Patient", "Amount (yuan)", "Paid at", "Visit day"]
        ]

    def test_amounts_in_yuan_exactly_and_instants_on_the_hospital_clock(self) -> None:
        table = read_csv(to_csv(ROWS, COLUMNS))
        assert table[1] == [
            "YY20261120000001",
            "张三",
            "123.45",
            "2026-11-20 23:59:59",
            "2026-11-23",
        ]
        assert table[2][2:] == ["-0.05", "2026-11-21 00:00:00", ""]
        assert [row[2] for row in table[3:]] == ["0.01", "0.00"]

    def test_formula_like_text_is_prefixed_with_an_apostrophe(self) -> None:
        table = read_csv(to_csv(ROWS, COLUMNS))
        assert table[2][1] == '\'=HYPERLINK("http://x","点我")'
        assert table[3][:2] == ["'+86 138", "'@SUM(A1)"]
        assert table[4][:2] == ["'-1+2", "'\tcmd"]
        # Our own negative amounts stay numbers.
        assert table[2][2] == "-0.05"

    def test_a_value_of_the_wrong_kind_is_refused(self) -> None:
        with pytest.raises(TypeError, match="fen"):
            to_csv([{"amount": 1.5}], COLUMNS)
        with pytest.raises(TypeError, match="aware"):
            to_csv([{"paid_at": datetime(2026, 11, 20, 12, 0)}], COLUMNS)
        with pytest.raises(TypeError, match="dates"):
            to_csv([{"visit_day": datetime(2026, 11, 20, 12, 0, tzinfo=UTC)}], COLUMNS)


class TestXlsx:
    def test_header_bold_and_frozen(self) -> None:
        sheet = read_xlsx(to_xlsx(ROWS, COLUMNS, "对账 2026-11-20")).active
        assert sheet.title == "对账 2026-11-20"
        assert [cell.value for cell in sheet[1]] == [
            "订单号",
            "患者",
            "金额（元）",
            "支付时间",
            "就诊日期",
        ]
        assert all(cell.font.b for cell in sheet[1])
        assert not sheet["A2"].font.b
        assert sheet.freeze_panes == "A2"

    def test_amounts_are_numbers_in_yuan_with_two_decimals(self) -> None:
        sheet = read_xlsx(to_xlsx(ROWS, COLUMNS, "t")).active
        amounts = [sheet.cell(row, 3) for row in range(2, 6)]
        assert [cell.data_type for cell in amounts] == ["n"] * 4
        assert [Decimal(str(cell.value)) for cell in amounts] == [
            Decimal("123.45"),
            Decimal("-0.05"),
            Decimal("0.01"),
            Decimal("0"),
        ]
        assert {cell.number_format for cell in amounts} == {"0.00"}

    def test_exact_yuan_for_amounts_a_float_would_round(self) -> None:
        # 0.1 + 0.2 style amounts: each cell is written from its decimal text.
        fens = [10, 20, 30, 1_000_000_001, 999_999_999_999]
        sheet = read_xlsx(to_xlsx([{"amount": f} for f in fens], COLUMNS, "t")).active
        assert [str(sheet.cell(row, 3).value) for row in range(2, 7)] == [
            "0.1",
            "0.2",
            "0.3",
            "10000000.01",
            "9999999999.99",
        ]

    def test_instants_in_local_time_and_dates_as_dates(self) -> None:
        sheet = read_xlsx(to_xlsx(ROWS, COLUMNS, "t")).active
        assert sheet["D2"].value == datetime(2026, 11, 20, 23, 59, 59)
        assert sheet["D3"].value == datetime(2026, 11, 21, 0, 0)
        assert sheet["D2"].number_format == "yyyy-mm-dd hh:mm:ss"
        assert sheet["E2"].value == datetime(2026, 11, 23)  # Excel keeps dates as date-times
        assert sheet["E2"].number_format == "yyyy-mm-dd"
        assert sheet["E3"].value is None

    def test_formula_like_text_is_text_never_a_formula(self) -> None:
        sheet = read_xlsx(to_xlsx(ROWS, COLUMNS, "t")).active
        patients = [sheet.cell(row, 2) for row in range(3, 6)]
        assert [cell.value for cell in patients] == [
            '\'=HYPERLINK("http://x","点我")',
            "'@SUM(A1)",
            "'\tcmd",
        ]
        assert {cell.data_type for cell in patients} == {"s"}
        assert sheet["A4"].value == "'+86 138"
        assert sheet["A5"].value == "'-1+2"

    def test_widths_fit_the_content_counting_chinese_twice(self) -> None:
        long_name = "北京协和医院" * 3  # 18 characters, 36 columns wide
        sheet = read_xlsx(
            to_xlsx([*ROWS, {"patient": long_name, "order": "x" * 200}], COLUMNS, "t")
        ).active
        widths = {letter: sheet.column_dimensions[letter].width for letter in "ABCDE"}
        assert widths["A"] == 60  # capped
        assert widths["B"] == 38
        assert widths["C"] == 12  # the title 金额（元） is 10 wide
        assert widths["D"] == 21  # 2026-11-20 23:59:59
        assert widths["E"] == 12  # 2026-11-23, wider than 就诊日期

    def test_sheet_title_made_acceptable_to_excel(self) -> None:
        sheet = read_xlsx(
            to_xlsx([], COLUMNS, "2026/11/20 [wechat]: 对账单明细表格导出记录")
        ).active
        assert sheet.title == "2026_11_20 _wechat__ 对账单明细表格导出记"[:31]
        assert len(sheet.title) <= 31

    def test_control_characters_do_not_break_the_workbook(self) -> None:
        sheet = read_xlsx(to_xlsx([{"patient": "李\x00四\x07"}], COLUMNS, "t")).active
        assert sheet["B2"].value == "李四"


@pytest.mark.parametrize(
    ("text", "guarded"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\r1", "'\r1"),
        ("a=1", "a=1"),
        ("张三", "张三"),
        ("", ""),
    ],
)
def test_guard_text(text: str, guarded: str) -> None:
    assert guard_text(text) == guarded


def test_fen_to_yuan_is_exact() -> None:
    assert fen_to_yuan(12345) == Decimal("123.45")
    assert fen_to_yuan(-5) == Decimal("-0.05")
    assert str(fen_to_yuan(100)) == "1.00"
