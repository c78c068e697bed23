"""Announcement rules without a database: what a notice may say and cover, and which notices
a page shows."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from yuyue.operations.announcements import rules
from yuyue.operations.announcements.rules import (
    AnnouncementKind,
    Draft,
    InvalidAnnouncement,
    Place,
    Posted,
    Scope,
    Severity,
)

TZ = "Asia/Shanghai"
# Friday 2026-11-20 10:00 in Shanghai.
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
FRIDAY, SATURDAY, MONDAY = date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 23)
CAMPUS, OTHER_CAMPUS = uuid.uuid4(), uuid.uuid4()
DEPARTMENT, OTHER_DEPARTMENT = uuid.uuid4(), uuid.uuid4()
SESSION, OTHER_SESSION = uuid.uuid4(), uuid.uuid4()


def draft(**changes: object) -> Draft:
    base = Draft(
        kind=AnnouncementKind.GENERAL,
        severity=Severity.INFO,
        title="停车场施工",
        body="东门停车场暂停使用，请从北门进入。",
        scope=Scope(),
        ends_at=NOW + timedelta(days=2),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def refusal(candidate: Draft) -> tuple[str, str]:
    with pytest.raises(InvalidAnnouncement) as caught:
        rules.check_draft(candidate, now=NOW, tz=TZ)
    return caught.value.values["field"], caught.value.values["problem"]


class TestCheckDraft:
    def test_a_plain_notice_starts_now_with_its_text_tidied(self) -> None:
        checked = rules.check_draft(
            draft(title="  停车场\n施工 ", body=" 第一行 \n\n  第二行  "), now=NOW, tz=TZ
        )
        assert checked.starts_at == NOW
        assert checked.title == "停车场 施工"
        assert checked.body == "第一行\n第二行"

    @pytest.mark.parametrize(
        ("changes", "field", "problem"),
        [
            ({"title": "   "}, "title", "required"),
            ({"body": "\n"}, "body", "required"),
            ({"title": "长" * 61}, "title", "too_long"),
            ({"body": "长" * 501}, "body", "too_long"),
            ({"title_en": "Car park"}, "body_en", "english_incomplete"),
            ({"body_en": "Use the north gate."}, "title_en", "english_incomplete"),
            ({"ends_at": NOW - timedelta(minutes=1)}, "ends_at", "ends_before_start"),
            (
                {"starts_at": NOW - timedelta(days=2), "ends_at": NOW - timedelta(days=1)},
                "ends_at",
                "already_over",
            ),
            ({"ends_at": NOW + timedelta(days=91)}, "ends_at", "too_long_window"),
            ({"scope": Scope(day=MONDAY)}, "day", "day_outside_window"),
            (
                {"scope": Scope(campus_id=CAMPUS, department_id=DEPARTMENT)},
                "scope",
                "one_scope",
            ),
            (
                {"kind": AnnouncementKind.MAINTENANCE, "scope": Scope(campus_id=CAMPUS)},
                "scope",
                "scope_for_maintenance",
            ),
            ({"kind": AnnouncementKind.CLINIC_DELAYED}, "scope", "scope_for_clinic_delayed"),
            (
                {"kind": AnnouncementKind.CAMPUS_CLOSED, "scope": Scope(department_id=DEPARTMENT)},
                "scope",
                "scope_for_campus_closed",
            ),
        ],
    )
    def test_refusals_name_the_field_and_the_problem(
        self, changes: dict[str, object], field: str, problem: str
    ) -> None:
        assert refusal(draft(**changes)) == (field, problem)

    @pytest.mark.parametrize(
        ("kind", "scope"),
        [
            (AnnouncementKind.MAINTENANCE, Scope()),
            (AnnouncementKind.CLINIC_DELAYED, Scope(department_id=DEPARTMENT)),
            (AnnouncementKind.CLINIC_DELAYED, Scope(session_id=SESSION)),
            (AnnouncementKind.CAMPUS_CLOSED, Scope(campus_id=CAMPUS, day=SATURDAY)),
            (AnnouncementKind.CAMPUS_CLOSED, Scope()),
            (AnnouncementKind.GENERAL, Scope(session_id=SESSION)),
        ],
    )
    def test_each_kind_takes_its_scopes(self, kind: AnnouncementKind, scope: Scope) -> None:
        assert rules.check_draft(draft(kind=kind, scope=scope), now=NOW, tz=TZ).scope == scope

    def test_the_day_counts_in_the_hospitals_calendar(self) -> None:
        # Ends Saturday 00:30 in Shanghai (Friday 16:30 UTC): Saturday is inside the window.
        ends = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
        checked = rules.check_draft(draft(scope=Scope(day=SATURDAY), ends_at=ends), now=NOW, tz=TZ)
        assert checked.scope.day == SATURDAY

    def test_a_session_brings_its_department_and_day(self) -> None:
        checked = rules.check_draft(
            draft(scope=Scope(session_id=SESSION), ends_at=NOW + timedelta(days=4)), now=NOW, tz=TZ
        )
        with_session = rules.with_session(checked, department_id=DEPARTMENT, day=MONDAY, tz=TZ)
        assert with_session.scope == Scope(session_id=SESSION, department_id=DEPARTMENT, day=MONDAY)
        with pytest.raises(InvalidAnnouncement) as outside:
            rules.with_session(
                rules.check_draft(draft(scope=Scope(session_id=SESSION)), now=NOW, tz=TZ),
                department_id=DEPARTMENT,
                day=MONDAY,
                tz=TZ,
            )
        assert outside.value.values["problem"] == "session_outside_window"
        other_day = replace(checked, scope=Scope(session_id=SESSION, day=SATURDAY))
        with pytest.raises(InvalidAnnouncement) as differs:
            rules.with_session(other_day, department_id=DEPARTMENT, day=MONDAY, tz=TZ)
        assert differs.value.values["problem"] == "day_not_session"

    def test_the_refusal_reads_in_both_languages(self) -> None:
        error = InvalidAnnouncement(field="ends_at", problem="ends_before_start")
        assert "结束时间须晚于开始时间" in error.detail("zh-CN")
        assert "the end must come after the start" in error.detail("en")
        assert error.extensions() == {"field": "ends_at", "problem": "ends_before_start"}


class TestNotifyDays:
    def test_the_day_alone_or_the_windows_days(self) -> None:
        assert rules.notify_days(Scope(day=MONDAY), NOW, NOW + timedelta(days=5), TZ) == (
            MONDAY,
            MONDAY,
        )
        # Ends Sunday 00:00 in Shanghai exactly: Sunday is not one of its days.
        ends = datetime(2026, 11, 21, 16, 0, tzinfo=UTC)
        assert rules.notify_days(Scope(), NOW, ends, TZ) == (FRIDAY, SATURDAY)

    def test_more_than_a_week_of_days_is_refused(self) -> None:
        with pytest.raises(InvalidAnnouncement) as caught:
            rules.notify_days(Scope(), NOW, NOW + timedelta(days=8), TZ)
        assert caught.value.values["problem"] == "notify_range"


def notice(scope: Scope, **changes: object) -> Posted:
    base = Posted(
        id=uuid.uuid4(),
        kind=AnnouncementKind.GENERAL,
        severity=Severity.INFO,
        title="标题",
        title_en="",
        body="正文",
        body_en="",
        scope=scope,
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW + timedelta(days=1),
        created_by="staff:x:1",
        created_at=NOW - timedelta(hours=1),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


HOME = rules.HOSPITAL_WIDE
DEPARTMENT_PAGE = Place.of(campuses=[CAMPUS], departments=[DEPARTMENT])
APPOINTMENT_PAGE = Place.of(
    campuses=[CAMPUS], departments=[DEPARTMENT], sessions=[SESSION], days=[MONDAY]
)
OTHER_CAMPUS_PAGE = Place.of(campuses=[OTHER_CAMPUS], departments=[OTHER_DEPARTMENT])


class TestCovers:
    @pytest.mark.parametrize(
        ("scope", "home", "kiosk", "department", "appointment", "elsewhere"),
        [
            (Scope(), True, True, True, True, True),
            (Scope(campus_id=CAMPUS), False, True, True, True, False),
            (Scope(department_id=DEPARTMENT), False, False, True, True, False),
            (
                Scope(session_id=SESSION, department_id=DEPARTMENT, day=MONDAY),
                False,
                False,
                True,
                True,
                False,
            ),
            # Another clinic of the same department: its page, not this appointment's.
            (
                Scope(session_id=OTHER_SESSION, department_id=DEPARTMENT, day=MONDAY),
                False,
                False,
                True,
                False,
                False,
            ),
            # A day that is not the appointment's.
            (Scope(department_id=DEPARTMENT, day=SATURDAY), False, False, True, False, False),
            (Scope(day=SATURDAY), True, True, True, False, True),
        ],
    )
    def test_which_pages_show_a_scope(
        self,
        scope: Scope,
        home: bool,
        kiosk: bool,
        department: bool,
        appointment: bool,
        elsewhere: bool,
    ) -> None:
        assert rules.covers(scope, HOME) is home
        assert rules.covers(scope, rules.KIOSK) is kiosk
        assert rules.covers(scope, DEPARTMENT_PAGE) is department
        assert rules.covers(scope, APPOINTMENT_PAGE) is appointment
        assert rules.covers(scope, OTHER_CAMPUS_PAGE) is elsewhere
        assert rules.covers(scope, rules.EVERYWHERE) is True


class TestShownOn:
    def test_only_in_its_window_and_never_once_withdrawn(self) -> None:
        current = notice(Scope())
        later = notice(Scope(), starts_at=NOW + timedelta(hours=1))
        over = notice(Scope(), ends_at=NOW)
        withdrawn = notice(Scope(), withdrawn_at=NOW - timedelta(minutes=5))
        shown = rules.shown_on([current, later, over, withdrawn], HOME, now=NOW)
        assert shown == [current]
        assert rules.shown_on([later], HOME, now=NOW + timedelta(hours=1)) == [later]

    def test_the_most_severe_first_then_the_newest(self) -> None:
        old_info = notice(Scope(), starts_at=NOW - timedelta(hours=3))
        new_info = notice(Scope(), starts_at=NOW - timedelta(minutes=5))
        warning = notice(Scope(), severity=Severity.WARNING)
        urgent = notice(Scope(), severity=Severity.URGENT, starts_at=NOW - timedelta(days=1))
        shown = rules.shown_on([old_info, warning, new_info, urgent], HOME, now=NOW)
        assert shown == [urgent, warning, new_info, old_info]

    def test_english_falls_back_to_chinese(self) -> None:
        plain = notice(Scope())
        both = notice(Scope(), title_en="Car park", body_en="Use the north gate.")
        assert plain.title_in("en") == "标题" and both.title_in("en") == "Car park"
        assert both.body_in("zh-CN") == "正文"
