"""Staff sign-in and sign-out for the floor pages, the second step for a second factor,
changing a temporary password and enrolling a second factor; and setting up a kiosk device.

The sign-in forms carry a CSRF token that must match the one in a cookie set with the form
(nobody is signed in yet, so there is no session to derive it from); the forms for the
signed-in take the session's token like every floor form (`form_of`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.frontdesk import texts as _texts  # noqa: F401  (registers the page sentences)
from yuyue.frontdesk.web import (
    KIOSK_PATH,
    STAFF_COOKIE,
    FloorVisitor,
    StaffSignInRequired,
    check_sign_in_csrf,
    form_of,
    home_of,
    kiosk_actor,
    redirect,
    render,
    set_kiosk_cookie,
    set_sign_in_csrf,
    set_staff_cookie,
    sign_in_csrf,
    staff_visitor,
)
from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.staff import access
from yuyue.staff.enums import Role
from yuyue.staff.errors import InvalidChallenge, MfaRequired, RetryLater
from yuyue.staff.rules import STAFF_CHANNEL, AccessLimit, Actor, ActorKind
from yuyue.staff.service import Client, Granted
from yuyue.web.pagekit import safe_next

router = APIRouter(include_in_schema=False)
StaffDep = Annotated[FloorVisitor, Depends(staff_visitor)]

PASSWORD_PATH = "/staff/password"
SECOND_FACTOR_PATH = "/staff/second-factor"

i18n.register(
    {
        "floor.code_title": ("动态验证码", "Authenticator code"),
        "floor.code_hint": (
            "请输入验证器应用中显示的 6 位数字；手机不在身边时，可输入一个恢复码。",
            "Enter the 6 digits your authenticator app shows; without your phone, enter one "
            "of your recovery codes.",
        ),
        "floor.code": ("验证码或恢复码", "Code or recovery code"),
        "floor.code_missing": ("请输入验证码。", "Enter the code."),
        "floor.confirm": ("确认", "Confirm"),
        "floor.password_title": ("修改密码", "Change the password"),
        "floor.password_hint": (
            "新密码至少 10 个字符，不能只有数字，不能是用户名或常见密码。修改后请重新登录。",
            "The new password needs at least 10 characters, not only digits, not the username "
            "and not a common password. Sign in again afterwards.",
        ),
        "floor.password_current": ("当前密码", "Current password"),
        "floor.password_new": ("新密码", "New password"),
        "floor.password_changed": (
            "密码已修改，请用新密码登录。",
            "Password changed; sign in with it.",
        ),
        "floor.second_factor_title": ("设置动态验证码", "Set up a second factor"),
        "floor.second_factor_hint": (
            "用验证器应用（如 Google Authenticator、Microsoft Authenticator）扫描二维码，"
            "或手动输入密钥，然后输入应用显示的 6 位数字。",
            "Scan the QR code with an authenticator app (such as Google or Microsoft "
            "Authenticator), or type the key, then enter the 6 digits it shows.",
        ),
        "floor.second_factor_key": ("密钥", "Key"),
        "floor.recovery_title": ("恢复码", "Recovery codes"),
        "floor.recovery_hint": (
            "请妥善保存以下恢复码（仅显示这一次）；手机丢失时，每个恢复码可代替验证码使用一次。",
            "Keep these recovery codes safe (they are shown only now); if you lose your phone, "
            "each one works once in place of a code.",
        ),
        "floor.continue": ("继续", "Continue"),
    }
)


def _client(request: Request) -> Client:
    return Client.of(
        request.client.host if request.client else "", request.headers.get("user-agent")
    )


def _limit_page(limit: AccessLimit | None) -> str | None:
    if limit is AccessLimit.PASSWORD_CHANGE:
        return PASSWORD_PATH
    if limit is AccessLimit.SECOND_FACTOR_ENROLMENT:
        return SECOND_FACTOR_PATH
    return None


def _sign_in_form(
    request: Request,
    who: FloorVisitor,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: object,
) -> Response:
    token, new = sign_in_csrf(request)
    response = render(request, who, template, status=status, sign_in_csrf=token, **context)
    response.headers.update(headers or {})
    if new:
        set_sign_in_csrf(response, who, token)
    return response


def _refused(
    request: Request, who: FloorVisitor, template: str, error: YuyueError, **context: object
) -> Response:
    headers = error.headers() if isinstance(error, RetryLater) else None
    return _sign_in_form(
        request,
        who,
        template,
        status=error.status,
        headers=headers,
        error=error.detail(who.locale),
        **context,
    )


def _signed_in(who: FloorVisitor, granted: Granted, next_path: str) -> Response:
    actor = Actor(
        hospital_id=who.hospital.id,
        kind=ActorKind.STAFF,
        id=str(granted.user_id),
        channel=STAFF_CHANNEL,
        roles=frozenset(Role(r) for r in granted.roles),
    )
    target = _limit_page(granted.limit) or (next_path if next_path != "/" else home_of(actor))
    response = redirect(target)
    set_staff_cookie(
        response, who, granted.token, int((granted.expires_at - who.now).total_seconds())
    )
    return response


@router.get("/staff/signin", response_class=HTMLResponse)
async def sign_in_page(request: Request, who: StaffDep) -> Response:
    limited = _limit_page(who.actor.limit) if who.actor else None
    if limited is not None:
        return redirect(limited)
    return _sign_in_form(
        request,
        who,
        "staff_signin.html",
        next=safe_next(request.query_params.get("next")),
        username="",
        error=None,
    )


@router.post("/staff/signin", response_class=HTMLResponse)
async def sign_in(request: Request, who: StaffDep) -> Response:
    form = await request.form()
    check_sign_in_csrf(request, str(form.get("csrf", "")))
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))[:200]
    next_path = safe_next(str(form.get("next", "")))
    if not username or not password:
        return _sign_in_form(
            request,
            who,
            "staff_signin.html",
            status=422,
            next=next_path,
            username=username,
            error=who.t("floor.sign_in_missing"),
        )
    try:
        granted = await access.sign_in(
            who.ctx.db,
            hospital_id=who.hospital.id,
            username=username,
            password=password,
            second_factor=None,
            client=_client(request),
            signer=who.ctx.staff_signer,
            cipher=who.ctx.cipher,
            now=who.now,
            hours=who.ctx.settings.staff_token_hours,
        )
    except MfaRequired as step:
        return _sign_in_form(
            request,
            who,
            "staff_signin_code.html",
            challenge=step.challenge,
            next=next_path,
            error=None,
        )
    except YuyueError as error:
        return _refused(request, who, "staff_signin.html", error, next=next_path, username=username)
    return _signed_in(who, granted, next_path)


@router.post("/staff/signin/code", response_class=HTMLResponse)
async def sign_in_code(request: Request, who: StaffDep) -> Response:
    form = await request.form()
    check_sign_in_csrf(request, str(form.get("csrf", "")))
    challenge = str(form.get("challenge", ""))[:500]
    code = str(form.get("code", "")).strip()[:32]
    next_path = safe_next(str(form.get("next", "")))
    if not code:
        return _sign_in_form(
            request,
            who,
            "staff_signin_code.html",
            status=422,
            challenge=challenge,
            next=next_path,
            error=who.t("floor.code_missing"),
        )
    try:
        granted = await access.complete_second_factor(
            who.ctx.db,
            challenge=challenge,
            second_factor=code,
            client=_client(request),
            signer=who.ctx.staff_signer,
            cipher=who.ctx.cipher,
            now=who.now,
            hours=who.ctx.settings.staff_token_hours,
            hospital_id=who.hospital.id,
        )
    except InvalidChallenge as error:
        return _refused(request, who, "staff_signin.html", error, next=next_path, username="")
    except YuyueError as error:
        return _refused(
            request, who, "staff_signin_code.html", error, challenge=challenge, next=next_path
        )
    return _signed_in(who, granted, next_path)


@router.post("/staff/signout", response_class=HTMLResponse)
async def sign_out(request: Request, who: StaffDep) -> Response:
    await form_of(request, who)
    if who.actor is not None:
        await access.sign_out(who.ctx.db, actor=who.actor, now=who.now)
    response = redirect("/staff/signin")
    response.delete_cookie(STAFF_COOKIE)
    return response


# --- what a limited sign-in must do first ------------------------------------------------------


def _signed_in_actor(request: Request, who: FloorVisitor) -> Actor:
    if who.actor is None:
        raise StaffSignInRequired(request.url.path)
    return who.actor


@router.get(PASSWORD_PATH, response_class=HTMLResponse)
async def password_page(request: Request, who: StaffDep) -> Response:
    _signed_in_actor(request, who)
    return render(request, who, "staff_password.html", error=None)


@router.post(PASSWORD_PATH, response_class=HTMLResponse)
async def change_password(request: Request, who: StaffDep) -> Response:
    actor = _signed_in_actor(request, who)
    form = await form_of(request, who)
    try:
        await access.change_password(
            who.ctx.db,
            actor=actor,
            current=form.get("current", "")[:200],
            new=form.get("new", "")[:200],
            client=_client(request),
            now=who.now,
        )
    except YuyueError as error:
        refused = render(
            request, who, "staff_password.html", status=error.status, error=error.detail(who.locale)
        )
        if isinstance(error, RetryLater):
            refused.headers.update(error.headers())
        return refused
    # Every session of the user ended with the change: sign in again with the new password.
    response = redirect("/staff/signin")
    response.delete_cookie(STAFF_COOKIE)
    return response


@router.get(SECOND_FACTOR_PATH, response_class=HTMLResponse)
async def second_factor_page(request: Request, who: StaffDep) -> Response:
    actor = _signed_in_actor(request, who)
    if actor.limit is AccessLimit.PASSWORD_CHANGE:
        return redirect(PASSWORD_PATH)
    if who.user is not None and who.user.has_second_factor:
        return redirect(home_of(actor))
    return await _enrolment(request, who, actor, status=200, error=None)


async def _enrolment(
    request: Request, who: FloorVisitor, actor: Actor, *, status: int, error: str | None
) -> Response:
    async def start(session: AsyncSession) -> tuple[str, str, str]:
        user, secret = await access.start_enrolment(
            session, actor=actor, cipher=who.ctx.cipher, keep_pending=True
        )
        uri, qr = access.provisioning(
            secret, username=user.username, issuer=f"yuyue {who.hospital.code}"
        )
        return secret, uri, qr

    secret, uri, qr = await who.ctx.db.transact(start)
    return render(
        request,
        who,
        "staff_second_factor.html",
        status=status,
        secret=secret,
        otpauth_uri=uri,
        qr_code=qr,
        error=error,
    )


@router.post(SECOND_FACTOR_PATH, response_class=HTMLResponse)
async def confirm_second_factor(request: Request, who: StaffDep) -> Response:
    actor = _signed_in_actor(request, who)
    form = await form_of(request, who)
    try:
        codes = await access.confirm_enrolment(
            who.ctx.db,
            actor=actor,
            code=form.get("code", "")[:16],
            client=_client(request),
            cipher=who.ctx.cipher,
            now=who.now,
        )
    except YuyueError as error:
        response = await _enrolment(
            request, who, actor, status=error.status, error=error.detail(who.locale)
        )
        if isinstance(error, RetryLater):
            response.headers.update(error.headers())
        return response
    return render(request, who, "staff_recovery_codes.html", codes=codes, home=home_of(actor))


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
