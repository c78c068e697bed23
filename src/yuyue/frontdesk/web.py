"""What every hospital-floor page needs: who is at the screen (a signed-in member of staff,
or a kiosk device), their language, rendering, CSRF checks and the cookies that carry them.

Staff sign in with their username and password (and a second factor where the hospital
asks for one); the staff token (the one the API issues, carrying a staff session's id) is
kept in an HttpOnly, SameSite=Lax cookie, and dies with its session: signed out, idle for
`staff.rules.IDLE_TIMEOUT`, or ended by a password change, a reset or disabling.
A kiosk is a device, not a person: staff set it up once by entering a kiosk-channel API
key, which the device keeps in a cookie of its own; the same key lets a
device in the waiting room show a department's screen.

Rendering, the CSRF check, forms and redirects are the shared page layer's
(`yuyue.web.pagekit`); this module says who the floor visitor is and which credential
their CSRF token is derived from.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import ClassVar

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from yuyue.kit import crypto
from yuyue.kit.errors import Forbidden, Unauthorized
from yuyue.scheduling.enums import Channel
from yuyue.staff import access as staff_access
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role
from yuyue.staff.models import StaffUser
from yuyue.staff.rules import Actor
from yuyue.web.context import AppContext
from yuyue.web.pagekit import (
    CsrfFailed,
    NeedsSignIn,
    PageTemplates,
    PageVisitor,
    form_of,
    page_locale,
    portal_hospital,
    redirect,
    redirect_with_next,
)

# Re-exported: the page modules import these from here.
__all__ = [
    "form_of",
    "redirect",
]

STAFF_COOKIE = "yuyue_staff"
# The sign-in form's CSRF token travels in this cookie and in the form; the two must match
# (nobody is signed in yet, so there is no session to derive it from).
SIGN_IN_CSRF_COOKIE = "yuyue_staff_signin"
KIOSK_COOKIE = "yuyue_kiosk"
KIOSK_PATH = "/kiosk"
# A kiosk keeps its key until staff set it up again; a year, renewed at every setup.
KIOSK_COOKIE_SECONDS = 365 * 24 * 3600

# Frontdesk templates first; the patient pages' macros are shared.
templates = PageTemplates("yuyue.frontdesk", "yuyue.portal")
render = templates.render
fragment = templates.fragment


class StaffSignInRequired(NeedsSignIn):
    """A staff page opened without a (valid) staff cookie: answered with the sign-in page."""


class KioskSetupRequired(Exception):
    """A kiosk page on a device that was never set up (or whose key was revoked)."""


@dataclass
class FloorVisitor(PageVisitor):
    """Whoever uses a hospital-floor page: staff (actor + user), a kiosk, or nobody yet."""

    actor: Actor | None = None
    user: StaffUser | None = None
    # The credential the cookie carries; the CSRF token is derived from it.
    credential: str | None = None

    csrf_purpose: ClassVar[str] = "floor-csrf"
    # The floor's htmx posts may carry the token in a header.
    csrf_header: ClassVar[str | None] = "x-csrf-token"

    @property
    def csrf_subject(self) -> str | None:
        return self.credential

    def require(self, request: Request, *roles: Role) -> Actor:
        """The signed-in staff member, who must hold one of `roles` (admin holds all).
        Someone who must first change the password or enrol a second factor is sent to the
        sign-in page, which sends them on to that."""
        if self.actor is None or self.actor.limit is not None:
            raise StaffSignInRequired(request.url.path)
        if not self.actor.has_role(*roles):
            raise Forbidden()
        return self.actor


async def _visitor(request: Request) -> FloorVisitor:
    ctx: AppContext = request.app.state.ctx
    return FloorVisitor(
        ctx=ctx,
        hospital=await portal_hospital(request, ctx),
        locale=page_locale(request),
        now=ctx.clock.now(),
    )


async def staff_visitor(request: Request) -> FloorVisitor:
    who = await _visitor(request)
    token = request.cookies.get(STAFF_COOKIE)
    if not token:
        return who
    try:
        actor = await staff_access.authenticate(
            who.ctx.db, token=token, signer=who.ctx.staff_signer, now=who.now, allow_limited=True
        )
    except Unauthorized:
        return who
    if actor.hospital_id != who.hospital.id:
        return who
    async with who.ctx.db.read() as session:
        who.user = await session.get(StaffUser, uuid.UUID(actor.id))
    who.actor, who.credential = actor, token
    return who


async def kiosk_visitor(request: Request) -> FloorVisitor:
    """The kiosk device, from its key; a device without a valid kiosk key is sent to setup."""
    who = await _visitor(request)
    key = request.cookies.get(KIOSK_COOKIE)
    if not key:
        raise KioskSetupRequired()
    actor = await kiosk_actor(who, key)
    if actor is None:
        raise KioskSetupRequired()
    who.actor, who.credential = actor, key
    return who


async def kiosk_actor(who: FloorVisitor, key: str) -> Actor | None:
    """The kiosk channel's actor for `key`, or None for any other key."""
    key = key.strip()
    if not key.startswith(crypto.API_KEY_PREFIX):
        return None
    digest = crypto.api_key_digest(key)
    cached = who.ctx.actors.get(digest)
    if isinstance(cached, Actor):
        actor = cached
    else:
        async with who.ctx.db.read() as session:
            try:
                actor = await staff_service.channel_actor(session, key=key)
            except Unauthorized:
                return None
        who.ctx.actors.put(digest, actor)
    if actor.channel is not Channel.KIOSK or actor.hospital_id != who.hospital.id:
        return None
    return actor


def staff_sign_in_redirect(next_path: str) -> RedirectResponse:
    return redirect_with_next("/staff/signin", next_path)


def secure_cookies(who: FloorVisitor) -> bool:
    return who.ctx.settings.public_base_url.startswith("https://")


def set_staff_cookie(response: Response, who: FloorVisitor, token: str, max_age: int) -> None:
    response.set_cookie(
        STAFF_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(who),
    )


def set_kiosk_cookie(response: Response, who: FloorVisitor, key: str) -> None:
    response.set_cookie(
        KIOSK_COOKIE,
        key,
        max_age=KIOSK_COOKIE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(who),
    )


def home_of(actor: Actor) -> str:
    """Where a member of staff lands after signing in: the page of their day's work, or the
    console's menu for administrators and for roles whose work has no floor page of its own."""
    if Role.ADMIN in actor.roles:
        return "/staff"
    if actor.has_role(Role.DOCTOR) and not actor.has_role(Role.NURSE, Role.REGISTRAR):
        return "/doctor"
    if Role.FINANCE in actor.roles and not actor.has_role(Role.NURSE, Role.REGISTRAR):
        return "/finance/reconciliation"
    if actor.has_role(Role.NURSE, Role.REGISTRAR):
        return "/desk"
    return "/staff"


def sign_in_csrf(request: Request) -> tuple[str, bool]:
    """The sign-in form's CSRF token: the browser's, or a new one (then True: set it)."""
    current = request.cookies.get(SIGN_IN_CSRF_COOKIE)
    if current and 20 <= len(current) <= 64:
        return current, False
    return secrets.token_urlsafe(24), True


def set_sign_in_csrf(response: Response, who: FloorVisitor, token: str) -> None:
    response.set_cookie(
        SIGN_IN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(who),
        path="/staff",
    )


def check_sign_in_csrf(request: Request, sent: str | None) -> None:
    if not crypto.same_secret(sent or None, request.cookies.get(SIGN_IN_CSRF_COOKIE)):
        raise CsrfFailed()
