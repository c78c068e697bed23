"""Patients written as an older revision's schema holds them (no medical record number), for
tests that migrate a database from before a revision: the ORM maps today's columns."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories as f
from yuyue.kit.crypto import FieldCipher
from yuyue.patients import rules
from yuyue.patients import service as patient_service
from yuyue.patients.models import Account, Patient
from yuyue.scheduling.models import Hospital


async def insert_patient(
    session: AsyncSession,
    *,
    hospital: Hospital,
    cipher: FieldCipher,
    created_at: datetime,
    name: str = "张三",
    patient_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A patient with an account of their own, as `register_patient` stored them before
    medical record numbers."""
    number = f.resident_id(birth=date(1990, 1, 1))
    mobile = f.phone()
    account_id, patient_id = uuid.uuid4(), patient_id or uuid.uuid4()
    phone = {
        "phone_cipher": cipher.encrypt(mobile),
        "phone_index": patient_service.phone_index(cipher, mobile),
        "phone_masked": rules.mask_phone(mobile),
    }
    session.add(Account(id=account_id, hospital_id=hospital.id, created_at=created_at, **phone))
    await session.flush()
    # Core, naming the columns the old revision has: the ORM would write them all.
    await session.execute(
        insert(Patient.__table__).values(
            id=patient_id,
            hospital_id=hospital.id,
            account_id=account_id,
            name=name,
            id_type=rules.IdType.RESIDENT_ID.value,
            id_cipher=cipher.encrypt(number),
            id_index=patient_service.identity_index(cipher, rules.IdType.RESIDENT_ID, number),
            id_masked=rules.mask_id_number(number),
            birth_date=date(1990, 1, 1),
            sex="M",
            created_at=created_at,
            **phone,
        )
    )
    return patient_id
