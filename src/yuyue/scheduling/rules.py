"""Pure scheduling rules: splitting a session into slots and its places into pools."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
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


# --- the hospital's structure: departments and doctors -------------------------------------

CODE_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
CODE_MAX = 32
OLDEST_AGE = 150
SEXES = ("M", "F")


class InvalidStructure(YuyueError):
    """A department or doctor a person described wrongly; `field` names the input and
    `problem` stays English in the API's document, like `InvalidSchedule`."""

    code = "invalid_structure"
    status = 422

    def sentence_values(self, locale: str) -> dict[str, Any]:
        values = dict(super().sentence_values(locale))
        if locale != "en":
            values["problem"] = _STRUCTURE_ZH.get(str(values.get("problem", "")), "")
            values["field"] = _FIELDS_ZH.get(str(values.get("field", "")), "")
        return values

    def extensions(self) -> dict[str, Any]:
        return {"field": self.values.get("field"), "problem": self.values.get("problem")}


class CodeTaken(YuyueError):
    """Department codes and doctor codes are unique in a hospital (letters compared without
    case, so PED and ped cannot both exist)."""

    code = "code_taken"
    status = 409

    def extensions(self) -> dict[str, Any]:
        return {"field": "code", "value": self.values.get("value")}


class DepartmentInactive(YuyueError):
    """A deactivated department takes no new timetable rows, sessions or doctors."""

    code = "department_inactive"
    status = 409


class DoctorInactive(YuyueError):
    """A deactivated doctor gets no new timetable rows or sessions."""

    code = "doctor_inactive"
    status = 409


_STRUCTURE_ZH: Mapping[str, str] = {
    "a name is required": "名称不能为空",
    "the name is too long": "名称过长",
    "the code must be 1 to 32 letters, digits, - or _": "编码须为 1–32 位字母、数字、- 或 _",
    "ages must be whole years from 0 to 150": "年龄须为 0 到 150 的整数",
    "the youngest age must not be above the oldest": "最小年龄不能大于最大年龄",
    "sex must be M or F": "性别限制只能是男（M）或女（F）",
    "the text is too long": "内容过长",
    "the campus is not one of the hospital's": "院区不存在",
    "a doctor with timetable rows stays in their department; remove the rows first": (
        "该医生还有排班，不能调到其他科室；请先删除其排班"
    ),
}

_FIELDS_ZH: Mapping[str, str] = {
    "code": "编码",
    "name": "名称",
    "name_en": "英文名称",
    "title": "职称",
    "title_en": "英文职称",
    "room": "诊室",
    "location": "位置",
    "location_en": "英文位置",
    "what_to_bring": "就诊须带",
    "what_to_bring_en": "英文就诊须带",
    "min_age_years": "最小年龄",
    "max_age_years": "最大年龄",
    "sex_restriction": "性别限制",
    "campus_id": "院区",
    "department_id": "科室",
}

i18n.register(
    {
        "title.invalid_structure": ("科室或医生信息有误", "Invalid department or doctor"),
        "error.invalid_structure": ("{problem}（{field}）", "{field}: {problem}"),
        "title.code_taken": ("编码已被使用", "Code already in use"),
        "error.code_taken": (
            "编码 {value} 已在本院使用，请换一个。",
            "The code {value} is already used in the hospital; choose another.",
        ),
        "title.department_inactive": ("科室已停用", "Department deactivated"),
        "error.department_inactive": (
            "该科室已停用，不能再增加排班、出诊或医生。",
            "The department is deactivated: it takes no new timetable rows, sessions or doctors.",
        ),
        "title.doctor_inactive": ("医生已停诊", "Doctor deactivated"),
        "error.doctor_inactive": (
            "该医生已停用，不能再增加排班或出诊。",
            "The doctor is deactivated: no new timetable rows or sessions.",
        ),
    }
)


@dataclass(frozen=True, slots=True)
class DepartmentFacts:
    """What a scheduler says about a department; `check_department` returns it tidied."""

    code: str
    name: str
    name_en: str = ""
    location: str = ""
    location_en: str = ""
    what_to_bring: str = ""
    what_to_bring_en: str = ""
    min_age_years: int | None = None
    max_age_years: int | None = None
    sex_restriction: str | None = None
    campus_id: Any = None


