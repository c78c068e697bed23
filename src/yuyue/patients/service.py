"""Registering real-name patients under an account (a mobile number), and reading them:
who may read a patient named by id (`rules.may_read`), the staff reads that are logged, and
showing a full identity number or phone (unmasking) with a reason."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit import i18n
from yuyue.kit.crypto import FieldCipher
from yuyue.kit.errors import NotFound, ValidationFailed, YuyueError
from yuyue.kit.rekey import SealedColumn
from yuyue.patients import rules
from yuyue.patients.models import Account, Patient, PatientChannel, RecordNumberSequence
from yuyue.scheduling.enums import Channel
from yuyue.staff import rules as staff_rules
from yuyue.staff.errors import UnmaskReasonRequired
from yuyue.staff.rules import Actor, ActorKind, ReadKind, require_staff
from yuyue.staff.service import ReadSource, record_read

ID_PURPOSE = "id_number"
PHONE_PURPOSE = "phone"


class PatientAlreadyRegistered(YuyueError):
    code = "patient_already_registered"
    status = 409

    def extensions(self) -> dict[str, Any]:
        patient_id = self.values.get("patient_id")
        return {"patient_id": patient_id} if patient_id else {}


class AccountFull(YuyueError):
    code = "account_patient_limit"
    status = 409


i18n.register(
    {
        "title.patient_already_registered": ("就诊人已存在", "Patient already registered"),
        "error.patient_already_registered": (
            "该证件号码已登记为就诊人，同一人不能重复登记。",
            "A patient with this identity document is already registered.",
        ),
        "title.account_patient_limit": ("就诊人数量已达上限", "Too many patients"),
        "error.account_patient_limit": (
            "一个账号最多添加 {maximum} 位就诊人。",
            "An account can hold at most {maximum} patients.",
        ),
    }
)


def identity_index(cipher: FieldCipher, id_type: rules.IdType, number: str) -> str:
    """The index a new row is written with (the current secret)."""
    return cipher.blind_index(f"{id_type.value}:{number}", purpose=ID_PURPOSE)


def identity_indexes(cipher: FieldCipher, id_type: rules.IdType, number: str) -> list[str]:
    """What a look-up asks for: the index under every configured secret, so rows not yet
    re-indexed by a running key rotation are found too."""
    return cipher.blind_indexes(f"{id_type.value}:{number}", purpose=ID_PURPOSE)


def phone_index(cipher: FieldCipher, phone: str) -> str:
    """The index a new row is written with (the current secret)."""
    return cipher.blind_index(phone, purpose=PHONE_PURPOSE)


def phone_indexes(cipher: FieldCipher, phone: str) -> list[str]:
    """What a look-up asks for (see :func:`identity_indexes`)."""
    return cipher.blind_indexes(phone, purpose=PHONE_PURPOSE)


def sealed_columns() -> list[SealedColumn]:
    """Where patients keep field-cipher tokens, and how each row's blind index follows from
    the plaintext (for `yuyue keys rotate`)."""

    def phone_reindex(cipher: FieldCipher, phone: str, _row: Mapping[str, Any]) -> dict[str, str]:
        return {"phone_index": phone_index(cipher, phone)}

    def identity_reindex(
        cipher: FieldCipher, number: str, row: Mapping[str, Any]
    ) -> dict[str, str]:
        return {"id_index": identity_index(cipher, rules.IdType(row["id_type"]), number)}

    return [
        SealedColumn(Account, "phone_cipher", reindex=phone_reindex),
        SealedColumn(Patient, "id_cipher", reads=("id_type",), reindex=identity_reindex),
        SealedColumn(Patient, "phone_cipher", reindex=phone_reindex),
    ]


async def register_patient(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    cipher: FieldCipher,
    name: str,
    id_type: rules.IdType,
    id_number: str,
    phone: str,
    account_phone: str | None,
    birth_date: date | None,
    sex: rules.Sex | None,
    account_patients_max: int,
    today: date,
    now: datetime,
    through: Channel | None = None,
) -> Patient:
    """Registers a patient. `through` is the channel whose key registers them (None: staff
    or the system), which may then read them (`rules.may_read`)."""
    clean_name = rules.validate_name(name)
    identity = rules.parse_identity(id_type, id_number, today=today)
    mobile = rules.normalise_mobile(phone)
    holder = rules.normalise_mobile(account_phone) if account_phone else mobile
    if identity.birth_date is not None and identity.sex is not None:
        # The resident ID is the source of truth for both.
        birth_date, sex = identity.birth_date, identity.sex
    if birth_date is None or sex is None:
        raise ValidationFailed(
            errors=[{"field": "birth_date/sex", "message": "required for this document type"}],
            summary="birth_date, sex",
        )
    if birth_date > today or birth_date.year < 1900:
        raise ValidationFailed(
            errors=[{"field": "birth_date", "message": "not a real birth date"}],
            summary="birth_date",
        )

    index = identity_index(cipher, id_type, identity.number)
    # Under every configured secret: during a key rotation the same person may still be
    # indexed under the previous one, which the unique constraint alone would not catch.
    existing = await session.scalar(
        select(Patient)
        .where(
            Patient.hospital_id == hospital_id,
            Patient.id_type == id_type.value,
            Patient.id_index.in_(identity_indexes(cipher, id_type, identity.number)),
        )
        .limit(1)
    )
    if existing is not None:
        same_person = existing.name == clean_name
        raise PatientAlreadyRegistered(patient_id=str(existing.id) if same_person else None)

    account = await _find_account(session, hospital_id=hospital_id, cipher=cipher, holder=holder)
    if account is None:
        account = await _create_account(
            session, hospital_id=hospital_id, cipher=cipher, holder=holder, now=now
        )
    else:
        count = await session.scalar(select(func.count()).where(Patient.account_id == account.id))
        if (count or 0) >= account_patients_max:
            raise AccountFull(maximum=account_patients_max)

    patient = Patient(
        hospital_id=hospital_id,
        account_id=account.id,
        # Taken last, so the hospital's number row stays locked for as short as can be.
        record_number=rules.record_number(
            await next_record_sequence(session, hospital_id=hospital_id)
        ),
        name=clean_name,
        id_type=id_type.value,
        id_cipher=cipher.encrypt(identity.number),
        id_index=index,
        id_masked=rules.mask_id_number(identity.number),
        birth_date=birth_date,
        sex=sex.value,
        phone_cipher=cipher.encrypt(mobile),
        phone_index=phone_index(cipher, mobile),
        phone_masked=rules.mask_phone(mobile),
        created_at=now,
    )
    session.add(patient)
    await session.flush()
    if through is not None and rules.links_channel(through):
        session.add(
            PatientChannel(
                patient_id=patient.id, channel=through.value, hospital_id=hospital_id, since=now
            )
        )
    return patient


async def next_record_sequence(session: AsyncSession, *, hospital_id: uuid.UUID) -> int:
    """The hospital's next medical record sequence, taken in the caller's transaction.

    Race-free: the increment is one UPDATE … RETURNING on the hospital's row, which a
    concurrent registration waits for (PostgreSQL's row lock, held to the end of the
    transaction; SQLite writes one transaction at a time), so no two commits get the same
    number; `uq_patient_record_number` backs it. The row is created on first use (INSERT …
    ON CONFLICT DO NOTHING: two first registrations both go on to the increment). A
    transaction that rolls back gives its number back, so numbers have no gaps."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(RecordNumberSequence)
        .values(hospital_id=hospital_id, last_number=0)
        .on_conflict_do_nothing()
    )
    taken = await session.scalar(
        update(RecordNumberSequence)
        .where(RecordNumberSequence.hospital_id == hospital_id)
        .values(last_number=RecordNumberSequence.last_number + 1)
        .returning(RecordNumberSequence.last_number)
        .execution_options(synchronize_session=False)
    )
    assert taken is not None
    return taken


