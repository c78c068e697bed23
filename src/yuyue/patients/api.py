from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking.facts import load_policy
from yuyue.kit.localtime import local_today
from yuyue.patients import service
from yuyue.patients.models import Patient
from yuyue.patients.rules import IdType, Sex
from yuyue.patients.schemas import PatientCreate, PatientRead, UnmaskRead, UnmaskRequest
from yuyue.scheduling import service as scheduling_service
from yuyue.staff.rules import ActorKind, reads_logged
from yuyue.web.deps import ActorDep, CtxDep, ReadSourceDep
from yuyue.web.problems import register_constraint

router = APIRouter(prefix="/api/v1", tags=["patients"])
register_constraint("uq_patient_identity", service.PatientAlreadyRegistered)


def patient_read(patient: Patient) -> PatientRead:
    return PatientRead(
        id=patient.id,
        account_id=patient.account_id,
        name=patient.name,
        id_type=IdType(patient.id_type),
        id_number=patient.id_masked,
        birth_date=patient.birth_date,
        sex=Sex(patient.sex),
        phone=patient.phone_masked,
        record_number=patient.record_number,
    )


@router.post(
    "/patients",
    status_code=201,
    response_model=PatientRead,
    responses={
        409: {"description": "`patient_already_registered` or `account_patient_limit`"},
        422: {
            "description": "`invalid_id_number`, `invalid_phone`, `invalid_name` "
            "or `validation_error`"
        },
    },
    summary="Register a real-name patient (identity number and phone are encrypted at rest)",
)
async def create_patient(body: PatientCreate, ctx: CtxDep, actor: ActorDep) -> PatientRead:
    # A channel's key registers through its channel, which may then read the patient.
    through = actor.channel if actor.kind is ActorKind.CHANNEL else None

    async def work(session: AsyncSession) -> PatientRead:
        now = ctx.clock.now()
        timezone = await scheduling_service.hospital_timezone(session, actor.hospital_id)
        policy = await load_policy(session, hospital_id=actor.hospital_id, department_id=None)
        patient = await service.register_patient(
            session,
            hospital_id=actor.hospital_id,
            cipher=ctx.cipher,
            name=body.name,
            id_type=body.id_type,
            id_number=body.id_number,
            phone=body.phone,
            account_phone=body.account_phone,
            birth_date=body.birth_date,
            sex=body.sex,
            account_patients_max=policy.account_patients_max,
            today=local_today(now, timezone),
            now=now,
            through=through,
        )
        return patient_read(patient)

    try:
        return await ctx.db.transact(work)
    except service.PatientAlreadyRegistered as refused:
        # The same person (name and document number) registered again through a channel:
        # the channel has shown it knows them, so it may read them from now on.
        existing = refused.values.get("patient_id")
        if through is not None and existing:
            known = uuid.UUID(str(existing))

            async def remember(session: AsyncSession) -> None:
                await service.remember_channel(
                    session,
                    hospital_id=actor.hospital_id,
                    patient_id=known,
                    channel=through,
                    now=ctx.clock.now(),
                )

            await ctx.db.transact(remember)
        raise


@router.get(
    "/patients/{patient_id}",
    response_model=PatientRead,
    responses={404: {"description": "`not_found`: no such patient, or not the caller's to read"}},
    summary="A patient, masked: staff (each read logged) or the channel that knows them",
)
async def get_patient(
    patient_id: uuid.UUID, ctx: CtxDep, actor: ActorDep, source: ReadSourceDep
) -> PatientRead:
    """Staff read any patient of the hospital (the read is written to the audit trail); a
    channel key reads the patients its channel registered (or registered again with the
    same name and document number); a kiosk key reads none."""
    if not reads_logged(actor):
        async with ctx.db.read() as session:
            return patient_read(
                await service.readable_patient(session, actor=actor, patient_id=patient_id)
            )

    async def work(session: AsyncSession) -> PatientRead:
        patient = await service.read_patient(
            session,
            actor=actor,
            patient_id=patient_id,
            read="profile",
            source=source,
            now=ctx.clock.now(),
        )
        return patient_read(patient)

    return await ctx.db.transact(work)


@router.post(
    "/patients/{patient_id}/unmask",
    response_model=UnmaskRead,
    responses={
        403: {"description": "`forbidden`: the role may not see full numbers"},
        404: {"description": "`not_found`"},
        422: {"description": "`unmask_reason_required` or `validation_error`"},
    },
    summary="Show a patient's identity number or phone in full, once, with a reason (logged)",
)
async def unmask_patient(
    patient_id: uuid.UUID,
    body: UnmaskRequest,
    ctx: CtxDep,
    actor: ActorDep,
    source: ReadSourceDep,
    response: Response,
) -> UnmaskRead:
    async def work(session: AsyncSession) -> str:
        return await service.unmask(
            session,
            actor=actor,
            cipher=ctx.cipher,
            patient_id=patient_id,
            field=body.field,
            reason=body.reason,
            source=source,
            now=ctx.clock.now(),
        )

    value = await ctx.db.transact(work)
    response.headers["Cache-Control"] = "no-store"
    return UnmaskRead(patient_id=patient_id, field=body.field, value=value)
