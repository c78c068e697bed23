"""The sign-in rules, pure: password policy, lock-out, address throttling, sessions, TOTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from yuyue.staff import rules
from yuyue.staff.enums import Role
from yuyue.staff.rules import AccessLimit

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1a", "too_short"),
        ("12345678901", "only_digits"),
        ("nurse-wang1", "username"),
        ("Password123", "common"),
        ("1234567890", "only_digits"),
        ("correct horse battery", None),
        ("Xq7-lantern-42", None),
    ],
)
def test_password_policy(password: str, reason: str | None) -> None:
    assert rules.password_weakness(password, username="nurse-wang") == reason


def test_five_wrong_attempts_in_a_row_lock_for_fifteen_minutes() -> None:
    count = 0
    for _ in range(4):
        state = rules.after_wrong_attempt(count=count, now=T0)
        assert state.locked_until is None
        count = state.count
    locked = rules.after_wrong_attempt(count=count, now=T0)
    assert locked == rules.FailedAttempts(count=0, locked_until=T0 + timedelta(minutes=15))
    assert rules.locked_for(locked_until=locked.locked_until, now=T0 + timedelta(minutes=14)) == (
        timedelta(minutes=1)
    )
    assert (
        rules.locked_for(locked_until=locked.locked_until, now=T0 + timedelta(minutes=15)) is None
    )


def test_an_address_is_blocked_for_a_growing_while() -> None:
    state = None
    blocks = []
    now = T0
    for _ in range(3):
        for _ in range(rules.ADDRESS_FAILURES):
            assert rules.address_blocked_for(state, now=now) is None
            state = rules.address_after_failure(state, now=now)
        blocked = rules.address_blocked_for(state, now=now)
        assert blocked is not None
        blocks.append(blocked)
        now += blocked
    assert blocks == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]


def test_failures_spread_beyond_the_window_never_block() -> None:
    state = None
    now = T0
    for _ in range(30):
        state = rules.address_after_failure(state, now=now)
        assert rules.address_blocked_for(state, now=now) is None
        now += rules.ADDRESS_WINDOW / (rules.ADDRESS_FAILURES - 2)


def test_a_session_dies_idle_ended_or_expired() -> None:
    live = {"ended_at": None, "last_seen_at": T0, "expires_at": T0 + timedelta(hours=12)}
    assert rules.session_alive(**live, now=T0 + timedelta(minutes=29))
    assert not rules.session_alive(**live, now=T0 + timedelta(minutes=30))
    assert not rules.session_alive(**{**live, "ended_at": T0}, now=T0)
    assert not rules.session_alive(
        **{**live, "last_seen_at": T0 + timedelta(hours=12)}, now=T0 + timedelta(hours=12)
    )
    assert not rules.needs_touch(last_seen_at=T0, now=T0 + timedelta(seconds=59))
    assert rules.needs_touch(last_seen_at=T0, now=T0 + timedelta(seconds=60))


def test_a_totp_code_works_once_and_within_one_step_either_side() -> None:
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    code = totp.at(T0)
    step = rules.match_totp(secret, code, now=T0, last_step=None)
    assert step == rules.totp_step(T0)
    assert rules.match_totp(secret, code, now=T0, last_step=step) is None
    assert rules.match_totp(secret, code, now=T0 + timedelta(seconds=30), last_step=None) == step
    assert rules.match_totp(secret, code, now=T0 + timedelta(seconds=90), last_step=None) is None
    assert rules.match_totp(secret, "12345", now=T0, last_step=None) is None
    assert rules.match_totp(secret, "abcdef", now=T0, last_step=None) is None


@pytest.mark.parametrize(
    ("must_change", "has_factor", "roles", "limit"),
    [
        (True, True, {Role.NURSE}, AccessLimit.PASSWORD_CHANGE),
        (False, False, {Role.NURSE}, AccessLimit.SECOND_FACTOR_ENROLMENT),
        (False, True, {Role.NURSE}, None),
        (False, False, {Role.DOCTOR}, None),
    ],
)
def test_what_a_sign_in_must_do_first(
    must_change: bool, has_factor: bool, roles: set[Role], limit: AccessLimit | None
) -> None:
    assert (
        rules.access_limit(
            roles=frozenset(roles),
            second_factor_roles=frozenset({Role.NURSE, Role.ADMIN}),
            has_second_factor=has_factor,
            password_must_change=must_change,
        )
        is limit
    )


def test_every_staff_role_needs_a_second_factor_by_default() -> None:
    assert frozenset(Role) == rules.DEFAULT_SECOND_FACTOR_ROLES
