"""The patient's guidance page (/guidance): a text box, the signed-in account's family
patients (their age and sex guide the answer) or an optional age and sex, and the answer:
departments with reasons and links to book, or an emergency notice with 120 to call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from yuyue.guidance import service
from yuyue.guidance.api import client_address, throttle_of
from yuyue.guidance.throttle import TooManyRequests
from yuyue.kit.localtime import local_today
from yuyue.patients import service as patient_service
from yuyue.patients.models import Patient
from yuyue.portal.web import Visitor, form_of, render, visitor

router = APIRouter(include_in_schema=False)
VisitorDep = Annotated[Visitor, Depends(visitor)]
TEMPLATE = "guidance/ask.html"
MAX_TEXT = 500


async def _patients(who: Visitor) -> list[Patient]:
    if who.account is None:
        return []
    async with who.ctx.db.read() as session:
        return await patient_service.account_patients(
            session, hospital_id=who.hospital.id, account_id=who.account.id
        )


@router.get("/guidance", response_class=HTMLResponse)
async def guidance_page(request: Request, who: VisitorDep) -> Response:
    return render(request, who, TEMPLATE, patients=await _patients(who), form={}, answer=None)


def _age(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    years = int(value.strip())
    return years if years <= 130 else None


@router.post("/guidance", response_class=HTMLResponse)
async def guidance_answer(request: Request, who: VisitorDep) -> Response:
    form = await form_of(request, who)
    patients = await _patients(who)
    text = form.get("text", "").strip()[:MAX_TEXT]
    if not text:
        return render(request, who, TEMPLATE, patients=patients, form=form, answer=None)
    try:
        throttle_of(request).check(client_address(request))
    except TooManyRequests as refused:
        page = render(
            request,
            who,
            TEMPLATE,
            status=429,
            patients=patients,
            form=form,
            answer=None,
            refusal=refused.detail(who.locale),
        )
        page.headers["Retry-After"] = str(refused.values["seconds"])
        return page
    age, sex = _age(form.get("age")), form.get("sex") if form.get("sex") in ("F", "M") else None
    chosen = next((p for p in patients if str(p.id) == form.get("patient")), None)
    if chosen is not None:
        today = local_today(who.now, who.hospital.timezone)
        age, sex = service.patient_age(chosen.birth_date, today), chosen.sex
    async with who.ctx.db.read() as session:
        answer = await service.suggest(
            session, hospital_id=who.hospital.id, text=text, age=age, sex=sex, locale=who.locale
        )
    return render(
        request, who, TEMPLATE, patients=patients, form=form, answer=answer, chosen=chosen
    )