@dataclass(frozen=True, slots=True)
class DoctorFacts:
    code: str
    name: str
    title: str = ""
    title_en: str = ""
    room: str = ""


def _text(value: str, *, field: str, limit: int, required: bool = False) -> str:
    tidy = value.strip()
    if required and not tidy:
        raise InvalidStructure(field=field, problem="a name is required")
    if len(tidy) > limit:
        problem = "the name is too long" if required else "the text is too long"
        raise InvalidStructure(field=field, problem=problem)
    return tidy


def check_code(code: str) -> str:
    tidy = code.strip()
    if not tidy or len(tidy) > CODE_MAX or not set(tidy) <= CODE_ALPHABET:
        raise InvalidStructure(
            field="code", problem="the code must be 1 to 32 letters, digits, - or _"
        )
    return tidy


def check_code_free(code: str, taken: Collection[str], *, what: str) -> None:
    """`taken`: the codes the hospital's other departments (or doctors) already use."""
    if code.casefold() in {other.casefold() for other in taken}:
        raise CodeTaken(value=code, what=what, what_zh="科室" if what == "department" else "医生")


def check_department(facts: DepartmentFacts, *, taken_codes: Collection[str]) -> DepartmentFacts:
    """A department as it may be saved: a code unique in the hospital, a name, sensible
    ages (the youngest not above the oldest, both whole years 0–150) and M, F or no sex
    restriction. Raises on the first problem; changes nothing."""
    code = check_code(facts.code)
    check_code_free(code, taken_codes, what="department")
    for field, age in (
        ("min_age_years", facts.min_age_years),
        ("max_age_years", facts.max_age_years),
    ):
        if age is not None and not 0 <= age <= OLDEST_AGE:
            raise InvalidStructure(field=field, problem="ages must be whole years from 0 to 150")
    if (
        facts.min_age_years is not None
        and facts.max_age_years is not None
        and facts.min_age_years > facts.max_age_years
    ):
        raise InvalidStructure(
            field="max_age_years", problem="the youngest age must not be above the oldest"
        )
    sex = facts.sex_restriction or None
    if sex is not None and sex not in SEXES:
        raise InvalidStructure(field="sex_restriction", problem="sex must be M or F")
    return DepartmentFacts(
        code=code,
        name=_text(facts.name, field="name", limit=100, required=True),
        name_en=_text(facts.name_en, field="name_en", limit=150),
        location=_text(facts.location, field="location", limit=200),
        location_en=_text(facts.location_en, field="location_en", limit=200),
        what_to_bring=_text(facts.what_to_bring, field="what_to_bring", limit=2000),
        what_to_bring_en=_text(facts.what_to_bring_en, field="what_to_bring_en", limit=2000),
        min_age_years=facts.min_age_years,
        max_age_years=facts.max_age_years,
        sex_restriction=sex,
        campus_id=facts.campus_id,
    )


def check_doctor(facts: DoctorFacts, *, taken_codes: Collection[str]) -> DoctorFacts:
    """A doctor as they may be saved: a code unique in the hospital and a name."""
    code = check_code(facts.code)
    check_code_free(code, taken_codes, what="doctor")
    return DoctorFacts(
        code=code,
        name=_text(facts.name, field="name", limit=50, required=True),
        title=_text(facts.title, field="title", limit=50),
        title_en=_text(facts.title_en, field="title_en", limit=80),
        room=_text(facts.room, field="room", limit=100),
    )


def check_schedulable(*, department_active: bool, doctor_active: bool | None) -> None:
    """New timetable rows, sessions and doctors go only to active departments, and rows
    and sessions only to active doctors (`doctor_active` None: a department clinic)."""
    if not department_active:
        raise DepartmentInactive()
    if doctor_active is False:
        raise DoctorInactive()


def generates(*, department_active: bool, doctor_active: bool | None) -> bool:
    """Whether generation makes new sessions from a timetable row: not for a deactivated
    department or doctor (their sessions already made stay, bookings untouched)."""
    return department_active and doctor_active is not False


def check_department_move(*, moving: bool, timetable_rows: int) -> None:
    """A doctor changes department only without timetable rows: a row belongs to its
    department, and sessions already made keep theirs."""
    if moving and timetable_rows:
        raise InvalidStructure(
            field="department_id",
            problem="a doctor with timetable rows stays in their department; remove the rows first",
        )
