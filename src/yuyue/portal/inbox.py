"""The in-app inbox, where else messages go (email, language), and, in the demo, the
phone that shows the text messages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.errors import NotFound, YuyueError
from yuyue.notifications import service as notifications
from yuyue.portal.pages import VisitorDep
from yuyue.portal.web import form_of, redirect, render

router = APIRouter(include_in_schema=False)


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(request: Request, who: VisitorDep) -> Response:
    account = who.require_account(request)
    async with who.ctx.db.read() as session:
        items = await notifications.inbox_for_account(session, account_id=account.id, limit=100)
    unread = {item.id for item in items if item.read_at is None}
    if unread:
        # Opening the inbox reads what it shows; the badge counts only what came after.
        async def work(session: AsyncSession) -> None:
            await notifications.mark_inbox_read(
                session, account_id=account.id, item_ids=list(unread), now=who.ctx.clock.now()
            )

        await who.ctx.db.transact(work)
    who.unread = 0
    return render(request, who, "inbox.html", items=items, unread_ids=unread)


@router.get("/demo/phone", response_class=HTMLResponse)
async def demo_phone(request: Request, who: VisitorDep) -> Response:
    if not who.ctx.settings.demo_mode:
        raise NotFound(what="resource")
    async with who.ctx.db.read() as session:
        messages = await notifications.demo_phone_messages(
            session, hospital_id=who.hospital.id, limit=30
        )
    return render(request, who, "demo_phone.html", messages=messages)


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, who: VisitorDep) -> Response:
    account = who.require_account(request)
    values = {"email": account.email or "", "locale": account.locale}
    return render(
        request,
        who,
        "settings.html",
        values=values,
        saved=request.query_params.get("saved") == "1",
    )


@router.post("/settings", response_class=HTMLResponse)
async def save_settings(request: Request, who: VisitorDep) -> Response:
    account = who.require_account(request)
    form = await form_of(request, who)
    values = {"email": form.get("email", "").strip(), "locale": form.get("locale", "")}

    async def work(session: AsyncSession) -> None:
        await notifications.set_account_preferences(
            session,
            account_id=account.id,
            email=values["email"] or None,
            locale=values["locale"],
        )

    try:
        await who.ctx.db.transact(work)
    except YuyueError as error:
        return render(
            request,
            who,
            "settings.html",
            status=error.status,
            values=values,
            error=error.detail(who.locale),
            saved=False,
        )
    return redirect("/settings?saved=1")
