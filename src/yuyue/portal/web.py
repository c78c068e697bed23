"""What every patient page needs: the visitor (language, text size, signed-in account),
rendering through the one translation layer, the web-channel actor and CSRF checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select

from yuyue.accounts import service as accounts_service
from yuyue.kit import i18n
from yuyue.kit.crypto import InvalidToken, same_secret
from yuyue.kit.errors import NotFound, YuyueError
from yuyue.notifications import service as notifications
from yuyue.operations.announcements import rules as announcement_rules
from yuyue.operations.announcements import service as announcements
from yuyue.patients.models import Account
from yuyue.portal import formatting
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import Hospital
from yuyue.staff.rules import Actor, ActorKind
from yuyue.web.context import AppContext

SESSION_COOKIE = "yuyue_session"
LANG_COOKIE = "yuyue_lang"
SIZE_COOKIE = "yuyue_size"
# The patient pages are the hospital's own website channel: they book from its pools.
PORTAL_CHANNEL = Channel.WEB

templates = Environment(
    loader=PackageLoader("yuyue.portal", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class SignInRequired(Exception):
    """Raised by pages that need an account; answered with a redirect to sign-in."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass
class Visitor:
    ctx: AppContext
    hospital: Hospital
    locale: str
    large_text: bool
    account: Account | None
    web_session_id: uuid.UUID | None
    now: datetime
    unread: int = 0
    # The hospital's notices not over yet; each page shows those that cover it.
    in_force: list[announcement_rules.Posted] = field(default_factory=list)

    def t(self, key: str, /, **values: object) -> str:
        return i18n.translate(key, self.locale, **values)

    @property
    def csrf(self) -> str:
        if self.web_session_id is None:
            return ""
        return self.ctx.cipher.blind_index(str(self.web_session_id), purpose="csrf")[:32]

    @property
    def csrf_accepted(self) -> list[str]:
        """The form token under every configured secret: a page rendered just before the
        master secret changed still submits."""
        if self.web_session_id is None:
            return []
        return [
            index[:32]
            for index in self.ctx.cipher.blind_indexes(str(self.web_session_id), purpose="csrf")
        ]

    @property
    def actor(self) -> Actor:
        if self.account is None:
            raise SignInRequired("/")
        return Actor(
            hospital_id=self.hospital.id,
            kind=ActorKind.CHANNEL,
            id=f"account:{self.account.id}",
            channel=PORTAL_CHANNEL,
            name="portal",
        )

    def require_account(self, request: Request) -> Account:
        if self.account is None:
            raise SignInRequired(request.url.path)
        return self.account

    def pick(self, zh: str, en: str) -> str:
        return en if self.locale == "en" and en else zh


async def portal_hospital(request: Request, ctx: AppContext) -> Hospital:
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


async def visitor(request: Request) -> Visitor:
    ctx: AppContext = request.app.state.ctx
    now = ctx.clock.now()
    hospital = await portal_hospital(request, ctx)
    account: Account | None = None
    web_session_id: uuid.UUID | None = None
    unread = 0
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            payload = ctx.portal_signer.verify(token, now=now)
            candidate = uuid.UUID(str(payload["sid"]))
        except (InvalidToken, KeyError, ValueError):
            candidate = None
        if candidate is not None:
            async with ctx.db.read() as session:
                live = await accounts_service.live_session(session, session_id=candidate, now=now)
                if live is not None and live.hospital_id == hospital.id:
                    account = await session.get(Account, live.account_id)
                    web_session_id = live.id
                    unread = await notifications.unread_count(session, account_id=live.account_id)
    return Visitor(
        ctx=ctx,
        hospital=hospital,
        locale=page_locale(request),
        large_text=request.cookies.get(SIZE_COOKIE) == "large",
        account=account,
        web_session_id=web_session_id,
        now=now,
        unread=unread,
        in_force=await announcements.cached_in_force(ctx.db.read, hospital_id=hospital.id, now=now),
    )


def _page_context(request: Request, who: Visitor, context: dict[str, Any]) -> dict[str, Any]:
    locale, timezone = who.locale, who.hospital.timezone
    # A page names what it is about (`notice_place`); every page shows hospital-wide ones.
    place = context.pop("notice_place", None) or announcement_rules.HOSPITAL_WIDE
    return {
        "notices": announcement_rules.shown_on(who.in_force, place, now=who.now),
        "request": request,
        "v": who,
        "t": who.t,
        "pick": who.pick,
        "demo": who.ctx.settings.demo_mode,
        "unread": who.unread,
        "money": lambda fen: formatting.money(fen, locale),
        "day": lambda value: formatting.day(value, locale),
        "iso_day": lambda text: formatting.day(date.fromisoformat(text), locale),
        "clock": formatting.clock,
        "local": lambda instant: formatting.local(instant, timezone, locale),
        **context,
    }


def render_fragment(request: Request, who: Visitor, template: str, **context: Any) -> str:
    """A piece of a page (for htmx swaps and live updates), in the visitor's language."""
    return templates.get_template(template).render(_page_context(request, who, context))


def render(
    request: Request, who: Visitor, template: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    return HTMLResponse(render_fragment(request, who, template, **context), status_code=status)


def redirect(path: str) -> RedirectResponse:
    # 303: a POST that succeeded is followed by a GET, so reloading never repeats it.
    return RedirectResponse(path, status_code=303)


def sign_in_redirect(next_path: str) -> RedirectResponse:
    return redirect(f"/signin?next={quote(next_path, safe='/')}")


def safe_next(value: str | None) -> str:
    """Only paths on this site: an open redirect would make phishing links look like ours."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


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


async def form_of(request: Request, who: Visitor) -> dict[str, str]:
    """The submitted form, after checking it came from our own page."""
    form = await request.form()
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    sent = values.get("csrf")
    if who.web_session_id is not None and not any(
        same_secret(sent, accepted) for accepted in who.csrf_accepted
    ):
        raise CsrfFailed()
    return values
