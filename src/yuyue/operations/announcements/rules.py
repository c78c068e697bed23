"""Announcements (公告), pure: what a notice may say and cover, when it is shown, and which
notices a page shows.

A notice covers the whole hospital, one campus, one department or one clinic session, and
may name one day (a closure next Saturday). It is shown from `starts_at` until `ends_at`
unless withdrawn. Pages describe themselves as a :class:`Place` (the campuses, departments,
sessions and days they are about) and show the notices that cover it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError


class AnnouncementKind(StrEnum):
    MAINTENANCE = "maintenance"
    CLINIC_DELAYED = "clinic_delayed"
    CAMPUS_CLOSED = "campus_closed"
    GENERAL = "general"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    URGENT = "urgent"


class ScopeLevel(StrEnum):
    HOSPITAL = "hospital"
    CAMPUS = "campus"
    DEPARTMENT = "department"
    SESSION = "session"


TITLE_MAX: Final = 60
TITLE_EN_MAX: Final = 120
BODY_MAX: Final = 500
BODY_EN_MAX: Final = 1000
# A notice is news, not a standing page: a longer one is a sign of a typo in a year.
LONGEST_WINDOW: Final = timedelta(days=90)
# Texting reaches patients with appointments on the notice's day, or on the days of its
# window; more than a week of days is a mass mailing, not a notice.
NOTIFY_DAYS_MAX: Final = 7
# Which scopes each kind may take: maintenance concerns everyone, a delay a clinic.
KIND_SCOPES: Final[dict[AnnouncementKind, frozenset[ScopeLevel]]] = {
    AnnouncementKind.MAINTENANCE: frozenset({ScopeLevel.HOSPITAL}),
    AnnouncementKind.CLINIC_DELAYED: frozenset({ScopeLevel.DEPARTMENT, ScopeLevel.SESSION}),
    AnnouncementKind.CAMPUS_CLOSED: frozenset({ScopeLevel.HOSPITAL, ScopeLevel.CAMPUS}),
    AnnouncementKind.GENERAL: frozenset(ScopeLevel),
}
_SEVERITY_ORDER: Final = {Severity.URGENT: 0, Severity.WARNING: 1, Severity.INFO: 2}


class InvalidAnnouncement(YuyueError):
    """The notice cannot be posted as written; `field` names the input at fault."""

    code = "invalid_announcement"
    status = 422

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        problem = i18n.translate(f"announcement.{self.values['problem']}", locale, **self.values)
        return i18n.translate("error.invalid_announcement", locale, problem=problem)

    def extensions(self) -> dict[str, Any]:
        return {"field": self.values["field"], "problem": self.values["problem"]}


def _refuse(field_name: str, problem: str, **values: Any) -> InvalidAnnouncement:
    return InvalidAnnouncement(field=field_name, problem=problem, **values)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whom a notice concerns. At most one of campus, department and session is named;
    `department_id` of a session scope is the session's own, filled in when it is posted."""

    campus_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    day: date | None = None

    @property
    def level(self) -> ScopeLevel:
        if self.session_id is not None:
            return ScopeLevel.SESSION
        if self.department_id is not None:
            return ScopeLevel.DEPARTMENT
        if self.campus_id is not None:
            return ScopeLevel.CAMPUS
        return ScopeLevel.HOSPITAL


@dataclass(frozen=True, slots=True)
class Draft:
    """A notice as a member of staff wrote it, before it is checked."""

    kind: AnnouncementKind
    severity: Severity
    title: str
    body: str
    scope: Scope
    ends_at: datetime
    starts_at: datetime | None = None
    title_en: str = ""
    body_en: str = ""


@dataclass(frozen=True, slots=True)
class Posted:
    """A notice as stored."""

    id: uuid.UUID
    kind: AnnouncementKind
    severity: Severity
    title: str
    title_en: str
    body: str
    body_en: str
    scope: Scope
    starts_at: datetime
    ends_at: datetime
    created_by: str
    created_at: datetime
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None
    notified: int = 0

    def title_in(self, locale: str) -> str:
        return self.title_en if locale == "en" and self.title_en else self.title

    def body_in(self, locale: str) -> str:
        return self.body_en if locale == "en" and self.body_en else self.body

    def shown_at(self, now: datetime) -> bool:
        return self.withdrawn_at is None and self.starts_at <= now < self.ends_at


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _paragraphs(text: str) -> str:
    """Keeps the writer's line breaks (a body may list things) and nothing else extra."""
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    return "\n".join(line for line in lines if line)


