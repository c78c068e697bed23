"""What the patient's phone says beside their place in the line. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from yuyue.visits import rules
from yuyue.visits.rules import PatientNotice, Policy
from yuyue.visits.states import VisitStatus

POLICY = Policy(come_back_ahead=3, travel_minutes=40)
NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "ahead", "expected"),
    [
        (VisitStatus.WAITING, 8, None),
        (VisitStatus.WAITING, 4, None),
        (VisitStatus.WAITING, 3, PatientNotice("visit.come_back", {"room": "2诊室"})),
        (VisitStatus.WAITING, 0, PatientNotice("visit.come_back", {"room": "2诊室"})),
        (VisitStatus.CALLED, 0, PatientNotice("visit.called", {"room": "2诊室"})),
        (VisitStatus.SKIPPED, 5, PatientNotice("visit.skipped", {"room": "2诊室"})),
        (VisitStatus.IN_CONSULTATION, 0, PatientNotice("visit.in_consultation", {})),
        (VisitStatus.FINISHED, None, PatientNotice("visit.finished", {})),
    ],
)
def test_notice_for_each_state(
    status: VisitStatus, ahead: int | None, expected: PatientNotice | None
) -> None:
    assert rules.patient_notice(POLICY, status=status, people_ahead=ahead, room="2诊室") == expected


@pytest.mark.parametrize(
    ("called", "behind"),
    [
        (None, timedelta(0)),
        (NOW + timedelta(minutes=10), timedelta(0)),  # the doctor is ahead of time
        (NOW, timedelta(0)),
        (NOW - timedelta(minutes=25), timedelta(minutes=25)),
    ],
)
def test_running_behind(called: datetime | None, behind: timedelta) -> None:
    assert rules.running_behind(called_slot_start=called, now=NOW) == behind


def test_leave_home_by_pushes_the_slot_back_by_the_delay_less_travel() -> None:
    slot = NOW + timedelta(hours=2)
    assert rules.leave_home_by(POLICY, slot_start=slot, behind=timedelta(0)) == slot - timedelta(
        minutes=40
    )
    assert rules.leave_home_by(
        POLICY, slot_start=slot, behind=timedelta(minutes=30)
    ) == slot - timedelta(minutes=10)
    assert rules.leave_home_by(Policy(), slot_start=slot, behind=timedelta(0)) is None
