"""Domain errors: a stable machine code, an HTTP status and values for the sentence.

Every refusal in yuyue is a subclass of :class:`YuyueError`. The web layer turns it into
``application/problem+json`` with the zh-CN or en sentence registered under
``error.<code>``; pages show the same sentence.
"""

from __future__ import annotations

from typing import Any, ClassVar

from yuyue.kit import i18n


class YuyueError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400

    def __init__(self, **values: Any) -> None:
        self.values = values
        super().__init__(f"{self.code}: {values}" if values else self.code)

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        return i18n.translate(f"error.{self.code}", locale, **self.sentence_values(locale))

    # Set where the times a sentence names can be months away.
    dated: ClassVar[bool] = False

    def sentence_values(self, locale: str) -> dict[str, Any]:
        """The values as a sentence shows them. Values named `*_local` hold the hospital's
        wall-clock time as `YYYY-MM-DD HH:MM` (or a date), one way for logs and tests; a
        sentence writes them the way the pages do, so one sentence never mixes formats."""
        return {
            name: i18n.localise_wall_clock(value, locale, year=self.dated)
            if name.endswith("_local") and isinstance(value, str)
            else value
            for name, value in self.values.items()
        }

    def title(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        return i18n.translate(f"title.{self.code}", locale)

    def extensions(self) -> dict[str, Any]:
        """Machine-readable extras added to the problem document (JSON-safe values)."""
        return {}


class ValidationFailed(YuyueError):
    code = "validation_error"
    status = 422

    def __init__(self, errors: list[dict[str, Any]] | None = None, **values: Any) -> None:
        super().__init__(**values)
        self.errors = errors or []

    def extensions(self) -> dict[str, Any]:
        return {"errors": self.errors} if self.errors else {}


class NotFound(YuyueError):
    code = "not_found"
    status = 404

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        what = str(self.values.get("what", "resource"))
        named = i18n.translate(f"what.{what}", locale)
        return i18n.translate(
            "error.not_found", locale, what=what if named == f"what.{what}" else named
        )


class Unauthorized(YuyueError):
    code = "unauthorized"
    status = 401


class Forbidden(YuyueError):
    code = "forbidden"
    status = 403


class InvalidState(YuyueError):
    code = "invalid_state"
    status = 409


class Conflict(YuyueError):
    code = "conflict"
    status = 409


i18n.register(
    {
        "title.error": ("请求有误", "Bad request"),
        "error.error": ("请求有误。", "The request could not be processed."),
        "title.validation_error": ("输入有误", "Invalid input"),
        "error.validation_error": (
            "提交的内容有误，请检查后重试：{summary}",
            "Some of the input is not valid; please check it and try again: {summary}",
        ),
        "title.not_found": ("未找到", "Not found"),
        "error.not_found": ("未找到{what}。", "No {what} with that id exists."),
        "title.unauthorized": ("需要登录", "Authentication required"),
        "error.unauthorized": (
            "缺少有效的凭据（API 密钥或员工令牌）。",
            "A valid API key or staff token is required.",
        ),
        "title.forbidden": ("无权操作", "Forbidden"),
        "error.forbidden": ("当前身份无权执行此操作。", "You are not allowed to do this."),
        "title.invalid_state": ("状态不允许", "Not allowed in this state"),
        "error.invalid_state": (
            "当前状态为「{state}」，不能执行「{action}」。",
            "This cannot be done ({action}) while the state is '{state}'.",
        ),
        "title.conflict": ("冲突", "Conflict"),
        "error.conflict": (
            "请求与当前数据冲突，请刷新后重试。",
            "The request conflicts with the current data; please retry.",
        ),
        "title.internal_error": ("系统繁忙", "Internal error"),
        "error.internal_error": (
            "系统暂时无法处理，请稍后重试；未做任何更改。",
            "The system could not handle this right now; nothing was changed. Please retry.",
        ),
        "what.department": ("科室", "department"),
        "what.doctor": ("医生", "doctor"),
        "what.session": ("出诊", "clinic session"),
        "what.slot": ("时段", "time slot"),
        "what.patient": ("就诊人", "patient"),
        "what.appointment": ("预约", "appointment"),
        "what.template": ("排班模板", "schedule template"),
        "what.level": ("号别", "registration level"),
        "what.campus": ("院区", "campus"),
        "what.hospital": ("医院", "hospital"),
        "what.api_key": ("API 密钥", "API key"),
        "what.staff": ("员工", "staff user"),
        "what.blacklist": ("黑名单记录", "blacklist entry"),
        "what.resource": ("资源", "resource"),
    }
)
