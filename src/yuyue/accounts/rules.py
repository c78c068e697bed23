"""Sign-in rules: how often a code may be sent, how long it lives, how many tries it allows.
Pure: the service loads the recent requests and passes them in with `now`."""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError

CODE_DIGITS = 6


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    code_minutes: int = 5
    # After this many wrong codes the code is dead and a new one must be requested:
    # with at most `per_phone_hour` codes an hour, guessing stays hopeless.
    max_wrong_attempts: int = 5
    resend_seconds: int = 60
    per_phone_hour: int = 5
    per_phone_day: int = 10
    per_client_hour: int = 20


DEFAULT_POLICY = SignInPolicy()


class TooManyCodeRequests(YuyueError):
    code = "too_many_code_requests"
    status = 429

    def extensions(self) -> dict[str, Any]:
        return {"retry_after": self.values["seconds"]}


class SignInCodeWrong(YuyueError):
    code = "sign_in_code_wrong"
    status = 400


class SignInCodeExpired(YuyueError):
    code = "sign_in_code_expired"
    status = 400


class SignInCodeLocked(YuyueError):
    code = "sign_in_code_locked"
    status = 400


i18n.register(
    {
        "title.too_many_code_requests": ("请求过于频繁", "Too many requests"),
        "error.too_many_code_requests": (
            "验证码发送过于频繁，请 {seconds} 秒后再试。",
            "Too many codes requested; please try again in {seconds} seconds.",
        ),
        "title.sign_in_code_wrong": ("验证码错误", "Wrong code"),
        "error.sign_in_code_wrong": (
            "验证码不正确，还可以再试 {left} 次。",
            "That code is not right; {left} more tries.",
        ),
        "title.sign_in_code_expired": ("验证码已失效", "Code expired"),
        "error.sign_in_code_expired": (
            "验证码已过期或已使用，请重新获取。",
            "The code has expired or was already used; please request a new one.",
        ),
        "title.sign_in_code_locked": ("验证码已锁定", "Code locked"),
        "error.sign_in_code_locked": (
            "输错次数过多，该验证码已失效，请重新获取。",
            "Too many wrong tries; this code no longer works. Please request a new one.",
        ),
    }
)


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _wait(oldest_counted: datetime, window: timedelta, now: datetime) -> int:
    return max(1, math.ceil((oldest_counted + window - now).total_seconds()))


def check_code_request(
    policy: SignInPolicy,
    *,
    phone_requests: Sequence[datetime],
    client_requests: Sequence[datetime],
    now: datetime,
) -> None:
    """Refuses a new code while the phone or the client has asked too often; the refusal
    says when asking again will work."""
    by_phone = sorted(phone_requests, reverse=True)
    waits: list[int] = []
    if by_phone and now - by_phone[0] < timedelta(seconds=policy.resend_seconds):
        waits.append(_wait(by_phone[0], timedelta(seconds=policy.resend_seconds), now))
    for limit, window in (
        (policy.per_phone_hour, timedelta(hours=1)),
        (policy.per_phone_day, timedelta(days=1)),
    ):
        recent = [t for t in by_phone if now - t < window]
        if len(recent) >= limit:
            waits.append(_wait(recent[limit - 1], window, now))
    by_client = sorted((t for t in client_requests if now - t < timedelta(hours=1)), reverse=True)
    if len(by_client) >= policy.per_client_hour:
        waits.append(_wait(by_client[policy.per_client_hour - 1], timedelta(hours=1), now))
    if waits:
        raise TooManyCodeRequests(seconds=max(waits))


@dataclass(frozen=True, slots=True)
class CodeState:
    expires_at: datetime
    used_at: datetime | None
    wrong_attempts: int


def check_code_usable(policy: SignInPolicy, state: CodeState, *, now: datetime) -> None:
    if state.wrong_attempts >= policy.max_wrong_attempts:
        raise SignInCodeLocked()
    if state.used_at is not None or now >= state.expires_at:
        raise SignInCodeExpired()


def wrong_code(policy: SignInPolicy, state: CodeState) -> YuyueError:
    """The refusal for a wrong code, counting the try that was just made."""
    left = policy.max_wrong_attempts - (state.wrong_attempts + 1)
    return SignInCodeLocked() if left <= 0 else SignInCodeWrong(left=left)
