"""Channel API keys (渠道密钥) from the scheduling pages: an administrator lists the
hospital's keys (the app, mini programs, the phone line, kiosks…), makes a new one — shown
once, only its digest is kept — and revokes one, which stops working at once. Each change is
in the audit trail; a refusal changes nothing. The staff context owns the keys; this page
shows and submits."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.frontdesk.pages import StaffDep
from yuyue.frontdesk.web import FloorVisitor, form_of, redirect, render
from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.scheduling.enums import Channel
from yuyue.staff import service as staff
from yuyue.staff.enums import Role
from yuyue.staff.models import ApiKey
from yuyue.staff.service import record_audit
from yuyue.web.pagekit import done_notice

router = APIRouter(include_in_schema=False)
PATH = "/scheduling/api-keys"
ROLES = (Role.ADMIN,)
NAME_MAX = 100
NO_STORE = {"Cache-Control": "no-store"}
# The window is staff at the counter, signed in; no key is made for it.
KEY_CHANNELS: tuple[Channel, ...] = tuple(c for c in Channel if c is not Channel.WINDOW)

i18n.register(
    {
        "keys.title": ("渠道密钥", "Channel API keys"),
        "keys.hint": (
            "每个接入渠道（App、小程序、电话预约、社区、自助机）用自己的密钥调用接口。新密钥只显示一次，"
            "系统只保存其摘要；停用后立即失效。",
            "Each channel (the app, mini programs, the phone line, community centres, kiosks) "
            "calls the API with its own key. A new key is shown once; only its digest is kept. "
            "A revoked key stops working at once.",
        ),
        "keys.name": ("名称", "Name"),
        "keys.channel": ("渠道", "Channel"),
        "keys.prefix": ("开头", "Starts with"),
        "keys.created": ("创建时间", "Made"),
        "keys.state": ("状态", "State"),
        "keys.active": ("有效", "In force"),
        "keys.revoked": ("已停用（{at}）", "Revoked ({at})"),
        "keys.none": ("还没有渠道密钥。", "No channel key yet."),
        "keys.new": ("新建密钥", "Make a key"),
        "keys.name_hint": (
            "说明用途，如“门诊大厅自助机 3 号”。",
            "Say what it is for, such as “hall kiosk 3”.",
        ),
        "keys.create": ("生成密钥", "Make the key"),
        "keys.revoke": ("停用", "Revoke"),
        "keys.shown_once": (
            "新密钥如下，只显示这一次，请立即复制到该渠道的配置中：",
            "The new key, shown this once: copy it into the channel's configuration now:",
        ),
        "keys.done.revoked": ("密钥已停用。", "The key is revoked."),
        "keys.bad_name": (
            "请填写名称（1–100 个字符）。",
            "Enter a name (1 to 100 characters).",
        ),
        "keys.bad_channel": ("请选择渠道。", "Choose the channel."),
        "keys.channel.app": ("App", "App"),
        "keys.channel.wechat": ("微信小程序", "WeChat mini program"),
        "keys.channel.alipay": ("支付宝小程序", "Alipay mini program"),
        "keys.channel.web": ("网页", "Web"),
        "keys.channel.kiosk": ("自助机", "Kiosk"),
        "keys.channel.phone": ("电话预约", "Phone line"),
        "keys.channel.community": ("社区转诊", "Community centre"),
        "console.entry.api_keys": ("渠道密钥", "Channel API keys"),
        "console.entry.api_keys_hint": (
            "为 App、小程序、电话、自助机生成或停用接口密钥。",
            "Make or revoke the API keys of the app, mini programs, phone line and kiosks.",
        ),
    }
)


async def _page(
    request: Request,
    who: FloorVisitor,
    *,
    error: str | None = None,
    status: int = 200,
    made: tuple[str, ApiKey] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    who.require(request, *ROLES)
    async with who.ctx.db.read() as session:
        keys = await staff.list_api_keys(session, hospital_id=who.hospital.id)
    response = render(
        request,
        who,
        "scheduling_api_keys.html",
        status=status,
        keys=keys,
        channels=KEY_CHANNELS,
        error=error,
        done=done_notice(request, who, "keys.done.{done}", ("revoked",)),
        new_key=made[0] if made else None,
        new_row=made[1] if made else None,
        values=values or {},
        nav="api_keys",
        department=None,
    )
    # A page showing a new key is kept by no cache.
    response.headers.update(NO_STORE)
    return response


@router.get(PATH, response_class=HTMLResponse)
async def api_keys(request: Request, who: StaffDep) -> Response:
    return await _page(request, who)


@router.post(PATH, response_class=HTMLResponse)
async def make_key(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    values = {"name": " ".join(form.get("name", "").split()), "channel": form.get("channel", "")}
    try:
        channel = Channel(values["channel"])
    except ValueError:
        channel = None
    if channel is None or channel not in KEY_CHANNELS:
        return await _page(request, who, error=who.t("keys.bad_channel"), status=422, values=values)
    if not 1 <= len(values["name"]) <= NAME_MAX:
        return await _page(request, who, error=who.t("keys.bad_name"), status=422, values=values)
    now = who.ctx.clock.now()

    async def work(session: AsyncSession) -> tuple[str, ApiKey]:
        key, row = await staff.create_api_key(
            session, hospital_id=actor.hospital_id, channel=channel, name=values["name"], now=now
        )
        record_audit(
            session,
            actor=actor,
            action="api_key.created",
            entity_type="api_key",
            entity_id=row.id,
            before=None,
            after={"channel": row.channel, "name": row.name, "prefix": row.prefix},
            now=now,
        )
        return key, row

    try:
        made = await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _page(
            request, who, error=error.detail(who.locale), status=error.status, values=values
        )
    # Shown here, once, rather than after a redirect: the key must not travel in an address.
    return await _page(request, who, made=made, status=201)


@router.post(PATH + "/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_key(request: Request, who: StaffDep, key_id: uuid.UUID) -> Response:
    actor = who.require(request, *ROLES)
    await form_of(request, who)
    now = who.ctx.clock.now()

    async def work(session: AsyncSession) -> None:
        existing = await session.get(ApiKey, key_id)
        revoked_before = existing.revoked_at if existing is not None else None
        row = await staff.revoke_api_key(
            session, hospital_id=actor.hospital_id, key_id=key_id, now=now
        )
        record_audit(
            session,
            actor=actor,
            action="api_key.revoked",
            entity_type="api_key",
            entity_id=row.id,
            before={"revoked_at": revoked_before.isoformat() if revoked_before else None},
            after={"channel": row.channel, "name": row.name, "revoked_at": now.isoformat()},
            now=now,
        )

    try:
        await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _page(request, who, error=error.detail(who.locale), status=error.status)
    # This process forgets the key at once; others within their cache's lifetime (30 s).
    who.ctx.actors.forget_all()
    return redirect(f"{PATH}?done=revoked")
