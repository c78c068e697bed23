from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from yuyue.kit.schemas import Input
from yuyue.patients.rules import IdType, Sex, UnmaskField


class PatientCreate(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "张晓燕",
                    "id_type": "resident_id",
                    "id_number": "11010519491231002X",
                    "phone": "13800138000",
                }
            ]
        },
    )

    name: Annotated[str, Field(min_length=1, max_length=60)]
    id_type: IdType = IdType.RESIDENT_ID
    id_number: Annotated[str, Field(min_length=1, max_length=40)]
    phone: Annotated[
        str, Field(min_length=1, max_length=30, description="the patient's mobile number")
    ]
    account_phone: Annotated[
        str | None,
        Field(max_length=30, description="the account holder's mobile (defaults to `phone`)"),
    ] = None
    birth_date: date | None = Field(
        None, description="required unless the document is a resident ID"
    )
    sex: Sex | None = Field(None, description="required unless the document is a resident ID")


class PatientRead(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    name: str
    id_type: IdType
    id_number: Annotated[str, Field(description="masked, e.g. 1101**********002X")]
    birth_date: date
    sex: Sex
    phone: Annotated[str, Field(description="masked, e.g. 138****8000")]
    record_number: Annotated[
        str,
        Field(
            description="the medical record number (病历号) the hospital gave the patient at "
            "registration, e.g. MR00000042"
        ),
    ]


class UnmaskRequest(Input):
    field: UnmaskField = Field(description="`id_number` or `phone`")
    reason: Annotated[
        str,
        Field(
            max_length=200,
            description="why the full number is needed (2 characters at least), recorded "
            "in the audit trail",
        ),
    ]


class UnmaskRead(BaseModel):
    patient_id: uuid.UUID
    field: UnmaskField
    value: Annotated[str, Field(description="the full number, shown once; never cached")]
