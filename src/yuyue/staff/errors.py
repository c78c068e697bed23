"""Refusals of staff sign-in and account management, each with a stable code."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, ClassVar

from yuyue.kit import i18n
from yuyue.kit.errors import Conflict, YuyueError


class RetryLater(YuyueError):
    """A refusal that says when to try again (the `Retry-After` header and `retry_at`)."""

    status: ClassVar[int] = 429

    def __init__(self, *, wait: timedelta, now: datetime) -> None:
        seconds = max(1, math.ceil(wait.total_seconds()))
        super().__init__(minutes=max(1, math.ceil(seconds / 60)))
        self.retry_after = seconds
        self.retry_at = now + timedelta(seconds=seconds)

    def extensions(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after, "retry_at": self.retry_at.isoformat()}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class AccountLocked(RetryLater):
    code = "account_locked"


class TooManyAttempts(RetryLater):
    code = "too_many_attempts"


class MfaRequired(YuyueError):
    """The password was right; the account's second factor is still to come."""

    code = "mfa_required"
    status = 401

    def __init__(self, *, challenge: str, expires_at: datetime) -> None:
        super().__init__()
        self.challenge = challenge
        self.expires_at = expires_at

    def extensions(self) -> dict[str, Any]:
        return {"challenge": self.challenge, "challenge_expires_at": self.expires_at.isoformat()}


class InvalidSecondFactor(YuyueError):
    code = "invalid_second_factor"
    status = 401


class InvalidChallenge(YuyueError):
    code = "invalid_challenge"
    status = 401


class WeakPassword(YuyueError):
    code = "weak_password"
    status = 422

    def __init__(self, *, reason: str) -> None:
        super().__init__(reason=reason)

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        reason = i18n.translate(f"password.{self.values['reason']}", locale)
        return i18n.translate("error.weak_password", locale, reason=reason)

    def extensions(self) -> dict[str, Any]:
        return {"reason": self.values["reason"]}


class WrongPassword(YuyueError):
    """The current password given to change it is wrong (it counts toward the lock-out)."""

    code = "wrong_password"
    status = 403


class PasswordChangeRequired(YuyueError):
    code = "password_change_required"
    status = 403


class SecondFactorEnrolmentRequired(YuyueError):
    code = "second_factor_enrolment_required"
    status = 403


class SecondFactorAlreadyEnrolled(YuyueError):
    code = "second_factor_already_enrolled"
    status = 409


class SecondFactorNotStarted(YuyueError):
    code = "second_factor_not_started"
    status = 409


class OwnAccount(YuyueError):
    """An administrator cannot disable their own account or take away their own admin role."""

    code = "own_account"
    status = 409


class UsernameTaken(Conflict):
    """Another account of the hospital has this username. The code stays `conflict`, as
    clients have always been answered; the sentence says what conflicts."""

    def __init__(self, *, username: str) -> None:
        super().__init__(username=username)

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        return i18n.translate("error.username_taken", locale, username=self.values["username"])


i18n.register(
    {
        "error.username_taken": (
            "用户名“{username}”已被使用，请换一个。",
            "The username “{username}” is already taken; choose another.",
        ),
        "title.account_locked": ("账号已锁定", "Account locked"),
        "error.account_locked": (
            "密码连续错误次数过多，账号已锁定，请 {minutes} 分钟后再试。",
            "Too many wrong attempts in a row: the account is locked; "
            "try again in {minutes} minutes.",
        ),
        "title.too_many_attempts": ("尝试过于频繁", "Too many attempts"),
        "error.too_many_attempts": (
            "此地址登录失败次数过多，请 {minutes} 分钟后再试。",
            "Too many failed sign-ins from this address; try again in {minutes} minutes.",
        ),
        "title.mfa_required": ("需要动态验证码", "Second factor required"),
        "error.mfa_required": (
            "密码正确，请再输入验证器应用中的 6 位动态码（或一个恢复码）。",
            "The password is right; now enter the 6-digit code from the authenticator app "
            "(or a recovery code).",
        ),
        "title.invalid_second_factor": ("动态码不正确", "Wrong code"),
        "error.invalid_second_factor": (
            "动态码或恢复码不正确，或已经用过。",
            "The code or recovery code is wrong, or was already used.",
        ),
        "title.invalid_challenge": ("请重新登录", "Sign in again"),
        "error.invalid_challenge": (
            "登录步骤已过期或无效，请重新输入用户名和密码。",
            "This sign-in step has expired or is not valid; enter the username and password again.",
        ),
        "title.weak_password": ("密码太弱", "Weak password"),
        "error.weak_password": (
            "新密码不符合要求：{reason}",
            "The new password is not allowed: {reason}",
        ),
        "password.too_short": ("至少需要 10 个字符。", "it needs at least 10 characters."),
        "password.only_digits": ("不能只有数字。", "it cannot be digits only."),
        "password.username": ("不能与用户名相同或相近。", "it cannot be (nearly) the username."),
        "password.common": (
            "这是常见密码，容易被猜中。",
            "it is a common, easily guessed password.",
        ),
        "title.wrong_password": ("当前密码不正确", "Wrong password"),
        "error.wrong_password": (
            "当前密码不正确，未做任何更改。",
            "The current password is wrong; nothing was changed.",
        ),
        "title.password_change_required": ("请先修改密码", "Change the password first"),
        "error.password_change_required": (
            "这是临时密码，请先设置新密码。",
            "This is a temporary password; set a new password first.",
        ),
        "title.second_factor_enrolment_required": ("请先设置动态验证码", "Set up a second factor"),
        "error.second_factor_enrolment_required": (
            "您的角色必须使用动态验证码，请先完成设置。",
            "Your role must use a second factor; set it up first.",
        ),
        "title.second_factor_already_enrolled": ("已设置动态验证码", "Already set up"),
        "error.second_factor_already_enrolled": (
            "动态验证码已经设置；如需更换，请联系管理员重置。",
            "A second factor is already set up; ask an administrator to reset it to change it.",
        ),
        "title.second_factor_not_started": ("尚未开始设置", "Not started"),
        "error.second_factor_not_started": (
            "请先开始设置动态验证码，再输入验证码确认。",
            "Start setting up the second factor first, then confirm it with a code.",
        ),
        "title.own_account": ("不能更改自己的账号", "Not your own account"),
        "error.own_account": (
            "管理员不能停用自己的账号或去掉自己的管理员角色。",
            "Administrators cannot disable their own account or remove their own admin role.",
        ),
        "what.staff_session": ("登录会话", "staff session"),
    }
)


class UnmaskReasonRequired(YuyueError):
    """Showing a full identity or phone number needs a reason (staff.rules.unmask_reason)."""

    code = "unmask_reason_required"
    status = 422


i18n.register(
    {
        "title.unmask_reason_required": ("请填写查看原因", "A reason is needed"),
        "error.unmask_reason_required": (
            "查看完整号码须说明原因（至少 2 个字），例如“核对证件”。",
            "Say why the full number is needed (2 characters at least), for example "
            "“checking the ID card”.",
        ),
    }
)
