"""The pure parts of the reports: when a session sold out, the rates, the chart markup."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from yuyue.reports import charts
from yuyue.reports.rules import (
    HEAT_TABLE_ROWS,
    AppointmentFact,
    busiest,
    demand_heatmap,
    rate,
    sell_outs,
    sellout_instant,
)

SESSION = uuid.uuid4()


def at(minute: int) -> datetime:
    return datetime(2026, 11, 16, 0, minute, tzinfo=UTC)


def made(minute: int, *, status: str = "booked", back: int | None = None, remote: bool = True):
    return AppointmentFact(
        session_id=SESSION,
        channel="app",
        status=status,
        created_at=at(minute),
        cancelled_at=at(back) if back is not None and status == "cancelled" else None,
        hold_expires_at=at(back) if back is not None and status == "expired" else None,
        remote_pool=remote,
    )


@pytest.mark.parametrize(
    ("capacity", "appointments", "expected"),
    [
        (2, [made(1), made(2)], at(2)),
        (2, [made(1)], None),
        (0, [made(1)], None),
        # The first place came back before the second was taken: not sold out then.
        (2, [made(1, status="cancelled", back=2), made(3)], None),
        (2, [made(1, status="cancelled", back=5), made(3), made(7)], at(3)),
        (2, [made(1, status="expired", back=3), made(3), made(4)], at(4)),
        # On-site places are not the remote pools'.
        (1, [made(1, remote=False)], None),
    ],
)
def test_sellout_instant(
    capacity: int, appointments: list[AppointmentFact], expected: datetime | None
) -> None:
    assert sellout_instant(capacity, appointments) == expected


def test_rate_of_nothing_is_none() -> None:
    assert rate(1, 0) is None
    assert rate(1, 3) == 0.3333


def test_chart_escapes_labels_and_carries_a_title() -> None:
    svg = charts.bars(
        [("<b>内科</b>", [3, 1])],
        [charts.Series("a", "#000"), charts.Series("b", "#111")],
        title="T",
    )
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert "<title>T</title>" in svg and 'role="img"' in svg
    empty = charts.bars([], [charts.Series("a", "#000")], title="T", empty="none")
    assert "none" in empty


def test_sell_out_rings_grow_with_the_count_and_carry_it() -> None:
    grid = [[0] * 24 for _ in range(7)]
    marks = [[0] * 24 for _ in range(7)]
    grid[0][8], marks[0][8] = 40, 1
    grid[2][20], marks[2][20] = 10, 4
    svg = str(
        charts.heatmap(
            grid, marks, weekdays=list("1234567"), title="T", value_name="r", mark_name="s"
        )
    )
    assert charts.ring_width(1, 4) == pytest.approx(2.125)
    assert charts.ring_width(4, 4) == charts.RING_THICK
    assert charts.ring_width(0, 4) == 0.0
    assert 'stroke-width="2.12" data-sellouts="1"' in svg
    assert 'stroke-width="4.00" data-sellouts="4"' in svg
    # The count is written inside the ring, and the legend gives the largest.
    assert svg.count('font-size="9"') == 2 and ">4</text>" in svg
    assert "(max 4)" in svg


def test_the_sold_out_share_is_a_bar_along_the_cells_foot() -> None:
    grid = [[0] * 24 for _ in range(7)]
    marks = [[0] * 24 for _ in range(7)]
    shares: list[list[float | None]] = [[None] * 24 for _ in range(7)]
    grid[0][8], shares[0][8] = 40, 0.75
    svg = str(
        charts.heatmap(
            grid,
            marks,
            weekdays=list("1234567"),
            title="T",
            value_name="a",
            mark_name="s",
            shares=shares,
            share_name="share",
        )
    )
    assert svg.count("data-share=") == 1 and 'data-share="0.7500"' in svg
    assert 'width="17.2"' in svg  # 75 % of the 23 px cell
    assert "a 40 · share 75%" in svg


def test_the_heat_tables_busiest_cells() -> None:
    rows = [
        {
            "department": d,
            "weekday": w,
            "hour": h,
            "attempts": a,
            "requests": r,
            "waitlist_joins": j,
            "sellouts": s,
        }
        for d, w, h, a, r, j, s in (
            ("内科", 0, 8, 0, 5, 0, 0),
            ("外科", 0, 8, 0, 9, 0, 0),
            ("内科", 1, 9, 0, 5, 0, 2),
            ("内科", 2, 9, 0, 5, 1, 0),
            ("眼科", 3, 7, 0, 1, 0, 0),
            ("儿科", 4, 8, 40, 2, 0, 1),
        )
    ]
    top = busiest(rows, limit=5)
    # Most attempts first; then requests; at equal requests, sell-outs, then waitlist joins.
    assert [(r["department"], r["weekday"]) for r in top] == [
        ("儿科", 4),
        ("外科", 0),
        ("内科", 1),
        ("内科", 2),
        ("内科", 0),
    ]
    assert len(busiest(rows * 10)) == HEAT_TABLE_ROWS


def test_the_heat_map_counts_attempts_and_the_sold_out_share() -> None:
    table = demand_heatmap(
        [
            {
                "department": "儿科",
                "weekday": 0,
                "hour": 8,
                "attempts": 40,
                "sold_out_refusals": 30,
                "other_refusals": 2,
                "requests": 9,
                "waitlist_joins": 3,
                "sellouts": 1,
            },
            {
                "department": "儿科",
                "weekday": 0,
                "hour": 9,
                "attempts": 0,
                "sold_out_refusals": 0,
                "other_refusals": 0,
                "requests": 1,
                "waitlist_joins": 0,
                "sellouts": 0,
            },
        ]
    )
    first, second = table.rows
    assert (first["booked_attempts"], first["sold_out_share"]) == (8, 0.75)
    assert (second["attempts"], second["sold_out_share"]) == (0, None)
    assert table.totals["attempts"] == 40 and table.totals["sold_out_share"] == 0.75
    assert table.totals["booked_attempts"] == 8 and table.totals["requests"] == 10


def test_sell_outs_from_a_histogram() -> None:
    table = sell_outs(
        [
            {"department": "内科", "sessions": 6, "sold_out": 5},
            {"department": "眼科", "sessions": 2, "sold_out": 0},
        ],
        [
            {"department": "内科", "minutes": 30, "count": 3},
            {"department": "内科", "minutes": 600, "count": 1},
            {"department": "内科", "minutes": 5, "count": 1},
        ],
    )
    # 5 30 30 30 600: fastest 5, lower median 30, p90 the 5th (600).
    assert table.rows[0] == {
        "department": "内科",
        "sessions": 6,
        "sold_out": 5,
        "sold_out_rate": 0.8333,
        "fastest_minutes": 5,
        "median_minutes": 30,
        "p90_minutes": 600,
    }
    assert table.rows[1]["median_minutes"] is None and table.rows[1]["sold_out_rate"] == 0.0
    assert table.totals["sessions"] == 8 and table.totals["median_minutes"] == 30


def test_sell_out_chart_writes_times_and_shares() -> None:
    svg = str(
        charts.spans(
            [
                charts.Span("<内科>", 30, 600, 0.5, "5/10"),
                charts.Span("眼科", None, None, 0.0, "0/2"),
            ],
            title="T",
            median_name="m",
            slow_name="p",
            share_name="s",
            shown=lambda v: f"{v:g}m",
            never="never",
        )
    )
    assert "&lt;内科&gt;" in svg and "30m · 600m" in svg and "5/10" in svg
    assert "never" in svg and "0/2" in svg and "<title>T</title>" in svg
