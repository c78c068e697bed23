"""What every HTML page of the house shares, patient pages and hospital-floor pages alike:
the visitor's language and texts, the CSRF token derived from the visitor's credential and
its check, one way to build a template set and render from it, the 303 redirect after a
POST, htmx detection, reading a form (CSRF checked), reading ids and dates from a form or
a query, and the error page.

`portal/web.py` (patients: the web session) and `frontdesk/web.py` (staff and kiosks: the
staff token or the kiosk key) add who the visitor is; the page modules import from those
or from here, and define none of this again (`tests/web/test_pagekit.py` checks)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import ChoiceLoader, Environment, PackageLoader, Template, select_autoescape
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit import i18n
from yuyue.kit.crypto import same_secret
from yuyue.kit.errors import NotFound, ValidationFailed, YuyueError
from yuyue.kit.localtime import local_today
from yuyue.portal import formatting
from yuyue.scheduling.models import Hospital
from yuyue.web.context import AppContext

# The chosen language and text size: one cookie each for the whole site, patient or staff.
LANG_COOKIE = "yuyue_lang"
SIZE_COOKIE = "yuyue_size"
# The form field that carries the CSRF token on every page.
CSRF_FIELD = "csrf"
# A token is this long: enough against guessing, short enough for a hidden field.
CSRF_LENGTH = 32


class CsrfFailed(YuyueError):
    code = "csrf_failed"
    status = 403


i18n.register(
    {
        "title.csrf_failed": ("页面已过期", "Page expired"),
        "error.csrf_failed": (
            "页面已过期，请返回刷新后重试。",
            "This page has expired; please go back, reload it and try again.",
        ),
    }
)


class NeedsSignIn(Exception):
    """A page that needs someone signed in, opened by nobody: answered with a redirect to
    the sign-in page, which comes back to `next_path` afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


# --- the visitor -----------------------------------------------------------------------------


@dataclass
class PageVisitor:
    """Whoever a page answers: the hospital, their language and the moment. Subclasses say
    which credential the CSRF token is derived from (`csrf_subject`) and under which
    purpose, so a patient's token is never a staff member's."""

    ctx: AppContext
    hospital: Hospital
    locale: str
    now: datetime

    # Keeps tokens of different kinds of visitor apart.
    csrf_purpose: ClassVar[str] = "csrf"
    # A header that may carry the token instead of the form field (htmx posts), or None.
    csrf_header: ClassVar[str | None] = None

    @property
    def csrf_subject(self) -> str | None:
        """What the token is derived from; None when nobody is signed in (no token, no
        check: there is nothing of theirs to act on)."""
        return None

    def t(self, key: str, /, **values: object) -> str:
        return i18n.translate(key, self.locale, **values)

    def pick(self, zh: str, en: str | None) -> str:
        return en if self.locale == "en" and en else zh

    @property
    def today(self) -> date:
        return local_today(self.now, self.hospital.timezone)

    @property
    def csrf(self) -> str:
        """The token the page puts in its forms (under the current secret)."""
        subject = self.csrf_subject
        if subject is None:
            return ""
        return self.ctx.cipher.blind_index(subject, purpose=self.csrf_purpose)[:CSRF_LENGTH]

    @property
    def csrf_accepted(self) -> list[str]:
        """The form token under every configured secret: a page rendered just before the
        master secret changed still submits."""
        subject = self.csrf_subject
        if subject is None:
            return []
        return [
            index[:CSRF_LENGTH]
            for index in self.ctx.cipher.blind_indexes(subject, purpose=self.csrf_purpose)
        ]

    def check_csrf(self, sent: str | None) -> None:
        """Refuses a submission whose token is not this visitor's (compared in constant
        time, under every configured secret); a visitor signed in as nobody has no token."""
        if self.csrf_subject is None:
            return
        if not any(same_secret(sent, accepted) for accepted in self.csrf_accepted):
            raise CsrfFailed()

    def page_context(self, context: dict[str, Any]) -> dict[str, Any]:
        """What this kind of visitor adds to every page it sees (it may take its own keys
        out of `context`)."""
        return {}


