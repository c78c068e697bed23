from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking.facts import load_policy
from yuyue.kit.localtime import local_today
from yuyue.patients import service
from yuyue.patients.models import Patient
from yuyue.patients.rules import IdType, Sex
from yuyue.patients.schemas import PatientCreate, PatientRead
from yuyue.scheduling import service as scheduling_service
from yuyue.web.deps import ActorDep, CtxDep
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
        )
        return patient_read(patient)

    return await ctx.db.transact(work)


@router.get("/patients/{patient_id}", response_model=PatientRead)
async def get_patient(patient_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> PatientRead:
    async with ctx.db.read() as session:
        return patient_read(
            await service.get_patient(session, hospital_id=actor.hospital_id, patient_id=patient_id)
        )
