"""What every patient page needs beyond the shared page layer (`yuyue.web.pagekit`): the
visitor (text size, signed-in account, unread messages, notices in force), the web-channel
actor, and the patient's sign-in redirect. The CSRF token is derived from the web session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from fastapi import Request
from fastapi.responses import RedirectResponse

from yuyue.accounts import service as accounts_service
from yuyue.kit.crypto import InvalidToken
from yuyue.notifications import service as notifications
from yuyue.operations.announcements import rules as announcement_rules
from yuyue.operations.announcements import service as announcements
from yuyue.patients.models import Account
from yuyue.portal import formatting
from yuyue.scheduling.enums import Channel
from yuyue.staff.rules import Actor, ActorKind
from yuyue.web.context import AppContext
from yuyue.web.pagekit import (
    LANG_COOKIE,
    SIZE_COOKIE,
    CsrfFailed,
    NeedsSignIn,
    PageTemplates,
    PageVisitor,
    form_of,
    page_locale,
    portal_hospital,
    redirect,
    redirect_with_next,
    safe_next,
)

# Re-exported: the page modules import these from here.
__all__ = [
    "LANG_COOKIE",
    "SIZE_COOKIE",
    "CsrfFailed",
    "form_of",
    "page_locale",
    "portal_hospital",
    "redirect",
    "safe_next",
]

SESSION_COOKIE = "yuyue_session"
# The patient pages are the hospital's own website channel: they book from its pools.
PORTAL_CHANNEL = Channel.WEB

templates = PageTemplates("yuyue.portal")
render = templates.render
render_fragment = templates.fragment
page_error = templates.error_page


class SignInRequired(NeedsSignIn):
    """Raised by pages that need an account; answered with a redirect to sign-in."""


@dataclass
class Visitor(PageVisitor):
    large_text: bool
    account: Account | None
    web_session_id: uuid.UUID | None
    unread: int = 0
    # The hospital's notices not over yet; each page shows those that cover it.
    in_force: list[announcement_rules.Posted] = field(default_factory=list)

    csrf_purpose: ClassVar[str] = "csrf"

    @property
    def csrf_subject(self) -> str | None:
        return None if self.web_session_id is None else str(self.web_session_id)

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

    def page_context(self, context: dict[str, Any]) -> dict[str, Any]:
        locale = self.locale
        # A page names what it is about (`notice_place`); every page shows hospital-wide ones.
        place = context.pop("notice_place", None) or announcement_rules.HOSPITAL_WIDE
        return {
            "notices": announcement_rules.shown_on(self.in_force, place, now=self.now),
            "unread": self.unread,
            "money": lambda fen: formatting.money(fen, locale),
            "iso_day": lambda text: formatting.day(date.fromisoformat(text), locale),
        }


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


def sign_in_redirect(next_path: str) -> RedirectResponse:
    return redirect_with_next("/signin", next_path)
