"""Pure scheduling rules: splitting a session into slots and its places into pools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.scheduling.enums import Channel, Period

DEFAULT_CAPACITY = 25
DEFAULT_SLOT_MINUTES = 30
DEFAULT_PERIOD_HOURS: Mapping[Period, tuple[time, time]] = {
    Period.MORNING: (time(8, 0), time(12, 0)),
    Period.AFTERNOON: (time(13, 30), time(17, 30)),
    Period.EVENING: (time(18, 0), time(21, 0)),
}

# Pool names besides one per channel.
ONSITE = "onsite"
RESERVED = "reserved"
APPOINTMENT = "appointment"
DEFAULT_POOL_RATIOS: Mapping[str, int] = {APPOINTMENT: 60, ONSITE: 30, RESERVED: 10}
KNOWN_POOLS = frozenset({ONSITE, RESERVED, APPOINTMENT, *(c.value for c in Channel)})


class InvalidSchedule(YuyueError):
    """`problem` stays English in the API's document (scripts match on it); the sentence
    a person reads names it in their language."""

    code = "invalid_schedule"
    status = 422

    def sentence_values(self, locale: str) -> dict[str, Any]:
        values = dict(super().sentence_values(locale))
        problem = str(values.get("problem", ""))
        if locale != "en":
            values["problem"] = _problem_zh(problem)
        return values


_PROBLEMS_ZH: Mapping[str, str] = {
    "an extra session cannot be in the past": "加诊不能安排在过去的日期",
    "extra places must be between 1 and 100": "加号数量须在 1 到 100 之间",
    "the session is stopped": "该出诊已停诊",
    "a session must end after it starts": "结束时间须晚于开始时间",
    "pool percentages must be non-negative and add up to 100": "各号源池比例不能为负，合计须为 100",
    "slot length must be positive": "每个时段的分钟数须大于 0",
    "capacity must be at least 1": "号源数量至少为 1",
    "sessions cannot be generated for past days": "不能为已经过去的日期生成出诊",
}


def _problem_zh(problem: str) -> str:
    if problem.startswith("unknown pool "):
        return "未知的号源池：" + problem.removeprefix("unknown pool ")
    return _PROBLEMS_ZH.get(problem, problem)


def check_generation_start(start: date, today: date) -> None:
    """Sessions are generated from today on: the past is the record of what happened."""
    if start < today:
        raise InvalidSchedule(problem="sessions cannot be generated for past days")


i18n.register(
    {
        "title.invalid_schedule": ("排班设置有误", "Invalid schedule"),
        "error.invalid_schedule": (
            "排班设置有误：{problem}",
            "The schedule is not valid: {problem}",
        ),
    }
)


def pools_for_channel(channel: Channel) -> tuple[str, ...]:
    """Pools a channel may draw from, its own pool first.

    At the window and the kiosk a patient stands in the hospital, so they draw on-site
    places; every remote channel shares the appointment pool unless the hospital gave it
    a pool of its own. One inventory: no channel can see places another cannot reach by rule.
    """
    if channel in (Channel.WINDOW, Channel.KIOSK):
        return (channel.value, ONSITE)
    return (channel.value, APPOINTMENT)


@dataclass(frozen=True, slots=True)
class SlotPlan:
    ordinal: int
    start: time
    end: time
    # (pool, capacity, first_number), in number order.
    pools: tuple[tuple[str, int, int], ...]


def validate_ratios(ratios: Mapping[str, int]) -> None:
    unknown = sorted(set(ratios) - KNOWN_POOLS)
    if unknown:
        raise InvalidSchedule(problem=f"unknown pool {', '.join(unknown)}")
    if any(p < 0 for p in ratios.values()) or sum(ratios.values()) != 100:
        raise InvalidSchedule(problem="pool percentages must be non-negative and add up to 100")


def split_capacity(capacity: int, ratios: Mapping[str, int]) -> dict[str, int]:
    """Largest-remainder split of whole places; ties go to the pool listed first.
    Integer arithmetic, so equal remainders really are equal."""
    validate_ratios(ratios)
    counts = {pool: capacity * pct // 100 for pool, pct in ratios.items()}
    remainders = {pool: capacity * pct % 100 for pool, pct in ratios.items()}
    leftover = capacity - sum(counts.values())
    order = sorted(ratios, key=lambda p: (-remainders[p], list(ratios).index(p)))
    for pool in order[:leftover]:
        counts[pool] += 1
    return {pool: n for pool, n in counts.items() if n > 0}


def spread(totals: Mapping[str, int]) -> list[str]:
    """Interleaves places of each pool evenly over the session (stride scheduling), so
    on-site, reserved and channel places exist in every part of the morning."""
    total = sum(totals.values())
    assigned = dict.fromkeys(totals, 0)
    sequence: list[str] = []
    for k in range(1, total + 1):
        pool = max(totals, key=lambda p: (totals[p] * k / total - assigned[p], totals[p]))
        assigned[pool] += 1
        sequence.append(pool)
    return sequence


def slot_times(start: time, end: time, slot_minutes: int) -> list[tuple[time, time]]:
    if slot_minutes <= 0:
        raise InvalidSchedule(problem="slot length must be positive")
    if start >= end:
        raise InvalidSchedule(problem="a session must end after it starts")
    day = date(2000, 1, 1)
    cursor = datetime.combine(day, start)
    stop = datetime.combine(day, end)
    step = timedelta(minutes=slot_minutes)
    slots: list[tuple[time, time]] = []
    while cursor < stop:
        nxt = min(cursor + step, stop)
        slots.append((cursor.time(), nxt.time()))
        cursor = nxt
    return slots


def plan_session(
    *,
    start: time,
    end: time,
    capacity: int,
    slot_minutes: int,
    ratios: Mapping[str, int],
) -> list[SlotPlan]:
    """Slots with their pools and sequence-number ranges, in time order.

    Places are spread evenly over slots (earlier slots take the remainder); sequence numbers
    run 1..capacity in slot order, so number order is time order.
    """
    if capacity < 1:
        raise InvalidSchedule(problem="capacity must be at least 1")
    times = slot_times(start, end, slot_minutes)
    per_slot = [
        capacity // len(times) + (1 if i < capacity % len(times) else 0) for i in range(len(times))
    ]
    labels = spread(split_capacity(capacity, ratios))
    plans: list[SlotPlan] = []
    cursor = 0
    number = 1
    for ordinal, ((slot_start, slot_end), places) in enumerate(zip(times, per_slot, strict=True)):
        chunk = labels[cursor : cursor + places]
        cursor += places
        pools: list[tuple[str, int, int]] = []
        for pool in dict.fromkeys(chunk):
            count = chunk.count(pool)
            pools.append((pool, count, number))
            number += count
        plans.append(SlotPlan(ordinal=ordinal, start=slot_start, end=slot_end, pools=tuple(pools)))
    return plans


def resolve_ratios(
    rows: Sequence[tuple[str | None, str | None, str, int]],
    *,
    department_key: str,
    doctor_key: str | None,
) -> dict[str, int]:
    """Picks the most specific ratio set: the doctor's, else the department's, else the
    hospital's, else the built-in default. Rows are (department, doctor, pool, percent);
    a doctor's rows carry no department."""
    scopes: list[tuple[str | None, str | None]] = [(department_key, None), (None, None)]
    if doctor_key is not None:
        scopes.insert(0, (None, doctor_key))
    for scope in scopes:
        chosen = {pool: pct for dep, doc, pool, pct in rows if (dep, doc) == scope}
        if chosen:
            return chosen
    return dict(DEFAULT_POOL_RATIOS)


def reserved_release_due(release_time: time | None, *, day: date, now: datetime, tz: str) -> bool:
    """Whether a session on `day` has handed its reserved places to on-site registration:
    from `release_time` on the visit day (hospital time); never when no time is set."""
    if release_time is None:
        return False
    return now >= datetime.combine(day, release_time, tzinfo=ZoneInfo(tz))