def _local_day(instant: datetime, tz: str) -> date:
    return instant.astimezone(ZoneInfo(tz)).date()


def check_draft(draft: Draft, *, now: datetime, tz: str) -> Draft:
    """The notice cleaned and checked, or the first thing wrong with it. A missing start is
    now; the scope's campus, department or session must still be found (by the service)."""
    title, title_en = _one_line(draft.title), _one_line(draft.title_en)
    body, body_en = _paragraphs(draft.body), _paragraphs(draft.body_en)
    for name, text, most in (
        ("title", title, TITLE_MAX),
        ("title_en", title_en, TITLE_EN_MAX),
        ("body", body, BODY_MAX),
        ("body_en", body_en, BODY_EN_MAX),
    ):
        if name in ("title", "body") and not text:
            raise _refuse(name, "required")
        if len(text) > most:
            raise _refuse(name, "too_long", most=most)
    if bool(title_en) != bool(body_en):
        raise _refuse("title_en" if not title_en else "body_en", "english_incomplete")
    scope = draft.scope
    named = [scope.campus_id, scope.department_id, scope.session_id]
    if sum(value is not None for value in named) > 1:
        raise _refuse("scope", "one_scope")
    if scope.level not in KIND_SCOPES[draft.kind]:
        raise _refuse("scope", f"scope_for_{draft.kind.value}")
    starts_at = draft.starts_at or now
    ends_at = draft.ends_at
    if ends_at <= starts_at:
        raise _refuse("ends_at", "ends_before_start")
    if ends_at <= now:
        raise _refuse("ends_at", "already_over")
    if ends_at - starts_at > LONGEST_WINDOW:
        raise _refuse("ends_at", "too_long_window", days=LONGEST_WINDOW.days)
    if scope.day is not None and not (
        _local_day(starts_at, tz) <= scope.day <= _local_day(ends_at, tz)
    ):
        raise _refuse("day", "day_outside_window")
    return replace(
        draft,
        title=title,
        title_en=title_en,
        body=body,
        body_en=body_en,
        starts_at=starts_at,
    )


def with_session(draft: Draft, *, department_id: uuid.UUID, day: date, tz: str) -> Draft:
    """A session scope takes the session's department and day; a different day, or a
    session outside the window, is refused."""
    assert draft.starts_at is not None, "check_draft first"
    if draft.scope.day is not None and draft.scope.day != day:
        raise _refuse("day", "day_not_session")
    if not _local_day(draft.starts_at, tz) <= day <= _local_day(draft.ends_at, tz):
        raise _refuse("session_id", "session_outside_window")
    return replace(draft, scope=replace(draft.scope, department_id=department_id, day=day))


def notify_days(scope: Scope, starts_at: datetime, ends_at: datetime, tz: str) -> tuple[date, date]:
    """The visit days whose patients are texted: the notice's day, else its window's days."""
    if scope.day is not None:
        return scope.day, scope.day
    first, last = _local_day(starts_at, tz), _local_day(ends_at - timedelta(microseconds=1), tz)
    if (last - first).days + 1 > NOTIFY_DAYS_MAX:
        raise _refuse("notify_patients", "notify_range", days=NOTIFY_DAYS_MAX)
    return first, last


