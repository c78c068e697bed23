"""Pure scheduling rules: pools per channel, ratio checks, capacity split, slot plans.

No database and no fixtures. Rows of the tables are `case(id, *values)`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from datetime import time
from typing import Any

import pytest

from yuyue.kit import i18n
from yuyue.scheduling.enums import Channel, Period
from yuyue.scheduling.rules import (
    APPOINTMENT,
    DEFAULT_CAPACITY,
    DEFAULT_PERIOD_HOURS,
    DEFAULT_POOL_RATIOS,
    DEFAULT_SLOT_MINUTES,
    KNOWN_POOLS,
    ONSITE,
    RESERVED,
    InvalidSchedule,
    SlotPlan,
    plan_session,
    pools_for_channel,
    resolve_ratios,
    slot_times,
    split_capacity,
    spread,
    validate_ratios,
)

DEFAULT = {"appointment": 60, "onsite": 30, "reserved": 10}
NOT_100 = "pool percentages must be non-negative and add up to 100"


def case(id_: str, *values: object) -> Any:
    return pytest.param(*values, id=id_)


# Ratio sets the capacity properties run over.
RATIO_SETS = [
    case("default-60-30-10", DEFAULT),
    case("near-thirds-34-33-33", {"appointment": 34, "onsite": 33, "reserved": 33}),
    case("per-channel", {"app": 35, "wechat": 25, "window": 15, "onsite": 15, "reserved": 10}),
    case("single-pool", {"appointment": 100}),
    case("lopsided-with-zero", {"onsite": 1, "appointment": 99, "reserved": 0}),
    case("odd-percentages", {"appointment": 47, "onsite": 29, "reserved": 17, "kiosk": 7}),
]


def t(hour: int, minute: int = 0) -> time:
    return time(hour, minute)


class TestDefaults:
    def test_default_session_shape(self) -> None:
        assert DEFAULT_CAPACITY == 25
        assert DEFAULT_SLOT_MINUTES == 30
        assert dict(DEFAULT_POOL_RATIOS) == DEFAULT
        assert dict(DEFAULT_PERIOD_HOURS) == {
            Period.MORNING: (t(8), t(12)),
            Period.AFTERNOON: (t(13, 30), t(17, 30)),
            Period.EVENING: (t(18), t(21)),
        }

    def test_known_pools_are_onsite_reserved_appointment_and_every_channel(self) -> None:
        assert {ONSITE, RESERVED, APPOINTMENT} == {"onsite", "reserved", "appointment"}
        assert {"onsite", "reserved", "appointment", *(c.value for c in Channel)} == KNOWN_POOLS


POOLS_BY_CHANNEL = {
    Channel.WINDOW: ("window", "onsite"),
    Channel.KIOSK: ("kiosk", "onsite"),
    Channel.APP: ("app", "appointment"),
    Channel.WECHAT: ("wechat", "appointment"),
    Channel.ALIPAY: ("alipay", "appointment"),
    Channel.WEB: ("web", "appointment"),
    Channel.PHONE: ("phone", "appointment"),
    Channel.COMMUNITY: ("community", "appointment"),
}


class TestPoolsForChannel:
    @pytest.mark.parametrize(
        ("channel", "expected"),
        list(POOLS_BY_CHANNEL.items()),
        ids=[f"{c}-draws-{pools[1]}" for c, pools in POOLS_BY_CHANNEL.items()],
    )
    def test_own_pool_first_then_onsite_at_the_hospital_or_appointment_remotely(
        self, channel: Channel, expected: tuple[str, ...]
    ) -> None:
        assert pools_for_channel(channel) == expected

    def test_table_covers_every_channel(self) -> None:
        assert set(POOLS_BY_CHANNEL) == set(Channel)


class TestValidateRatios:
    @pytest.mark.parametrize(
        "ratios",
        [
            case("default", DEFAULT),
            case("single-pool", {"appointment": 100}),
            case("channel-pools", {"app": 50, "wechat": 30, "window": 20}),
            case("zero-pool-allowed", {"appointment": 70, "onsite": 30, "reserved": 0}),
        ],
    )
    def test_known_pools_adding_up_to_100_are_accepted(self, ratios: dict[str, int]) -> None:
        assert validate_ratios(ratios) is None

    @pytest.mark.parametrize(
        ("ratios", "problem"),
        [
            case("unknown-pool", {"vip": 10, "appointment": 90}, "unknown pool vip"),
            case("unknown-pools-sorted", {"zz": 5, "aa": 5, "onsite": 90}, "unknown pool aa, zz"),
            case("unknown-before-sum", {"vip": 10}, "unknown pool vip"),
            case("sum-90", {"appointment": 60, "onsite": 30}, NOT_100),
            case("sum-110", {"appointment": 70, "onsite": 30, "reserved": 10}, NOT_100),
            case("negative", {"appointment": 110, "onsite": -10}, NOT_100),
            case("empty", {}, NOT_100),
        ],
    )
    def test_unknown_pool_or_bad_total_is_invalid_schedule(
        self, ratios: dict[str, int], problem: str
    ) -> None:
        with pytest.raises(InvalidSchedule) as caught:
            validate_ratios(ratios)

        assert caught.value.code == "invalid_schedule"
        assert caught.value.status == 422
        assert caught.value.values == {"problem": problem}

    def test_sentence_carries_the_problem(self) -> None:
        error = InvalidSchedule(problem="unknown pool vip")

        # The document's `problem` stays English (scripts match on it); a reader of Chinese
        # reads it in Chinese.
        assert error.detail("zh-CN") == "排班设置有误：未知的号源池：vip"
        assert error.detail("en") == "The schedule is not valid: unknown pool vip"
        assert error.values == {"problem": "unknown pool vip"}
        assert error.title("zh-CN") == "排班设置有误"
        assert "error.invalid_schedule" in i18n.message_ids("en")

    @pytest.mark.parametrize(
        "problem",
        [
            "an extra session cannot be in the past",
            "extra places must be between 1 and 100",
            "the session is stopped",
            "a session must end after it starts",
            "pool percentages must be non-negative and add up to 100",
            "slot length must be positive",
            "capacity must be at least 1",
            "sessions cannot be generated for past days",
        ],
    )
    def test_every_known_problem_reads_in_chinese(self, problem: str) -> None:
        sentence = InvalidSchedule(problem=problem).detail("zh-CN")
        assert sentence.startswith("排班设置有误：") and problem not in sentence


class TestSplitCapacity:
    @pytest.mark.parametrize(
        ("capacity", "ratios", "expected"),
        [
            case("25-default", 25, DEFAULT, {"appointment": 15, "onsite": 8, "reserved": 2}),
            case("10-default", 10, DEFAULT, {"appointment": 6, "onsite": 3, "reserved": 1}),
            case("20-default", 20, DEFAULT, {"appointment": 12, "onsite": 6, "reserved": 2}),
            case("3-default-drops-empty-pool", 3, DEFAULT, {"appointment": 2, "onsite": 1}),
            case("1-default", 1, DEFAULT, {"appointment": 1}),
            case("single-pool", 25, {"appointment": 100}, {"appointment": 25}),
            case(
                "zero-percent-omitted",
                25,
                {"appointment": 70, "onsite": 30, "reserved": 0},
                {"appointment": 18, "onsite": 7},
            ),
            case("tie-to-first-listed", 1, {"onsite": 50, "appointment": 50}, {"onsite": 1}),
            case(
                "tie-to-first-listed-swapped",
                1,
                {"appointment": 50, "onsite": 50},
                {"appointment": 1},
            ),
            case(
                "largest-remainder-wins",
                7,
                {"appointment": 34, "onsite": 33, "reserved": 33},
                {"appointment": 3, "onsite": 2, "reserved": 2},
            ),
        ],
    )
    def test_largest_remainder_split(
        self, capacity: int, ratios: dict[str, int], expected: dict[str, int]
    ) -> None:
        assert split_capacity(capacity, ratios) == expected

    @pytest.mark.parametrize(
        ("capacity", "expected"),
        [
            case("4-default", 4, {"appointment": 3, "onsite": 1}),
            case("16-default", 16, {"appointment": 10, "onsite": 5, "reserved": 1}),
            case("26-default", 26, {"appointment": 16, "onsite": 8, "reserved": 2}),
        ],
    )
    def test_equal_remainders_go_to_the_pool_listed_first(
        self, capacity: int, expected: dict[str, int]
    ) -> None:
        assert split_capacity(capacity, DEFAULT) == expected

    @pytest.mark.parametrize("ratios", RATIO_SETS)
    def test_every_capacity_sums_and_each_pool_gets_floor_or_ceil_of_its_share(
        self, ratios: dict[str, int]
    ) -> None:
        for capacity in range(1, 61):
            split = split_capacity(capacity, ratios)

            assert sum(split.values()) == capacity, capacity
            assert all(n > 0 for n in split.values()), (capacity, split)
            for pool, pct in ratios.items():
                share = capacity * pct / 100
                assert split.get(pool, 0) in {math.floor(share), math.ceil(share)}, (
                    capacity,
                    pool,
                    split,
                )

    def test_invalid_ratios_are_refused(self) -> None:
        with pytest.raises(InvalidSchedule) as caught:
            split_capacity(25, {"appointment": 60, "onsite": 30})

        assert caught.value.values == {"problem": NOT_100}


class TestSpread:
    @pytest.mark.parametrize(
        ("totals", "expected"),
        [
            case("3-and-2", {"a": 3, "o": 2}, ["a", "o", "a", "o", "a"]),
            case("2-and-1", {"a": 2, "r": 1}, ["a", "r", "a"]),
            case("equal-first-listed-leads", {"a": 1, "o": 1}, ["a", "o"]),
            case("single-pool", {"a": 3}, ["a", "a", "a"]),
            case("zero-pool-never-placed", {"a": 2, "r": 0}, ["a", "a"]),
            case("nothing", {}, []),
        ],
    )
    def test_exact_interleaving(self, totals: dict[str, int], expected: list[str]) -> None:
        assert spread(totals) == expected

    def test_default_session_starts_with_appointment_onsite_appointment(self) -> None:
        sequence = spread({"appointment": 15, "onsite": 8, "reserved": 2})

        assert sequence[:7] == [
            "appointment",
            "onsite",
            "appointment",
            "appointment",
            "onsite",
            "appointment",
            "reserved",
        ]

    @pytest.mark.parametrize(
        "totals",
        [
            case("default-25", {"appointment": 15, "onsite": 8, "reserved": 2}),
            case("thirds", {"a": 5, "b": 5, "c": 5}),
            case("one-of-each", {"a": 1, "b": 1, "c": 1, "d": 1}),
            case("big-and-small", {"a": 59, "b": 1}),
            case("five-pools", {"a": 13, "b": 9, "c": 6, "d": 4, "e": 1}),
            case("with-zero", {"a": 7, "b": 0, "c": 3}),
        ],
    )
    def test_every_prefix_is_within_one_place_of_each_pools_ideal_share(
        self, totals: dict[str, int]
    ) -> None:
        sequence = spread(totals)
        total = sum(totals.values())

        assert Counter(sequence) == Counter({p: n for p, n in totals.items() if n})
        placed: Counter[str] = Counter()
        for k, pool in enumerate(sequence, start=1):
            placed[pool] += 1
            for name, n in totals.items():
                ideal = n * k / total
                assert abs(placed[name] - ideal) < 1, (k, name, placed[name], ideal)

    def test_property_holds_for_many_small_splits(self) -> None:
        for a in range(0, 12):
            for b in range(0, 9):
                for c in range(0, 5):
                    totals = {"a": a, "b": b, "c": c}
                    total = a + b + c
                    placed: Counter[str] = Counter()
                    for k, pool in enumerate(spread(totals), start=1):
                        placed[pool] += 1
                        assert all(abs(placed[p] - n * k / total) < 1 for p, n in totals.items())
                    assert placed == Counter({p: n for p, n in totals.items() if n})


class TestSlotTimes:
    @pytest.mark.parametrize(
        ("start", "end", "minutes", "expected"),
        [
            case(
                "morning-by-30",
                t(8),
                t(12),
                30,
                [
                    (t(8), t(8, 30)),
                    (t(8, 30), t(9)),
                    (t(9), t(9, 30)),
                    (t(9, 30), t(10)),
                    (t(10), t(10, 30)),
                    (t(10, 30), t(11)),
                    (t(11), t(11, 30)),
                    (t(11, 30), t(12)),
                ],
            ),
            case(
                "afternoon-by-30",
                t(13, 30),
                t(17, 30),
                30,
                [
                    (t(13, 30), t(14)),
                    (t(14), t(14, 30)),
                    (t(14, 30), t(15)),
                    (t(15), t(15, 30)),
                    (t(15, 30), t(16)),
                    (t(16), t(16, 30)),
                    (t(16, 30), t(17)),
                    (t(17), t(17, 30)),
                ],
            ),
            case(
                "last-slot-short",
                t(8),
                t(9, 45),
                30,
                [(t(8), t(8, 30)), (t(8, 30), t(9)), (t(9), t(9, 30)), (t(9, 30), t(9, 45))],
            ),
            case(
                "evening-by-60", t(18), t(21), 60, [(t(18), t(19)), (t(19), t(20)), (t(20), t(21))]
            ),
            case("session-shorter-than-slot", t(8), t(8, 20), 30, [(t(8), t(8, 20))]),
            case(
                "one-minute-slots",
                t(8),
                t(8, 3),
                1,
                [(t(8), t(8, 1)), (t(8, 1), t(8, 2)), (t(8, 2), t(8, 3))],
            ),
        ],
    )
    def test_slots_cover_the_session_back_to_back(
        self, start: time, end: time, minutes: int, expected: list[tuple[time, time]]
    ) -> None:
        assert slot_times(start, end, minutes) == expected

    @pytest.mark.parametrize(
        ("start", "end", "minutes", "problem"),
        [
            case("zero-length-slot", t(8), t(12), 0, "slot length must be positive"),
            case("negative-slot", t(8), t(12), -30, "slot length must be positive"),
            case("ends-when-it-starts", t(8), t(8), 30, "a session must end after it starts"),
            case("ends-before-it-starts", t(12), t(8), 30, "a session must end after it starts"),
        ],
    )
    def test_bad_times_are_invalid_schedule(
        self, start: time, end: time, minutes: int, problem: str
    ) -> None:
        with pytest.raises(InvalidSchedule) as caught:
            slot_times(start, end, minutes)

        assert caught.value.code == "invalid_schedule"
        assert caught.value.values == {"problem": problem}


PLANS = [
    case("morning-25-default", t(8), t(12), 30, 25, DEFAULT),
    case("afternoon-25-default", t(13, 30), t(17, 30), 30, 25, DEFAULT),
    case("short-last-slot-10", t(8), t(9, 45), 30, 10, DEFAULT),
    case("capacity-below-slot-count", t(8), t(12), 30, 3, DEFAULT),
    case("capacity-equals-slot-count", t(8), t(12), 30, 8, DEFAULT),
    case("evening-by-15-channels", t(18), t(21), 15, 40, {"app": 40, "window": 30, "reserved": 30}),
    case(
        "morning-60-thirds", t(8), t(12), 30, 60, {"appointment": 34, "onsite": 33, "reserved": 33}
    ),
    case("single-slot", t(8), t(8, 30), 30, 7, DEFAULT),
]


class TestPlanSession:
    def test_small_session_exact_plan(self) -> None:
        plan = plan_session(
            start=t(8),
            end=t(9),
            capacity=5,
            slot_minutes=30,
            ratios={"appointment": 60, "onsite": 40},
        )

        assert plan == [
            SlotPlan(0, t(8), t(8, 30), (("appointment", 2, 1), ("onsite", 1, 3))),
            SlotPlan(1, t(8, 30), t(9), (("onsite", 1, 4), ("appointment", 1, 5))),
        ]

    def test_default_morning_first_slots(self) -> None:
        plan = plan_session(start=t(8), end=t(12), capacity=25, slot_minutes=30, ratios=DEFAULT)

        assert [len(plan), [sum(c for _, c, _ in s.pools) for s in plan]] == [
            8,
            [4, 3, 3, 3, 3, 3, 3, 3],
        ]
        assert plan[0] == SlotPlan(0, t(8), t(8, 30), (("appointment", 3, 1), ("onsite", 1, 4)))
        assert plan[1] == SlotPlan(
            1, t(8, 30), t(9), (("onsite", 1, 5), ("appointment", 1, 6), ("reserved", 1, 7))
        )

    @pytest.mark.parametrize(("start", "end", "minutes", "capacity", "ratios"), PLANS)
    def test_numbers_run_from_1_to_capacity_in_slot_order(
        self, start: time, end: time, minutes: int, capacity: int, ratios: dict[str, int]
    ) -> None:
        plan = plan_session(
            start=start, end=end, capacity=capacity, slot_minutes=minutes, ratios=ratios
        )

        numbers = [
            number
            for slot in plan
            for _, count, first in slot.pools
            for number in range(first, first + count)
        ]
        assert numbers == list(range(1, capacity + 1))

    @pytest.mark.parametrize(("start", "end", "minutes", "capacity", "ratios"), PLANS)
    def test_each_pool_is_one_contiguous_block_per_slot(
        self, start: time, end: time, minutes: int, capacity: int, ratios: dict[str, int]
    ) -> None:
        plan = plan_session(
            start=start, end=end, capacity=capacity, slot_minutes=minutes, ratios=ratios
        )

        for slot in plan:
            names = [pool for pool, _, _ in slot.pools]
            assert len(names) == len(set(names)), slot
            assert all(count >= 1 for _, count, _ in slot.pools), slot
            for (_, count, first), (_, _, following) in zip(
                slot.pools, slot.pools[1:], strict=False
            ):
                assert following == first + count, slot

    @pytest.mark.parametrize(("start", "end", "minutes", "capacity", "ratios"), PLANS)
    def test_slot_capacities_differ_by_at_most_one_and_earlier_slots_take_the_remainder(
        self, start: time, end: time, minutes: int, capacity: int, ratios: dict[str, int]
    ) -> None:
        plan = plan_session(
            start=start, end=end, capacity=capacity, slot_minutes=minutes, ratios=ratios
        )

        sizes = [sum(count for _, count, _ in slot.pools) for slot in plan]
        slots = len(slot_times(start, end, minutes))
        assert sizes == [
            capacity // slots + (1 if i < capacity % slots else 0) for i in range(slots)
        ]
        assert max(sizes) - min(sizes) <= 1
        assert sizes == sorted(sizes, reverse=True)

    @pytest.mark.parametrize(("start", "end", "minutes", "capacity", "ratios"), PLANS)
    def test_slots_follow_slot_times_and_pools_add_up_to_the_split(
        self, start: time, end: time, minutes: int, capacity: int, ratios: dict[str, int]
    ) -> None:
        plan = plan_session(
            start=start, end=end, capacity=capacity, slot_minutes=minutes, ratios=ratios
        )

        assert [(s.ordinal, s.start, s.end) for s in plan] == [
            (i, a, b) for i, (a, b) in enumerate(slot_times(start, end, minutes))
        ]
        per_pool: Counter[str] = Counter()
        for slot in plan:
            for pool, count, _ in slot.pools:
                per_pool[pool] += count
        assert dict(per_pool) == split_capacity(capacity, ratios)

    def test_capacity_below_slot_count_leaves_later_slots_empty(self) -> None:
        plan = plan_session(start=t(8), end=t(12), capacity=3, slot_minutes=30, ratios=DEFAULT)

        assert [slot.pools for slot in plan] == [
            (("appointment", 1, 1),),
            (("onsite", 1, 2),),
            (("appointment", 1, 3),),
            (),
            (),
            (),
            (),
            (),
        ]

    @pytest.mark.parametrize(
        ("capacity", "minutes", "ratios", "problem"),
        [
            case("zero-capacity", 0, 30, DEFAULT, "capacity must be at least 1"),
            case("negative-capacity", -5, 30, DEFAULT, "capacity must be at least 1"),
            case("bad-slot-length", 25, 0, DEFAULT, "slot length must be positive"),
            case("unknown-pool", 25, 30, {"vip": 100}, "unknown pool vip"),
            case("ratios-not-100", 25, 30, {"appointment": 50}, NOT_100),
        ],
    )
    def test_bad_plan_is_invalid_schedule(
        self, capacity: int, minutes: int, ratios: dict[str, int], problem: str
    ) -> None:
        with pytest.raises(InvalidSchedule) as caught:
            plan_session(
                start=t(8), end=t(12), capacity=capacity, slot_minutes=minutes, ratios=ratios
            )

        assert caught.value.code == "invalid_schedule"
        assert caught.value.values == {"problem": problem}


DOCTOR_ROWS = [(None, "DOC-1", "appointment", 80), (None, "DOC-1", "reserved", 20)]
DEPARTMENT_ROWS = [("DEP-A", None, "appointment", 50), ("DEP-A", None, "onsite", 50)]
HOSPITAL_ROWS = [(None, None, "appointment", 70), (None, None, "onsite", 30)]
ALL_ROWS = DOCTOR_ROWS + DEPARTMENT_ROWS + HOSPITAL_ROWS
DOCTORS = {"appointment": 80, "reserved": 20}
DEPARTMENTS = {"appointment": 50, "onsite": 50}
HOSPITALS = {"appointment": 70, "onsite": 30}


class TestResolveRatios:
    @pytest.mark.parametrize(
        ("rows", "department", "doctor", "expected"),
        [
            case("doctor-beats-department", ALL_ROWS, "DEP-A", "DOC-1", DOCTORS),
            case("doctor-without-rows-uses-department", ALL_ROWS, "DEP-A", "DOC-2", DEPARTMENTS),
            case("department-session", ALL_ROWS, "DEP-A", None, DEPARTMENTS),
            case(
                "department-beats-hospital",
                DEPARTMENT_ROWS + HOSPITAL_ROWS,
                "DEP-A",
                "DOC-1",
                DEPARTMENTS,
            ),
            case("other-department-uses-hospital", ALL_ROWS, "DEP-B", "DOC-2", HOSPITALS),
            case(
                "doctor-rows-ignored-without-doctor",
                DOCTOR_ROWS + HOSPITAL_ROWS,
                "DEP-A",
                None,
                HOSPITALS,
            ),
            case("doctor-beats-hospital", DOCTOR_ROWS + HOSPITAL_ROWS, "DEP-B", "DOC-1", DOCTORS),
            case("nothing-uses-default", [], "DEP-A", "DOC-1", DEFAULT),
            case(
                "only-others-rows-uses-default",
                DOCTOR_ROWS + DEPARTMENT_ROWS,
                "DEP-B",
                "DOC-2",
                DEFAULT,
            ),
            case("row-order-irrelevant", list(reversed(ALL_ROWS)), "DEP-A", "DOC-1", DOCTORS),
        ],
    )
    def test_most_specific_ratio_set_wins(
        self,
        rows: list[tuple[str | None, str | None, str, int]],
        department: str,
        doctor: str | None,
        expected: Mapping[str, int],
    ) -> None:
        assert resolve_ratios(rows, department_key=department, doctor_key=doctor) == expected

    def test_default_is_a_copy(self) -> None:
        chosen = resolve_ratios([], department_key="DEP-A", doctor_key=None)
        chosen["appointment"] = 0

        assert dict(DEFAULT_POOL_RATIOS) == DEFAULT
