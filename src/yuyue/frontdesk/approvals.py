"""The approvals page (审批): supervisors see the staff changes to confirmed bookings waiting
for them and approve or reject each with a note; the staff who ask see their requests and
can withdraw them. Deciding is booking's `approvals.decide`; this page shows and submits."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import approvals
from yuyue.booking.models import ChangeRequest
from yuyue.frontdesk.pages import StaffDep
from yuyue.frontdesk.rules import audit_actor_name
from yuyue.frontdesk.web import FloorVisitor, form_of, redirect, render
from yuyue.jobs import request_delivery, request_refunds
from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.web.pagekit import done_notice

router = APIRouter(include_in_schema=False)
PATH = "/desk/approvals"

i18n.register(
    {
        "approvals.title": ("更改审批", "Change approvals"),
        "approvals.pending": ("待审批（{n}）", "Waiting for a decision ({n})"),
        "approvals.decided": ("已处理", "Decided"),
        "approvals.none": ("没有待审批的申请。", "Nothing is waiting for a decision."),
        "approvals.kind.cancel_late": ("逾期退号", "Cancel after the deadline"),
        "approvals.kind.move": ("改约", "Move"),
        "approvals.kind.change_patient": ("更换就诊人", "Change the patient"),
        "approvals.state.pending": ("待审批", "Pending"),
        "approvals.state.approved": ("已批准", "Approved"),
        "approvals.state.rejected": ("已驳回", "Rejected"),
        "approvals.state.withdrawn": ("已撤回", "Withdrawn"),
        "approvals.booking": (
            "{patient} · {date} {time} {department} {doctor} · {number} 号",
            "{patient} · {date} {time} {department} {doctor} · no. {number}",
        ),
        "approvals.target": ("改为：{target}", "To: {target}"),
        "approvals.reason": ("原因：{reason}", "Reason: {reason}"),
        "approvals.asked": ("{who} 于 {when} 提交", "Asked by {who} at {when}"),
        "approvals.decision": ("{who} 于 {when} {state}", "{state} by {who} at {when}"),
        "approvals.note": ("审批意见（驳回时必填）", "Note (required to reject)"),
        "approvals.approve": ("批准并执行", "Approve and carry out"),
        "approvals.reject": ("驳回", "Reject"),
        "approvals.withdraw": ("撤回", "Withdraw"),
        "approvals.done.approve": (
            "已批准，更改已生效，患者已通知。",
            "Approved: the change is made and the patient told.",
        ),
        "approvals.done.reject": ("已驳回，预约未作更改。", "Rejected: the booking is unchanged."),
        "approvals.done.withdraw": ("申请已撤回。", "The request is withdrawn."),
    }
)


async def _page(
    request: Request, who: FloorVisitor, *, error: str | None = None, status: int = 200
) -> Response:
    actor = who.require(request, *approvals.REQUESTERS, *approvals.DECIDERS)
    async with who.ctx.db.read() as session:
        found = await approvals.requests(session, actor=actor)
    return render(
        request,
        who,
        "desk_approvals.html",
        status=status,
        error=error,
        done_text=done_notice(
            request, who, "approvals.done.{done}", ("approve", "reject", "withdraw")
        ),
        pending=[v for v in found if v.state == "pending"],
        decided=[v for v in found if v.state != "pending"],
        decides=actor.has_role(*approvals.DECIDERS),
        # The audit name (`staff:<name>:<id>`) as a person reads it: the name.
        person=lambda audit_name: audit_actor_name(audit_name or "")[1],
        me=actor.id,
    )


@router.get(PATH, response_class=HTMLResponse)
async def approvals_page(request: Request, who: StaffDep) -> Response:
    return await _page(request, who)


async def _act(request: Request, who: FloorVisitor, request_id: uuid.UUID, action: str) -> Response:
    actor = who.require(request, *approvals.REQUESTERS, *approvals.DECIDERS)
    form = await form_of(request, who)
    note = form.get("note", "")
    now = who.ctx.clock.now()

    async def work(session: AsyncSession) -> list[uuid.UUID]:
        decided: ChangeRequest
        if action == "withdraw":
            decided = await approvals.withdraw(session, actor=actor, request_id=request_id, now=now)
        else:
            decided = await approvals.decide(
                session,
                actor=actor,
                request_id=request_id,
                approve=action == "approve",
                note=note,
                now=now,
            )
        return await approvals.sessions_touched(session, decided)

    try:
        touched = await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _page(request, who, error=error.detail(who.locale), status=error.status)
    if action == "approve":
        await who.ctx.places_returned(who.hospital.id, *touched)
        request_refunds(who.ctx)
        request_delivery(who.ctx)
    return redirect(f"{PATH}?done={action}")


@router.post(PATH + "/{request_id}/approve", response_class=HTMLResponse)
async def approve(request: Request, who: StaffDep, request_id: uuid.UUID) -> Response:
    return await _act(request, who, request_id, "approve")


@router.post(PATH + "/{request_id}/reject", response_class=HTMLResponse)
async def reject(request: Request, who: StaffDep, request_id: uuid.UUID) -> Response:
    return await _act(request, who, request_id, "reject")


@router.post(PATH + "/{request_id}/withdraw", response_class=HTMLResponse)
async def withdraw(request: Request, who: StaffDep, request_id: uuid.UUID) -> Response:
    return await _act(request, who, request_id, "withdraw")
