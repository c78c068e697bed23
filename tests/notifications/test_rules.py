"""Delivery rules, pure and table-driven: back-off, verdicts, quiet hours, reminders,
channels, templates and email addresses."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from yuyue.notifications import rules
from yuyue.notifications.channels.base import DeliveryChannel
from yuyue.notifications.enums import MessageKind as K
from yuyue.notifications.templates import DEFAULTS, sample_values

SH = "Asia/Shanghai"
QUIET = rules.QuietHours(time(21, 0), time(8, 0))


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant given in Shanghai time in November 2026, as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


class TestBackOff:
    @pytest.mark.parametrize(
        ("attempt", "rand", "expected"),
        [
            (1, 0.0, timedelta(seconds=15)),
            (1, 0.5, timedelta(seconds=22.5)),
            (2, 0.0, timedelta(seconds=30)),
            (3, 0.0, timedelta(seconds=60)),
            (5, 0.999, timedelta(seconds=479.76)),  # ceiling 480 s
            (8, 0.0, timedelta(minutes=30)),  # 30 s * 2^7 = 64 min, capped at 60 min
            (40, 0.0, timedelta(minutes=30)),
        ],
    )
    def test_exponential_with_jitter_and_a_cap(
        self, attempt: int, rand: float, expected: timedelta
    ) -> None:
        assert rules.retry_delay(attempt, rand=rand) == expected

    def test_the_wait_grows_and_never_exceeds_the_cap(self) -> None:
        waits = [rules.retry_delay(n, rand=0.0) for n in range(1, 12)]
        assert waits == sorted(waits)
        assert all(rules.retry_delay(n, rand=0.9999) <= rules.RETRY_CAP for n in range(1, 40))

    @pytest.mark.parametrize(("attempt", "rand"), [(0, 0.5), (1, 1.0), (1, -0.1)])
    def test_nonsense_is_refused(self, attempt: int, rand: float) -> None:
        with pytest.raises(ValueError, match=r"attempt|rand"):
            rules.retry_delay(attempt, rand=rand)


class TestVerdict:
    @pytest.mark.parametrize(
        ("accepted", "retryable", "attempts", "expected"),
        [
            (True, False, 1, rules.Verdict.SENT),
            (True, True, 5, rules.Verdict.SENT),
            (False, True, 1, rules.Verdict.RETRY),
            (False, True, 4, rules.Verdict.RETRY),
            (False, True, 5, rules.Verdict.FAILED),
            (False, False, 1, rules.Verdict.FAILED),
        ],
    )
    def test_outcome_to_verdict(
        self, accepted: bool, retryable: bool, attempts: int, expected: rules.Verdict
    ) -> None:
        verdict = rules.judge(
            accepted=accepted, retryable=retryable, attempts=attempts, max_attempts=5
        )
        assert verdict is expected


class TestQuietHours:
    @pytest.mark.parametrize(
        ("window", "moment", "quiet"),
        [
            (QUIET, time(20, 59), False),
            (QUIET, time(21, 0), True),
            (QUIET, time(23, 30), True),
            (QUIET, time(0, 0), True),
            (QUIET, time(7, 59), True),
            (QUIET, time(8, 0), False),
            (rules.QuietHours(time(12, 0), time(14, 0)), time(13, 0), True),
            (rules.QuietHours(time(12, 0), time(14, 0)), time(14, 0), False),
            (rules.QuietHours(time(9, 0), time(9, 0)), time(9, 0), False),
        ],
    )
    def test_window_membership(self, window: rules.QuietHours, moment: time, quiet: bool) -> None:
        assert window.contains(moment) is quiet

    @pytest.mark.parametrize(
        ("kind", "due", "expected"),
        [
            # A reminder due at 22:00 waits until 08:00 the next morning...
            (K.REMINDER, sh(21, 22), sh(22, 8)),
            # ...one due at 06:30 until 08:00 the same morning...
            (K.REMINDER, sh(22, 6, 30), sh(22, 8)),
            # ...and one due in the day goes when due.
            (K.REMINDER, sh(21, 15), sh(21, 15)),
            # What the patient just triggered, or cannot wait, goes at once.
            (K.SIGN_IN_CODE, sh(21, 23), sh(21, 23)),
            (K.BOOKING_CONFIRMED, sh(21, 23), sh(21, 23)),
            (K.CANCELLED, sh(22, 2), sh(22, 2)),
            (K.STOP_CLINIC, sh(22, 2), sh(22, 2)),
            (K.WAITLIST_OFFER, sh(22, 2), sh(22, 2)),
        ],
    )
    def test_only_reminders_wait_for_the_end_of_quiet_hours(
        self, kind: K, due: datetime, expected: datetime
    ) -> None:
        assert rules.deliver_at(kind, due, quiet=QUIET, tz=SH) == expected


class TestReminderSchedule:
    VISIT = sh(27, 9)  # Friday 27 November, 09:00

    @pytest.mark.parametrize(
        ("now", "offsets", "expected"),
        [
            # Booked a week and a half ahead: all three layers.
            (sh(16, 10), (168, 72, 24), [sh(20, 9), sh(24, 9), sh(26, 9)]),
            # Booked four days ahead: the seven-day reminder is already past.
            (sh(23, 10), (168, 72, 24), [sh(24, 9), sh(26, 9)]),
            # Booked the evening before: nothing left to remind of.
            (sh(26, 20), (168, 72, 24), []),
            # 14 h before is 19:00; 12 h before is 21:00, moved to 08:00 on the day.
            (sh(23, 10), (14, 12), [sh(26, 19), sh(27, 8)]),
            # 2 h before is 07:00, quiet, and 08:00 is still before the visit.
            (sh(23, 10), (2,), [sh(27, 8)]),
            # Two offsets moved to the same morning make one reminder.
            (sh(23, 10), (10, 5), [sh(27, 8)]),
        ],
    )
    def test_layers_skip_the_past_and_respect_quiet_hours(
        self, now: datetime, offsets: tuple[int, ...], expected: list[datetime]
    ) -> None:
        got = rules.reminder_times(
            visit_start=self.VISIT, offsets_hours=offsets, now=now, quiet=QUIET, tz=SH
        )
        assert got == expected

    def test_a_reminder_moved_past_the_visit_is_dropped(self) -> None:
        early = sh(27, 7, 30)  # 07:30, inside the quiet hours itself
        got = rules.reminder_times(
            visit_start=early, offsets_hours=(3,), now=sh(23, 10), quiet=QUIET, tz=SH
        )
        assert got == []

    @pytest.mark.parametrize(
        "offsets",
        [[0], [721], [24, 24], [1, 2, 3, 4, 5, 6, 7], [True]],  # type: ignore[list-item]
    )
    def test_bad_offsets_are_refused(self, offsets: list[int]) -> None:
        with pytest.raises(rules.InvalidNotificationSettings):
            rules.check_offsets(offsets)

    def test_good_offsets_come_back_largest_first(self) -> None:
        assert rules.check_offsets([24, 168, 2]) == [168, 24, 2]


class TestChannels:
    @pytest.mark.parametrize(
        ("kind", "phone", "account", "email", "expected"),
        [
            (K.BOOKING_CONFIRMED, True, True, False, ["sms", "inbox"]),
            (K.BOOKING_CONFIRMED, True, True, True, ["sms", "inbox", "email"]),
            (K.REMINDER, False, True, True, ["inbox", "email"]),
            (K.SIGN_IN_CODE, True, True, True, ["sms"]),
            (K.SIGN_IN_CODE, False, True, True, []),
        ],
    )
    def test_who_gets_what(
        self, kind: K, phone: bool, account: bool, email: bool, expected: list[str]
    ) -> None:
        got = rules.channels_for(kind, has_phone=phone, has_account=account, has_email=email)
        assert got == [DeliveryChannel(c) for c in expected]


class TestTemplates:
    def test_every_default_uses_only_its_kinds_placeholders(self) -> None:
        for (kind, _locale), (subject, body) in DEFAULTS.items():
            rules.check_template(kind, subject=subject, body=body)
        assert {kind for kind, _ in DEFAULTS} == set(K)
        assert {locale for _, locale in DEFAULTS} == {"zh-CN", "en"}

    @pytest.mark.parametrize(
        ("kind", "body", "problem"),
        [
            (K.REMINDER, "{patient} {password}", "template.unknown_placeholders"),
            (K.SIGN_IN_CODE, "{code} {voucher_code}", "template.unknown_placeholders"),
            (K.REMINDER, "{patient.__class__}", "template.malformed"),
            (K.REMINDER, "{date!r}", "template.malformed"),
            (K.REMINDER, "{date:>10}", "template.malformed"),
            (K.REMINDER, "{date", "template.malformed"),
            (K.REMINDER, "{0}", "template.malformed"),
            (K.REMINDER, "  ", "template.empty"),
        ],
    )
    def test_bad_templates_are_refused(self, kind: K, body: str, problem: str) -> None:
        with pytest.raises(rules.InvalidTemplate) as refused:
            rules.check_template(kind, subject="s", body=body)
        assert refused.value.values["problem_id"] == problem
        assert refused.value.detail("en")

    def test_rendering_fills_known_values_and_leaves_missing_ones_empty(self) -> None:
        out = rules.render_message(
            "{patient}", "{patient}: {date} {time} {{literal}} [{doctor}]", {"patient": "张三"}
        )
        assert out == rules.Rendered("张三", "张三:   {literal} []")

    def test_secrets_are_hidden_in_the_redacted_values(self) -> None:
        shown = rules.redacted({"code": "123456", "minutes": "5"}, {"code"})
        assert shown == {"code": "******", "minutes": "5"}


class TestEmail:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("Li.Si@Example.COM", "Li.Si@example.com"),
            ("  a+b@x.cn ", "a+b@x.cn"),
            ("", None),
            (None, None),
        ],
    )
    def test_good_addresses(self, raw: str | None, expected: str | None) -> None:
        assert rules.normalise_email(raw) == expected

    @pytest.mark.parametrize(
        "raw", ["no-at.example.com", "a@b", "a@@b.cn", "a..b@x.cn", ".a@x.cn", "张@x.cn", "a@x.c"]
    )
    def test_bad_addresses(self, raw: str) -> None:
        with pytest.raises(rules.InvalidEmail):
            rules.normalise_email(raw)


@pytest.mark.parametrize(
    ("local_due", "expected_local"),
    [
        (datetime(2026, 11, 22, 21, 59), datetime(2026, 11, 22, 21, 59)),
        (datetime(2026, 11, 22, 22, 0), datetime(2026, 11, 23, 7, 0)),
        (datetime(2026, 11, 23, 6, 59), datetime(2026, 11, 23, 7, 0)),
        (datetime(2026, 11, 23, 7, 0), datetime(2026, 11, 23, 7, 0)),
    ],
)
def test_default_quiet_hours_are_the_hospital_defaults_22_to_7(
    local_due: datetime, expected_local: datetime
) -> None:
    shanghai = timedelta(hours=8)
    at = rules.deliver_at(
        K.REMINDER,
        (local_due - shanghai).replace(tzinfo=UTC),
        quiet=rules.DEFAULT_QUIET_HOURS,
        tz="Asia/Shanghai",
    )
    assert at == (expected_local - shanghai).replace(tzinfo=UTC)


class TestDepartmentTemplates:
    def test_only_messages_about_an_appointment_have_department_wording(self) -> None:
        assert K.REMINDER in rules.DEPARTMENT_KINDS and K.WAITLIST_OFFER in rules.DEPARTMENT_KINDS
        for kind in (K.SIGN_IN_CODE, K.BLACKLISTED, K.APPEAL_ACCEPTED, K.ANNOUNCEMENT):
            assert kind not in rules.DEPARTMENT_KINDS
            with pytest.raises(rules.InvalidTemplate) as refused:
                rules.check_template_scope(kind, for_department=True)
            assert "只能设置全院模板" in refused.value.detail("zh-CN")
            rules.check_template_scope(kind, for_department=False)
        rules.check_template_scope(K.REMINDER, for_department=True)


class TestPreview:
    @pytest.mark.parametrize("locale", ["zh-CN", "en"])
    def test_the_samples_fill_every_placeholder_of_every_kind(self, locale: str) -> None:
        values = sample_values(
            locale,
            visit_date=date(2026, 11, 24),
            hospital="示例医院",
            department="儿科",
            location="门诊楼3层",
            what_to_bring="请带儿童预防接种证。",
            link="https://example.test/appointments/sample",
        )
        every = set().union(*rules.PLACEHOLDERS.values())
        assert every <= set(values) and all(values[name] for name in every)
        assert values["location"].startswith("门诊楼3层")

    def test_a_preview_fills_the_wording_with_the_samples(self) -> None:
        shown = rules.preview(
            K.REMINDER,
            subject="{department}就诊提醒",
            body="{patient}，{date}请到{location}。{what_to_bring}",
            values={
                "department": "儿科",
                "patient": "张小明",
                "date": "11月24日",
                "location": "3诊室",
                "what_to_bring": "请带接种证。",
            },
        )
        assert shown == rules.Rendered("儿科就诊提醒", "张小明，11月24日请到3诊室。请带接种证。")

    @pytest.mark.parametrize(
        ("subject", "body"),
        [("提醒", "{id_number}"), ("提醒", "{patient"), ("", "{patient}")],
    )
    def test_a_wording_that_could_not_be_saved_is_not_previewed(
        self, subject: str, body: str
    ) -> None:
        with pytest.raises(rules.InvalidTemplate):
            rules.preview(K.REMINDER, subject=subject, body=body, values={})
