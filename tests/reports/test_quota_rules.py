"""The quota advice rule, case by case: each row a department's last weeks (8 sessions of
25 places, 15 remote and 10 local, unless the row says otherwise), the split it has now and
the advice expected — places per session, the split, and the reasons' codes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from yuyue.reports.quota.rules import Demand, ReasonCode, advise, median, percentile

R = ReasonCode
SPLIT = {"appointment": 60, "onsite": 30, "reserved": 10}
# A calm department: half its places used, nothing sold out, on-site two thirds used.
CALM = Demand(
    sessions=8,
    capacity=200,
    remote_capacity=120,
    remote_used=100,
    local_used=60,
    sold_out=0,
    median_sellout_minutes=None,
    waitlist_joined=0,
    waitlist_accepted=0,
    attended=150,
    no_show=10,
)
# Remote places sell out in every session within half an hour of the release.
RUSH = replace(CALM, remote_used=120, sold_out=8, median_sellout_minutes=30)


def split(appointment: int, onsite: int, reserved: int = 10) -> dict[str, int]:
    return {"appointment": appointment, "onsite": onsite, "reserved": reserved}


CASES = [
    # (name, demand, current, capacity change, split, reasons)
    ("too few sessions", replace(CALM, sessions=3), SPLIT, 0, SPLIT, [R.TOO_LITTLE_DATA]),
    ("no places at all", replace(CALM, capacity=0), SPLIT, 0, SPLIT, [R.TOO_LITTLE_DATA]),
    ("calm: keep", CALM, SPLIT, 0, SPLIT, [R.BALANCED]),
    (
        "sells out fast, on-site in use: +2 places (10 %), 5 points to booking",
        RUSH,
        SPLIT,
        2,
        split(65, 25),
        [R.SELLS_OUT_FAST],
    ),
    (
        "sells out slowly: no more places, 5 points to booking",
        replace(RUSH, median_sellout_minutes=3 * 24 * 60),
        SPLIT,
        0,
        split(65, 25),
        [R.SELLS_OUT],
    ),
    (
        "half the sessions sell out is enough",
        replace(RUSH, sold_out=4),
        SPLIT,
        2,
        split(65, 25),
        [R.SELLS_OUT_FAST],
    ),
    (
        "three of eight is not",
        replace(RUSH, sold_out=3, remote_used=110),
        SPLIT,
        0,
        SPLIT,
        [R.BALANCED],
    ),
    (
        "long waitlist: +3 places (the unmet joins per session)",
        replace(RUSH, waitlist_joined=30, waitlist_accepted=6),
        SPLIT,
        3,
        split(65, 25),
        [R.SELLS_OUT_FAST, R.WAITLIST_LONG],
    ),
    (
        "very long waitlist: capped at 20 % of a session's places",
        replace(RUSH, waitlist_joined=200, waitlist_accepted=0),
        SPLIT,
        5,
        split(65, 25),
        [R.SELLS_OUT_FAST, R.WAITLIST_LONG],
    ),
    (
        "sells out while on-site places sit idle: 10 points to booking",
        replace(RUSH, local_used=20),
        SPLIT,
        2,
        split(70, 20),
        [R.SELLS_OUT_FAST, R.ONSITE_IDLE],
    ),
    (
        "both busy: more places, the split stays",
        replace(RUSH, local_used=78),
        SPLIT,
        2,
        SPLIT,
        [R.SELLS_OUT_FAST, R.BOTH_BUSY],
    ),
    (
        "on-site crowded, booking calm: 5 points to on-site",
        replace(CALM, local_used=75),
        SPLIT,
        0,
        split(55, 35),
        [R.ONSITE_BUSY],
    ),
    (
        "many no-shows, no rush: 5 points to on-site",
        replace(CALM, attended=120, no_show=40),
        SPLIT,
        0,
        split(55, 35),
        [R.MANY_NO_SHOWS],
    ),
    (
        "many no-shows in a rush: the no-shows' places first (+2 less 5 per session)",
        replace(RUSH, attended=100, no_show=40),
        SPLIT,
        0,
        split(65, 25),
        [R.SELLS_OUT_FAST, R.NO_SHOWS_FIRST],
    ),
    (
        "under-used: 5 places fewer (half the unused per session, at most 20 %)",
        replace(CALM, remote_used=50, local_used=30),
        SPLIT,
        -5,
        SPLIT,
        [R.UNDER_USED],
    ),
    (
        "small sessions, under-used: one place fewer",
        replace(CALM, capacity=40, remote_capacity=24, remote_used=14, local_used=8),
        SPLIT,
        -1,
        SPLIT,
        [R.UNDER_USED],
    ),
    (
        "on-site already at its floor: the move stops there",
        replace(RUSH, local_used=5),
        split(80, 12, 8),
        2,
        split(82, 10, 8),
        [R.SELLS_OUT_FAST, R.ONSITE_IDLE, R.AT_LIMIT],
    ),
    (
        "booking already at its floor",
        replace(CALM, local_used=75),
        split(20, 70, 10),
        0,
        split(20, 70, 10),
        [R.ONSITE_BUSY, R.AT_LIMIT],
    ),
    (
        "channel pools of its own: the split is left to the scheduler",
        RUSH,
        {"wechat": 30, "app": 30, "onsite": 30, "reserved": 10},
        2,
        {"wechat": 30, "app": 30, "onsite": 30, "reserved": 10},
        [R.SELLS_OUT_FAST, R.CUSTOM_POOLS],
    ),
    (
        "no local places: on-site neither busy nor idle",
        replace(RUSH, capacity=120, local_used=0),
        split(100, 0, 0),
        2,
        split(100, 0, 0),
        [R.SELLS_OUT_FAST, R.AT_LIMIT],
    ),
]


@pytest.mark.parametrize(
    ("demand", "current", "change", "ratios", "reasons"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_advice(
    demand: Demand,
    current: dict[str, int],
    change: int,
    ratios: dict[str, int],
    reasons: list[ReasonCode],
) -> None:
    advice = advise(demand, current)
    assert advice.capacity_change == change
    assert dict(advice.ratios) == ratios
    assert [reason.code for reason in advice.reasons] == reasons
    assert sum(advice.ratios.values()) == 100
    assert advice.current == current


def test_reasons_carry_their_figures() -> None:
    advice = advise(replace(RUSH, waitlist_joined=30, waitlist_accepted=6), SPLIT)
    by_code = {reason.code: reason.values for reason in advice.reasons}
    assert by_code[R.SELLS_OUT_FAST] == {"sold_out": 8, "sessions": 8, "share": 100, "minutes": 30}
    assert by_code[R.WAITLIST_LONG] == {"unmet": 24, "per_session": 3.0}


def test_advice_never_touches_the_reserved_pool() -> None:
    for case in CASES:
        advice = advise(case[1], case[2])
        assert advice.ratios.get("reserved") == case[2].get("reserved")


def test_median_and_percentile_are_observations() -> None:
    assert median([]) is None and percentile([], 0.9) is None
    assert median([30, 10, 20]) == 20
    assert median([10, 20, 30, 40]) == 20
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert percentile([5], 0.9) == 5