# --- which notices a page shows ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """What a page is about. `session_ids` empty means the departments as a whole (their
    page, their waiting-room screen), which also shows notices about any of their sessions;
    `days` empty means no particular day. `all_campuses` is a page for everyone who enters
    the hospital (the kiosk); `everything` is the list of every notice in force."""

    campus_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    department_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    session_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    days: frozenset[date] = field(default_factory=frozenset)
    all_campuses: bool = False
    everything: bool = False

    @classmethod
    def of(
        cls,
        *,
        campuses: Iterable[uuid.UUID | None] = (),
        departments: Iterable[uuid.UUID | None] = (),
        sessions: Iterable[uuid.UUID | None] = (),
        days: Iterable[date | None] = (),
    ) -> Place:
        return cls(
            campus_ids=frozenset(c for c in campuses if c is not None),
            department_ids=frozenset(d for d in departments if d is not None),
            session_ids=frozenset(s for s in sessions if s is not None),
            days=frozenset(d for d in days if d is not None),
        )


HOSPITAL_WIDE: Final = Place()
KIOSK: Final = Place(all_campuses=True)
EVERYWHERE: Final = Place(everything=True)


def covers(scope: Scope, place: Place) -> bool:
    """Whether a notice with this scope belongs on a page about `place`."""
    if place.everything:
        return True
    if scope.day is not None and place.days and scope.day not in place.days:
        return False
    level = scope.level
    if level is ScopeLevel.HOSPITAL:
        return True
    if level is ScopeLevel.CAMPUS:
        return place.all_campuses or scope.campus_id in place.campus_ids
    if level is ScopeLevel.DEPARTMENT:
        return scope.department_id in place.department_ids
    if scope.session_id in place.session_ids:
        return True
    return not place.session_ids and scope.department_id in place.department_ids


def shown_on(notices: Iterable[Posted], place: Place, *, now: datetime) -> list[Posted]:
    """The notices in force that cover `place`: the most severe first, then the newest."""
    chosen = [n for n in notices if n.shown_at(now) and covers(n.scope, place)]
    return sorted(chosen, key=lambda n: (_SEVERITY_ORDER[n.severity], -n.starts_at.timestamp()))


def live_channel(hospital_id: uuid.UUID) -> str:
    """The live-bus channel on which a posted or withdrawn notice is announced."""
    return f"announcements:{hospital_id}"


i18n.register(
    {
        "title.invalid_announcement": ("公告内容有误", "Invalid announcement"),
        "error.invalid_announcement": (
            "公告未发布：{problem}。未做任何更改。",
            "The announcement was not posted: {problem}. Nothing was changed.",
        ),
        "announcement.required": ("标题和正文不能为空", "the title and the text are required"),
        "announcement.too_long": (
            "{field} 最多 {most} 个字",
            "{field} takes at most {most} characters",
        ),
        "announcement.english_incomplete": (
            "英文标题和英文正文须同时填写或同时留空",
            "give both the English title and the English text, or neither",
        ),
        "announcement.one_scope": (
            "范围只能选一个：全院、一个院区、一个科室或一个出诊",
            "choose one scope: the whole hospital, a campus, a department or a clinic session",
        ),
        "announcement.scope_for_maintenance": (
            "系统维护公告只能面向全院",
            "a maintenance notice concerns the whole hospital",
        ),
        "announcement.scope_for_clinic_delayed": (
            "门诊延迟公告须选择科室或出诊",
            "a clinic delay names a department or a clinic session",
        ),
        "announcement.scope_for_campus_closed": (
            "院区停诊公告须面向全院或一个院区",
            "a closure concerns the whole hospital or one campus",
        ),
        "announcement.scope_for_general": ("范围有误", "the scope is not valid"),
        "announcement.ends_before_start": (
            "结束时间须晚于开始时间",
            "the end must come after the start",
        ),
        "announcement.already_over": ("结束时间已过", "the end is already past"),
        "announcement.too_long_window": (
            "展示时间最长 {days} 天",
            "a notice is shown for at most {days} days",
        ),
        "announcement.day_outside_window": (
            "所涉日期须在展示时间之内",
            "the day it concerns must fall within the time it is shown",
        ),
        "announcement.day_not_session": (
            "所涉日期与出诊日期不一致",
            "the day differs from the clinic session's date",
        ),
        "announcement.session_outside_window": (
            "该出诊不在展示时间之内",
            "the clinic session is not within the time the notice is shown",
        ),
        "announcement.notify_range": (
            "短信通知须指定日期，或展示时间不超过 {days} 天",
            "to text patients, name a day or show the notice for at most {days} days",
        ),
        "announcement.bad_form": (
            "日期、时间或选项的格式不对",
            "a date, a time or a choice is not in the expected form",
        ),
        "announcement.unknown_campus": ("找不到该院区", "there is no such campus"),
        "announcement.unknown_department": ("找不到该科室", "there is no such department"),
        "announcement.unknown_session": ("找不到该出诊", "there is no such clinic session"),
        "what.announcement": ("公告", "announcement"),
    }
)
