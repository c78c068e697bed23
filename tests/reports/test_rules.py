"""The pure parts of the reports: when a session sold out, the rates, the chart markup."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from yuyue.reports import charts
from yuyue.reports.rules import AppointmentFact, rate, sellout_instant

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
