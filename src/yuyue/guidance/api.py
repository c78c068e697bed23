"""POST /api/v1/guidance: open to any caller (no key needed), lightly limited per client
address. A `patient_id` takes age and sex from that patient, which needs the caller's API
key or staff token (a patient's age and sex are not for strangers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials

from yuyue.guidance import knowledge, service
from yuyue.guidance.schemas import GuidanceRead, GuidanceRequest, SuggestedDepartment
from yuyue.guidance.throttle import ClientThrottle, TooManyRequests
from yuyue.kit.errors import NotFound, Unauthorized
from yuyue.kit.localtime import local_today
from yuyue.patients import service as patient_service
from yuyue.scheduling import service as scheduling
from yuyue.web.deps import CtxDep, LocaleDep, bearer, current_actor
from yuyue.web.problems import problem_response

router = APIRouter(prefix="/api/v1", tags=["guidance"])

# Read and checked when the app is built: a broken knowledge file stops the start with a
# sentence naming the entry, instead of failing a patient later.
knowledge.default()


def throttle_of(request: Request) -> ClientThrottle:
    """One throttle per app, shared by the API and the guidance page."""
    state = request.app.state
    found: ClientThrottle | None = getattr(state, "guidance_throttle", None)
    if found is None:
        found = state.guidance_throttle = ClientThrottle()
    return found


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/guidance",
    response_model=GuidanceRead,
    summary="Suggest departments for symptoms (智能导诊), or send red flags to 120",
    responses={
        401: {"description": "`unauthorized`: `patient_id` without an API key or token"},
        404: {"description": "`not_found`: no such patient in this hospital"},
        429: {"description": "`too_many_requests` (with `retry_after` seconds)"},
    },
)
async def guidance(
    request: Request,
    body: GuidanceRequest,
    ctx: CtxDep,
    locale: LocaleDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Response | GuidanceRead:
    try:
        throttle_of(request).check(client_address(request))
    except TooManyRequests as refused:
        return problem_response(refused, request, {"Retry-After": str(refused.values["seconds"])})
    actor = await current_actor(request, ctx, credentials) if credentials is not None else None
    if body.patient_id is not None and actor is None:
        raise Unauthorized()
    age: int | None = body.age
    sex: str | None = body.sex
    async with ctx.db.read() as session:
        if actor is not None:
            hospital_id = actor.hospital_id
        else:
            found = await scheduling.hospital_id_by_code(session, ctx.settings.hospital_code)
            if found is None:
                raise NotFound(what="hospital")
            hospital_id = found
        if body.patient_id is not None and actor is not None:
            # Only a patient the caller may read (patients.rules.may_read) lends their age
            # and sex; others are not found.
            patient = await patient_service.readable_patient(
                session, actor=actor, patient_id=body.patient_id
            )
            timezone = await scheduling.hospital_timezone(session, hospital_id)
            age = service.patient_age(patient.birth_date, local_today(ctx.clock.now(), timezone))
            sex = patient.sex
        answer = await service.suggest(
            session, hospital_id=hospital_id, text=body.text, age=age, sex=sex, locale=locale
        )
    return GuidanceRead(
        emergency=answer.emergency,
        advice=answer.advice,
        action=answer.action.value if answer.action is not None else None,
        departments=[
            SuggestedDepartment(
                department_id=s.department_id, name=s.name, reason=s.reason, kind=s.kind
            )
            for s in answer.departments
        ],
    )