async def remember_channel(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    patient_id: uuid.UUID,
    channel: Channel,
    now: datetime,
) -> None:
    """The channel knows this patient from now on: it registered the same person again, with
    their name and document number (the answer `patient_already_registered` gave it the
    id). Nothing when it knew them already or cannot know patients (kiosks)."""
    if not rules.links_channel(channel):
        return
    known = await session.get(PatientChannel, (patient_id, channel.value))
    if known is None:
        session.add(
            PatientChannel(
                patient_id=patient_id, channel=channel.value, hospital_id=hospital_id, since=now
            )
        )


async def _find_account(
    session: AsyncSession, *, hospital_id: uuid.UUID, cipher: FieldCipher, holder: str
) -> Account | None:
    """The holder's account, locked; found under any configured secret's index."""
    return await session.scalar(
        select(Account)
        .where(
            Account.hospital_id == hospital_id,
            Account.phone_index.in_(phone_indexes(cipher, holder)),
        )
        .order_by(Account.created_at, Account.id)
        .limit(1)
        .with_for_update()
    )


async def _create_account(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    cipher: FieldCipher,
    holder: str,
    now: datetime,
) -> Account:
    """Creates the holder's account, or joins the one a concurrent registration (a second
    family member added at the same moment) has just created."""
    account = Account(
        hospital_id=hospital_id,
        phone_cipher=cipher.encrypt(holder),
        phone_index=phone_index(cipher, holder),
        phone_masked=rules.mask_phone(holder),
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(account)
            await session.flush()
        return account
    except IntegrityError:
        existing = await _find_account(
            session, hospital_id=hospital_id, cipher=cipher, holder=holder
        )
        if existing is None:
            raise
        return existing


async def ensure_account(
    session: AsyncSession, *, hospital_id: uuid.UUID, cipher: FieldCipher, phone: str, now: datetime
) -> Account:
    """The account of a mobile number, created on its first sign-in."""
    holder = rules.normalise_mobile(phone)
    account = await session.scalar(
        select(Account)
        .where(
            Account.hospital_id == hospital_id,
            Account.phone_index.in_(phone_indexes(cipher, holder)),
        )
        .order_by(Account.created_at, Account.id)
        .limit(1)
    )
    if account is not None:
        return account
    return await _create_account(
        session, hospital_id=hospital_id, cipher=cipher, holder=holder, now=now
    )


async def account_patients(
    session: AsyncSession, *, hospital_id: uuid.UUID, account_id: uuid.UUID
) -> list[Patient]:
    return list(
        (
            await session.scalars(
                select(Patient)
                .where(Patient.hospital_id == hospital_id, Patient.account_id == account_id)
                .order_by(Patient.created_at)
            )
        ).all()
    )


async def get_patient(
    session: AsyncSession, *, hospital_id: uuid.UUID, patient_id: uuid.UUID
) -> Patient:
    patient = await session.get(Patient, patient_id)
    if patient is None or patient.hospital_id != hospital_id:
        raise NotFound(what="patient")
    return patient


async def readable_patient(
    session: AsyncSession, *, actor: Actor, patient_id: uuid.UUID
) -> Patient:
    """The patient a caller names by id, when `rules.may_read` lets it read them. Unknown,
    another hospital's, or not this caller's to read: all alike `not_found`, so a caller
    learns nothing of patients it may not read."""
    patient = await session.get(Patient, patient_id)
    if patient is None or patient.hospital_id != actor.hospital_id:
        raise NotFound(what="patient")
    known = False
    if actor.kind is ActorKind.CHANNEL and rules.links_channel(actor.channel):
        known = await session.get(PatientChannel, (patient_id, actor.channel.value)) is not None
    if not rules.may_read(actor, known_to_channel=known):
        raise NotFound(what="patient")
    return patient


async def read_patient(
    session: AsyncSession,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    read: str,
    source: ReadSource,
    now: datetime,
) -> Patient:
    """`readable_patient`, and the read logged when staff read (`read`: what was shown,
    "profile", "visits", "waitlist"…). A staff read must run in a write transaction (its
    one INSERT); a channel's reads write nothing."""
    patient = await readable_patient(session, actor=actor, patient_id=patient_id)
    record_read(
        session,
        actor=actor,
        kind=ReadKind.RECORD,
        patient_ids=[patient.id],
        source=source,
        now=now,
        read=read,
    )
    return patient


async def unmask(
    session: AsyncSession,
    *,
    actor: Actor,
    cipher: FieldCipher,
    patient_id: uuid.UUID,
    field: rules.UnmaskField,
    reason: str,
    source: ReadSource,
    now: datetime,
) -> str:
    """The patient's identity number or phone in full, for staff allowed to see it
    (`staff.rules.UNMASKERS`) who say why. Refused without the role (`forbidden`) or a
    reason (`unmask_reason_required`), before anything is read; shown, it is logged with
    the field and the reason (any number typed in the reason masked)."""
    require_staff(actor, *staff_rules.UNMASKERS)
    why = staff_rules.unmask_reason(reason)
    if why is None:
        raise UnmaskReasonRequired()
    patient = await readable_patient(session, actor=actor, patient_id=patient_id)
    if field is rules.UnmaskField.ID_NUMBER:
        shown, masked = cipher.decrypt(patient.id_cipher), patient.id_masked
    else:
        shown, masked = cipher.decrypt(patient.phone_cipher), patient.phone_masked
    # The number itself is never logged, not even typed into the reason.
    why = rules.mask_text(why).replace(shown, masked)
    record_read(
        session,
        actor=actor,
        kind=ReadKind.UNMASK,
        patient_ids=[patient.id],
        source=source,
        now=now,
        field=field.value,
        reason=why,
    )
    return shown


async def masked_names(
    session: AsyncSession, *, hospital_id: uuid.UUID, patient_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Patients' names as staff lists show them (张*丰): enough to tell people apart."""
    if not patient_ids:
        return {}
    rows = await session.execute(
        select(Patient.id, Patient.name).where(
            Patient.hospital_id == hospital_id, Patient.id.in_(patient_ids)
        )
    )
    return {patient_id: rules.mask_name(name) for patient_id, name in rows}


async def find_by_identity(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    cipher: FieldCipher,
    id_type: rules.IdType,
    id_number: str,
    today: date,
) -> Patient | None:
    identity = rules.parse_identity(id_type, id_number, today=today)
    return await session.scalar(
        select(Patient)
        .where(
            Patient.hospital_id == hospital_id,
            Patient.id_type == id_type.value,
            Patient.id_index.in_(identity_indexes(cipher, id_type, identity.number)),
        )
        .order_by(Patient.created_at, Patient.id)
        .limit(1)
    )


def _other_document_indexes(cipher: FieldCipher, query: str, *, today: date) -> list[str]:
    """The blind indexes of `query` read as each document type but the resident ID."""
    indexes: list[str] = []
    for id_type in rules.IdType:
        if id_type is rules.IdType.RESIDENT_ID:
            continue
        try:
            number = rules.parse_identity(id_type, query, today=today).number
        except rules.InvalidIdNumber:
            continue  # not a number of this document type
        indexes.extend(identity_indexes(cipher, id_type, number))
    return indexes


async def find_patients(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    cipher: FieldCipher,
    query: str,
    today: date,
    limit: int = 20,
) -> list[Patient]:
    """The patients a registrar's search finds: by mobile number (a family may share one,
    so several), by resident ID number (validated first: a wrong check digit is refused
    with the reason, not "not found"), by medical record number, or by the number of any
    other document. Exact matches through the blind indexes only; nothing is decrypted."""
    kind = rules.lookup_kind(query)
    condition: ColumnElement[bool]
    if kind is rules.LookupKind.PHONE:
        mobile = rules.normalise_mobile(query)
        condition = Patient.phone_index.in_(phone_indexes(cipher, mobile))
    elif kind is rules.LookupKind.RESIDENT_ID:
        identity = rules.parse_identity(rules.IdType.RESIDENT_ID, query, today=today)
        condition = and_(
            Patient.id_type == rules.IdType.RESIDENT_ID.value,
            Patient.id_index.in_(
                identity_indexes(cipher, rules.IdType.RESIDENT_ID, identity.number)
            ),
        )
    else:
        indexes = _other_document_indexes(cipher, query, today=today)
        if kind is rules.LookupKind.RECORD_NUMBER:
            wanted = rules.parse_record_number(query)
            assert wanted is not None
            # A passport number may have the same shape: it is found too.
            by_record = Patient.record_number == wanted
            condition = or_(by_record, Patient.id_index.in_(indexes)) if indexes else by_record
        elif not indexes:
            raise rules.InvalidLookup()
        else:
            condition = Patient.id_index.in_(indexes)
    found = await session.scalars(
        select(Patient)
        .where(Patient.hospital_id == hospital_id, condition)
        .order_by(Patient.created_at, Patient.id)
        .limit(limit)
    )
    return list(found.all())
