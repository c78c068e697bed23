"""Sign-in rules: how often codes may be sent and how many tries a code allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from yuyue.accounts import rules
from yuyue.accounts.rules import CodeState, SignInPolicy

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
POLICY = SignInPolicy()


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


class TestCodeRequests:
    def test_first_request_is_allowed(self) -> None:
        rules.check_code_request(POLICY, phone_requests=[], client_requests=[], now=NOW)

    @pytest.mark.parametrize(
        ("phone_requests", "wait"),
        [
            ([ago(seconds=10)], 50),  # resend interval
            ([ago(minutes=m) for m in (2, 10, 20, 30, 40)], 1200),  # 5 in the hour
            ([ago(hours=h) for h in (2, 3, 4, 5, 6, 7, 8, 9, 10, 23)], 3600),  # 10 in a day
        ],
    )
    def test_too_many_for_one_phone_says_when_to_retry(
        self, phone_requests: list[datetime], wait: int
    ) -> None:
        with pytest.raises(rules.TooManyCodeRequests) as refused:
            rules.check_code_request(
                POLICY, phone_requests=phone_requests, client_requests=[], now=NOW
            )
        assert refused.value.values["seconds"] == wait
        assert refused.value.extensions() == {"retry_after": wait}

    def test_requests_outside_every_window_do_not_count(self) -> None:
        old = [ago(hours=25)] * 20
        rules.check_code_request(POLICY, phone_requests=old, client_requests=old, now=NOW)

    def test_four_in_the_hour_are_still_allowed(self) -> None:
        recent = [ago(minutes=m) for m in (2, 10, 20, 30)]
        rules.check_code_request(POLICY, phone_requests=recent, client_requests=[], now=NOW)

    def test_one_client_asking_for_many_phones_is_limited(self) -> None:
        client = [ago(minutes=2 + i) for i in range(POLICY.per_client_hour)]
        with pytest.raises(rules.TooManyCodeRequests):
            rules.check_code_request(POLICY, phone_requests=[], client_requests=client, now=NOW)
        rules.check_code_request(POLICY, phone_requests=[], client_requests=client[:-1], now=NOW)


class TestCodeUse:
    def test_fresh_code_is_usable(self) -> None:
        rules.check_code_usable(POLICY, CodeState(NOW + timedelta(minutes=1), None, 0), now=NOW)

    @pytest.mark.parametrize(
        ("state", "error"),
        [
            (CodeState(NOW, None, 0), rules.SignInCodeExpired),
            (CodeState(NOW + timedelta(minutes=1), ago(seconds=5), 0), rules.SignInCodeExpired),
            (CodeState(NOW + timedelta(minutes=1), None, 5), rules.SignInCodeLocked),
        ],
    )
    def test_expired_used_or_locked_codes_are_refused(
        self, state: CodeState, error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            rules.check_code_usable(POLICY, state, now=NOW)

    def test_wrong_code_counts_down_then_locks(self) -> None:
        state = CodeState(NOW + timedelta(minutes=1), None, 0)
        first = rules.wrong_code(POLICY, state)
        assert isinstance(first, rules.SignInCodeWrong)
        assert first.values == {"left": 4}
        last = rules.wrong_code(POLICY, CodeState(state.expires_at, None, 4))
        assert isinstance(last, rules.SignInCodeLocked)

    def test_codes_are_six_digits(self) -> None:
        codes = {rules.new_code() for _ in range(200)}
        assert all(len(c) == 6 and c.isdigit() for c in codes)
        assert len(codes) > 150
