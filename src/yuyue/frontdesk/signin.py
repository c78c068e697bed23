"""Staff sign-in and sign-out for the floor pages, and setting up a kiosk device."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from yuyue.frontdesk import texts as _texts  # noqa: F401  (registers the page sentences)
from yuyue.frontdesk.web import (
    KIOSK_PATH,
    STAFF_COOKIE,
    FloorVisitor,
    form_of,
    home_of,
    kiosk_actor,
    redirect,
    render,
    set_kiosk_cookie,
    set_staff_cookie,
    staff_visitor,
)
from yuyue.portal.web import safe_next
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role
from yuyue.staff.rules import STAFF_CHANNEL, Actor, ActorKind

router = APIRouter(include_in_schema=False)
StaffDep = Annotated[FloorVisitor, Depends(staff_visitor)]


@router.get("/staff/signin", response_class=HTMLResponse)
async def sign_in_page(request: Request, who: StaffDep) -> Response:
    return render(
        request,
        who,
        "staff_signin.html",
        next=safe_next(request.query_params.get("next")),
        username="",
        error=None,
    )


@router.post("/staff/signin", response_class=HTMLResponse)
async def sign_in(request: Request, who: StaffDep) -> Response:
    # No CSRF token yet (nobody is signed in): SameSite=Lax keeps the cookie off
    # cross-site posts, and a forged sign-in would only sign the forger in.
    form = await request.form()
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))[:200]
    next_path = safe_next(str(form.get("next", "")))
    if not username or not password:
        return render(
            request,
            who,
            "staff_signin.html",
            status=422,
            next=next_path,
            username=username,
            error=who.t("floor.sign_in_missing"),
        )
    async with who.ctx.db.read() as session:
        try:
            token, expires_at, user = await staff_service.sign_in(
                session,
                hospital_id=who.hospital.id,
                username=username,
                password=password,
                signer=who.ctx.staff_signer,
                now=who.now,
                hours=who.ctx.settings.staff_token_hours,
            )
        except staff_service.InvalidCredentials as error:
            return render(
                request,
                who,
                "staff_signin.html",
                status=error.status,
                next=next_path,
                username=username,
                error=error.detail(who.locale),
            )
    actor = Actor(
        hospital_id=user.hospital_id,
        kind=ActorKind.STAFF,
        id=str(user.id),
        channel=STAFF_CHANNEL,
        roles=frozenset(Role(r) for r in user.roles),
    )
    response = redirect(next_path if next_path != "/" else home_of(actor))
    set_staff_cookie(response, who, token, int((expires_at - who.now).total_seconds()))
    return response


@router.post("/staff/signout", response_class=HTMLResponse)
async def sign_out(request: Request, who: StaffDep) -> Response:
    await form_of(request, who)
    response = redirect("/staff/signin")
    response.delete_cookie(STAFF_COOKIE)
    return response


# --- kiosk setup ----------------------------------------------------------------------------


@router.get("/kiosk/setup", response_class=HTMLResponse)
async def kiosk_setup_page(request: Request, who: StaffDep) -> Response:
    return render(request, who, "kiosk_setup.html", error=None)


@router.post("/kiosk/setup", response_class=HTMLResponse)
async def kiosk_setup(request: Request, who: StaffDep) -> Response:
    """Staff type (or paste) a kiosk-channel API key once; the device keeps it."""
    form = await request.form()
    key = str(form.get("key", "")).strip()[:200]
    if await kiosk_actor(who, key) is None:
        return render(
            request, who, "kiosk_setup.html", status=422, error=who.t("kiosk.key_invalid")
        )
    response = redirect(KIOSK_PATH)
    set_kiosk_cookie(response, who, key)
    return response