async def portal_hospital(request: Request, ctx: AppContext) -> Hospital:
    """The hospital this site serves (read once, then kept on the app)."""
    cached: Hospital | None = getattr(request.app.state, "portal_hospital", None)
    if cached is not None:
        return cached
    async with ctx.db.read() as session:
        hospital = await session.scalar(
            select(Hospital).where(Hospital.code == ctx.settings.hospital_code)
        )
    if hospital is None:
        raise NotFound(what="hospital")
    request.app.state.portal_hospital = hospital
    return hospital


def page_locale(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in i18n.LOCALES:
        return chosen
    return i18n.negotiate(request.headers.get("accept-language"))


# --- rendering -------------------------------------------------------------------------------


class PageTemplates:
    """A set of templates, looked up in the packages' `templates/` folders in order (a
    context's own first, then the ones whose layouts and macros it shares), rendered with
    what every page has: the request, the visitor (`v`), `t`, `pick`, the demo flag and the
    day, clock and local-time formatters in the visitor's language."""

    def __init__(self, *packages: str) -> None:
        self.environment = Environment(
            loader=ChoiceLoader([PackageLoader(package, "templates") for package in packages]),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def get_template(self, name: str) -> Template:
        return self.environment.get_template(name)

    def fragment(self, request: Request, who: PageVisitor, template: str, **context: Any) -> str:
        """A piece of a page (for htmx swaps and live updates), in the visitor's language."""
        return self.get_template(template).render(page_context(request, who, context))

    def render(
        self,
        request: Request,
        who: PageVisitor,
        template: str,
        *,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        return HTMLResponse(self.fragment(request, who, template, **context), status_code=status)

    def error_page(self, request: Request, error: YuyueError) -> Response:
        """An error on a page is a page (`error.html`), in the visitor's language; it needs
        no visitor, so it can answer even when finding one failed."""
        locale = page_locale(request)
        body = self.get_template("error.html").render(
            t=lambda key, **values: i18n.translate(key, locale, **values),
            locale=locale,
            large=request.cookies.get(SIZE_COOKIE) == "large",
            title=error.title(locale),
            message=error.detail(locale),
            status=error.status,
        )
        return HTMLResponse(body, status_code=error.status)


def page_context(request: Request, who: PageVisitor, context: dict[str, Any]) -> dict[str, Any]:
    locale, timezone = who.locale, who.hospital.timezone
    extra = who.page_context(context)
    return {
        "request": request,
        "v": who,
        "t": who.t,
        "pick": who.pick,
        "demo": who.ctx.settings.demo_mode,
        "day": lambda value: formatting.day(value, locale),
        "clock": formatting.clock,
        "local": lambda instant: formatting.local(instant, timezone, locale),
        **extra,
        **context,
    }


def is_page(request: Request) -> bool:
    """Whether an error answers a person in a browser (a page) or a client (problem+json):
    API paths, and any request carrying an API credential, get problem+json."""
    path = request.url.path
    return not (
        path.startswith(("/api/", "/static/", "/openapi", "/docs", "/redoc"))
        or path == "/healthz"
        or "authorization" in request.headers
    )


def is_htmx(request: Request) -> bool:
    """Whether htmx asked (for a piece of the page to swap in, not a whole page). htmx
    sends `HX-Request: true`; any other value but "false" counts too."""
    return request.headers.get("hx-request", "") not in ("", "false")


# --- redirects -------------------------------------------------------------------------------


def redirect(path: str) -> RedirectResponse:
    # 303 See Other: a POST that succeeded is followed by a GET, so reloading never repeats it.
    return RedirectResponse(path, status_code=303)


def redirect_with_next(sign_in_path: str, next_path: str) -> RedirectResponse:
    """To a sign-in page that sends the visitor back to `next_path` afterwards."""
    return redirect(f"{sign_in_path}?next={quote(next_path, safe='/')}")


def safe_next(value: str | None) -> str:
    """Only paths on this site: an open redirect would make phishing links look like ours."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def with_query(path: str, **query: object) -> str:
    """`path` with the given query values, leaving out the empty ones (where a redirect
    after a POST goes, with what the next page says was done)."""
    shown = {key: str(value) for key, value in query.items() if value is not None and value != ""}
    return f"{path}?{urlencode(shown)}" if shown else path


def done_notice(request: Request, who: PageVisitor, key: str, known: Sequence[str]) -> str | None:
    """The sentence for the `?done=` that a redirect after a POST carried, when it is one of
    `known`: `key` names the text, with `{done}` where the value goes; None otherwise."""
    done = request.query_params.get("done")
    if done is None or done not in known:
        return None
    return who.t(key.format(done=done))


# --- forms and query values ------------------------------------------------------------------


async def form_of(request: Request, who: PageVisitor) -> dict[str, str]:
    """The submitted form's text fields, after checking it came from our own page."""
    form = await request.form()
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    sent = values.get(CSRF_FIELD)
    if not sent and who.csrf_header is not None:
        sent = request.headers.get(who.csrf_header)
    who.check_csrf(sent)
    return values


def filled(form: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """The named fields the person filled in, trimmed; an empty one is left out, so the
    schema's default (or the saved value) stands."""
    return {name: form[name].strip() for name in names if form.get(name, "").strip()}


# --- a form that changes something -----------------------------------------------------------

_Model = TypeVar("_Model", bound=BaseModel)
_Result = TypeVar("_Result")


class FormRefused(Exception):
    """A submitted form that was not saved, and nothing changed: the sentence its page shows
    above what the person typed (which the page keeps), and the answer's status."""

    def __init__(self, sentence: str, status: int = 422) -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.status = status


@dataclass(frozen=True, slots=True)
class FormFields:
    """How a group of form pages names its fields when it refuses a submission: the text
    `{prefix}.{field}` for each field at fault, each once, in the order found, inside one
    sentence. Every console form reads its values with `validated`, saves with `saved` and
    answers a `FormRefused` by showing its page again with the sentence and what was typed.

    `whole_form` names a problem of the form as a whole (a model check across fields, such as
    an end before a start); None leaves such problems unnamed."""

    prefix: str
    whole_form: str | None = None

    def named(self, who: PageVisitor, fields: Iterable[str]) -> str:
        separator = ", " if who.locale == "en" else "、"
        return separator.join(dict.fromkeys(who.t(f"{self.prefix}.{name}") for name in fields))

    def sentence(self, who: PageVisitor, fields: Iterable[str]) -> str:
        return who.t("error.validation_error", summary=self.named(who, fields))

    def invalid(self, who: PageVisitor, error: ValidationError) -> FormRefused:
        fields = [
            str(problem["loc"][0]) if problem.get("loc") else self.whole_form
            for problem in error.errors()
        ]
        return FormRefused(self.sentence(who, [f for f in fields if f is not None]))

    def refused(self, who: PageVisitor, error: YuyueError) -> FormRefused:
        """A service's refusal; one that names a field of this form says it by its label."""
        field = error.values.get("summary") if isinstance(error, ValidationFailed) else None
        if field is not None and who.t(f"{self.prefix}.{field}") != f"{self.prefix}.{field}":
            return FormRefused(self.sentence(who, [str(field)]), error.status)
        return FormRefused(error.detail(who.locale), error.status)

    def validated(self, who: PageVisitor, model: type[_Model], values: Mapping[str, Any]) -> _Model:
        """The form's values in the API's shape, or `FormRefused` naming the fields at fault."""
        try:
            return model.model_validate(values)
        except ValidationError as invalid:
            raise self.invalid(who, invalid) from invalid

    async def saved(
        self, who: PageVisitor, work: Callable[[AsyncSession], Awaitable[_Result]]
    ) -> _Result:
        """`work` done in one transaction, or `FormRefused` with the service's reason (the
        transaction rolled back, nothing changed)."""
        try:
            return await who.ctx.db.transact(work)
        except YuyueError as error:
            raise self.refused(who, error) from error


def uuid_or_none(text: str | None) -> uuid.UUID | None:
    """An id from a form or query; None when blank or not an id (a link picked nothing)."""
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def date_or_none(text: str | None) -> date | None:
    """An ISO date from a form or query; None when blank or not a date."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_uuid(text: str | None, *, field: str = "id") -> uuid.UUID | None:
    """An id from a form or query; None when blank; `ValidationFailed(summary=field)` (422,
    said on the page) when it is not an id."""
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValidationFailed(summary=field) from None


def parse_date(text: str | None, *, field: str = "date") -> date | None:
    """An ISO date from a form or query; None when blank; `ValidationFailed(summary=field)`
    (422, said on the page) when it is not a date."""
    if not text or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(summary=field) from None
