"""Appeals against no-show bans, for registrars: read the patient's text, accept (the ban
is lifted at once) or reject with a note. The decision is audited and messaged by the
attendance service; this page only shows and submits."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.attendance import service as attendance
from yuyue.attendance.models import AppealStatus
from yuyue.frontdesk.pages import StaffDep
from yuyue.frontdesk.web import FloorVisitor, form_of, redirect, render
from yuyue.kit import i18n
from yuyue.kit.errors import ValidationFailed, YuyueError
from yuyue.staff.enums import Role
from yuyue.web.pagekit import done_notice

router = APIRouter(include_in_schema=False)
APPEAL_ROLES = (Role.REGISTRAR,)

i18n.register(
    {
        "appeals.title": ("爽约申诉", "No-show appeals"),
        "appeals.area": ("申诉处理", "Appeals"),
        "appeals.open": ("待处理", "Waiting for a decision"),
        "appeals.decided": ("最近处理", "Recently decided"),
        "appeals.none": ("没有待处理的申诉。", "No appeals are waiting."),
        "appeals.ban": ("限制", "Ban"),
        "appeals.until": ("至 {at}", "until {at}"),
        "appeals.text": ("申诉内容", "The patient's appeal"),
        "appeals.note": ("处理说明（驳回时必填）", "Note to the patient (required to reject)"),
        "appeals.accept": ("通过并解除限制", "Accept and lift the ban"),
        "appeals.reject": ("驳回", "Reject"),
        "appeals.accepted_ok": (
            "已通过，限制已解除，并已通知患者。",
            "Accepted: the ban is lifted and the patient told.",
        ),
        "appeals.rejected_ok": ("已驳回，并已通知患者。", "Rejected; the patient has been told."),
        "appeals.status.submitted": ("待处理", "Waiting"),
        "appeals.status.accepted": ("已通过", "Accepted"),
        "appeals.status.rejected": ("已驳回", "Rejected"),
    }
)


async def _page(
    request: Request, who: FloorVisitor, *, status: int = 200, error: str | None = None
) -> Response:
    actor = who.require(request, *APPEAL_ROLES)
    async with who.ctx.db.read() as session:
        waiting = await attendance.list_appeals(session, actor=actor, status=AppealStatus.SUBMITTED)
        decided = [
            a
            for a in await attendance.list_appeals(session, actor=actor, status=None, limit=200)
            if a.status is not AppealStatus.SUBMITTED
        ][-10:]
    return render(
        request,
        who,
        "appeals.html",
        status=status,
        waiting=waiting,
        decided=list(reversed(decided)),
        error=error,
        done_text=done_notice(request, who, "appeals.{done}_ok", ("accepted", "rejected")),
    )


@router.get("/desk/appeals", response_class=HTMLResponse)
async def appeals(request: Request, who: StaffDep) -> Response:
    return await _page(request, who)


@router.post("/desk/appeals/{appeal_id}/decide", response_class=HTMLResponse)
async def decide(request: Request, who: StaffDep, appeal_id: uuid.UUID) -> Response:
    actor = who.require(request, *APPEAL_ROLES)
    form = await form_of(request, who)
    decision = form.get("decision")
    accept = decision == "accept"

    async def work(session: AsyncSession) -> None:
        await attendance.decide_appeal(
            session,
            actor=actor,
            appeal_id=appeal_id,
            accept=accept,
            note=form.get("note", "").strip() or None,
            now=who.ctx.clock.now(),
        )

    try:
        if decision not in ("accept", "reject"):
            raise ValidationFailed(summary="decision")
        await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _page(request, who, status=error.status, error=error.detail(who.locale))
    from yuyue.jobs import request_delivery

    request_delivery(who.ctx)
    return redirect(f"/desk/appeals?done={'accepted' if accept else 'rejected'}")
