"""Rotating the master secret on a live database (SQLite and PostgreSQL): values sealed under
the old secret stay readable and findable while the rotation runs, the rotation re-seals and
re-indexes every one of them in small batches while bookings go on, a second run finds
nothing to do, and afterwards the old secret can go."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import FastAPI
from sqlalchemy import func, select, update

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY
from tests.helpers import row_counts
from yuyue.accounts import service as accounts_service
from yuyue.booking.models import Appointment
from yuyue.cli import rotate_keys
from yuyue.config import Settings
from yuyue.kit import rekey
from yuyue.kit.clock import FixedClock
from yuyue.kit.crypto import (
    FieldCipher,
    generate_master_secret,
    key_id,
    load_master_secret,
    load_master_secrets,
)
from yuyue.kit.db import Database
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.models import OutboxMessage
from yuyue.operations import keys as keys_service
from yuyue.patients import service as patients_service
from yuyue.patients.models import Account, Patient
from yuyue.patients.rules import IdType
from yuyue.scheduling.models import Hospital
from yuyue.staff.models import StaffUser
from yuyue.web.app import create_app

A = generate_master_secret()
B = generate_master_secret()
C = generate_master_secret()
KEY_A = key_id(load_master_secret(A))
KEY_B = key_id(load_master_secret(B))
TOTP = "JBSWY3DPEHPK3PXP"


def name(n: int) -> str:
    """A name of letters only (real-name rules), different for each n below 120."""
    return "患者" + "甲乙丙丁戊己庚辛壬癸"[n % 10] + "子丑寅卯辰巳午未申酉戌亥"[n // 10]


def cipher(current: str, *previous: str) -> FieldCipher:
    return load_master_secrets(current, previous).cipher()


def legacy_token(secret: str, plaintext: str) -> str:
    """What the first version wrote ("v1.", no key id)."""
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"yuyue/field-cipher/v1/encrypt"
    ).derive(load_master_secret(secret))
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), b"v1")
    return "v1." + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()


@dataclass
class Registered:
    hospital: Hospital
    numbers: dict[uuid.UUID, str]  # patient id → identity number
    phones: dict[uuid.UUID, str]  # patient id → phone
    holder: str  # the phone of the account two patients share
    code: str  # a sign-in code requested under the old secret
    staff_id: uuid.UUID | None


async def register_under(db: Database, secret: str) -> Registered:
    """Patients, a shared account, a sign-in code and a staff TOTP secret, all sealed and
    indexed under `secret` alone, as a hospital's database is before a rotation; one
    patient's phone is in the format from before key ids."""
    old = cipher(secret)
    numbers: dict[uuid.UUID, str] = {}
    phones: dict[uuid.UUID, str] = {}
    holder = f.phone()
    async with db.session_scope() as s:
        hospital = await f.make_hospital(s, now=NOW)
        for position in range(5):
            number, phone = f.resident_id(), f.phone()
            patient = await patients_service.register_patient(
                s,
                hospital_id=hospital.id,
                cipher=old,
                name=name(position),
                id_type=IdType.RESIDENT_ID,
                id_number=number,
                phone=phone,
                account_phone=holder if position < 2 else None,
                birth_date=None,
                sex=None,
                account_patients_max=5,
                today=NOW.date(),
                now=NOW,
            )
            numbers[patient.id], phones[patient.id] = number, phone
        first = next(iter(phones))
        await s.execute(
            update(Patient)
            .where(Patient.id == first)
            .values(phone_cipher=legacy_token(secret, phones[first]))
        )
        await accounts_service.request_code(
            s, hospital_id=hospital.id, cipher=old, phone=holder, client_address="10.0.0.1", now=NOW
        )
        username = await f.make_staff(s, hospital=hospital, roles=[], now=NOW)
        staff_id = await s.scalar(select(StaffUser.id).where(StaffUser.username == username))
        await s.execute(
            update(StaffUser).where(StaffUser.id == staff_id).values(totp_secret=old.encrypt(TOTP))
        )
    async with db.read() as s:
        payload = await s.scalar(
            select(OutboxMessage.payload).where(OutboxMessage.kind == MessageKind.SIGN_IN_CODE)
        )
    assert payload is not None
    code = old.decrypt(payload["code_cipher"])
    return Registered(hospital, numbers, phones, holder, code, staff_id)


async def key_counts(db: Database) -> dict[str, dict[str, int]]:
    async with db.read() as s:
        return {column.label: column.counts for column in await keys_service.status(s)}


async def sealed_values(db: Database, reader: FieldCipher) -> dict[str, list[str]]:
    """Every sealed value, opened with `reader` (which fails on any it cannot open)."""
    opened: dict[str, list[str]] = {}
    async with db.read() as s:
        for sealed in keys_service.sealed_columns():
            column = getattr(sealed.model, sealed.column)
            tokens = (await s.scalars(select(column).where(column.is_not(None)))).all()
            opened[sealed.label] = sorted(reader.decrypt(token) for token in tokens)
    return opened


class TestRotation:
    async def test_old_values_stay_findable_then_rotate_to_the_new_secret(
        self, db: Database
    ) -> None:
        registered = await register_under(db, A)
        hospital_id = registered.hospital.id
        before = await sealed_values(db, cipher(A))
        rotating = cipher(B, A)

        # Deployed with B current and A previous, before any rotation: found by identity
        # number, by the account's phone, and by the sign-in code sent under A.
        async with db.read() as s:
            for patient_id, number in registered.numbers.items():
                found = await patients_service.find_by_identity(
                    s,
                    hospital_id=hospital_id,
                    cipher=rotating,
                    id_type=IdType.RESIDENT_ID,
                    id_number=number,
                    today=NOW.date(),
                )
                assert found is not None and found.id == patient_id
            by_phone = (
                await s.scalars(
                    select(Patient.id).where(
                        Patient.phone_index.in_(
                            patients_service.phone_indexes(rotating, registered.phones[patient_id])
                        )
                    )
                )
            ).all()
            assert list(by_phone) == [patient_id]
        counts = await row_counts(db)
        async with db.session_scope() as s:
            signed_in = await accounts_service.verify_code(
                s,
                hospital_id=hospital_id,
                cipher=rotating,
                phone=registered.holder,
                code=registered.code,
                now=NOW,
            )
        assert signed_in.refusal is None and signed_in.account is not None
        # The same person again, or a new one under the holder's phone: the duplicate check
        # and the account look-up see the rows indexed under A.
        number = next(iter(registered.numbers.values()))
        with pytest.raises(patients_service.PatientAlreadyRegistered):
            async with db.session_scope() as s:
                await patients_service.register_patient(
                    s,
                    hospital_id=hospital_id,
                    cipher=rotating,
                    name=name(0),
                    id_type=IdType.RESIDENT_ID,
                    id_number=number,
                    phone=f.phone(),
                    account_phone=None,
                    birth_date=None,
                    sex=None,
                    account_patients_max=5,
                    today=NOW.date(),
                    now=NOW,
                )
        assert await row_counts(db) == counts
        async with db.session_scope() as s:
            joined = await patients_service.register_patient(
                s,
                hospital_id=hospital_id,
                cipher=rotating,
                name="新患者",
                id_type=IdType.RESIDENT_ID,
                id_number=f.resident_id(),
                phone=f.phone(),
                account_phone=registered.holder,
                birth_date=None,
                sex=None,
                account_patients_max=5,
                today=NOW.date(),
                now=NOW,
            )
        assert joined.account_id == signed_in.account.id
        assert (await row_counts(db))["account"] == counts["account"]

        listed = await key_counts(db)
        assert listed["patient.id_cipher"] == {KEY_A: 5, KEY_B: 1}
        assert listed["patient.phone_cipher"] == {KEY_A: 4, "v1": 1, KEY_B: 1}
        assert listed["staff_user.totp_secret"] == {KEY_A: 1}
        assert listed["outbox_message.to_phone_cipher"] == {KEY_A: 1}

        lines: list[str] = []
        summary = await rotate_keys(db, rotating, batch_size=2, report=lines.append)

        # 4 accounts, 5 + 5 patient values, the message, the TOTP secret.
        assert summary.total == 16 and summary.changed_meanwhile == 0
        assert summary.resealed["patient.phone_cipher"] == 5
        assert "patient.id_cipher: 2 re-sealed" in lines
        after = await key_counts(db)
        assert all(set(counts) <= {KEY_B} for counts in after.values()), after
        assert sum(after["patient.id_cipher"].values()) == 6

        # Only B configured: every value opens, is the same as before, and is found.
        only_b = cipher(B)
        opened = await sealed_values(db, only_b)
        for label, values in before.items():
            assert set(values) <= set(opened[label]), label
        async with db.read() as s:
            for patient_id, number in registered.numbers.items():
                patient = await s.get(Patient, patient_id)
                assert patient is not None
                assert patient.id_index == patients_service.identity_index(
                    only_b, IdType.RESIDENT_ID, number
                )
                assert patient.phone_index == patients_service.phone_index(
                    only_b, registered.phones[patient_id]
                )
                found = await patients_service.find_by_identity(
                    s,
                    hospital_id=hospital_id,
                    cipher=only_b,
                    id_type=IdType.RESIDENT_ID,
                    id_number=number,
                    today=NOW.date(),
                )
                assert found is not None and found.id == patient_id
            totp = await s.scalar(
                select(StaffUser.totp_secret).where(StaffUser.id == registered.staff_id)
            )
            assert totp is not None and only_b.decrypt(totp) == TOTP
        async with db.session_scope() as s:
            account = await patients_service.ensure_account(
                s, hospital_id=hospital_id, cipher=only_b, phone=registered.holder, now=NOW
            )
        assert account.id == signed_in.account.id
        assert (await row_counts(db))["account"] == counts["account"]

        again = await rotate_keys(db, rotating, batch_size=2)
        assert again.total == 0
        assert await key_counts(db) == after

    async def test_a_value_no_configured_secret_opens_stops_its_batch_unwritten(
        self, db: Database
    ) -> None:
        registered = await register_under(db, A)
        stray = next(iter(registered.phones))
        async with db.session_scope() as s:
            await s.execute(
                update(Patient).where(Patient.id == stray).values(id_cipher=legacy_token(C, "x"))
            )
        before = await key_counts(db)

        with pytest.raises(rekey.RotationStopped, match=f"patient.id_cipher of row {stray}"):
            await rotate_keys(db, cipher(B, A), batch_size=100)

        after = await key_counts(db)
        # Accounts come first and were rotated; no identity number was (one batch).
        assert after["account.phone_cipher"] == {KEY_B: 4}
        assert after["patient.id_cipher"] == before["patient.id_cipher"]

    async def test_one_person_registered_under_each_secret_stops_the_rotation(
        self, db: Database
    ) -> None:
        # A process still configured with B alone registers someone already indexed under A
        # (the window of a careless deploy): re-indexing would make the two rows equal.
        registered = await register_under(db, A)
        number = next(iter(registered.numbers.values()))
        async with db.session_scope() as s:
            await patients_service.register_patient(
                s,
                hospital_id=registered.hospital.id,
                cipher=cipher(B),
                name=name(0),
                id_type=IdType.RESIDENT_ID,
                id_number=number,
                phone=f.phone(),
                account_phone=None,
                birth_date=None,
                sex=None,
                account_patients_max=5,
                today=NOW.date(),
                now=NOW,
            )
        before = await key_counts(db)

        with pytest.raises(rekey.RotationStopped, match="would make two rows equal"):
            await rotate_keys(db, cipher(B, A), batch_size=100)

        assert (await key_counts(db))["patient.id_cipher"] == before["patient.id_cipher"]

    async def test_a_row_changed_between_read_and_write_is_left_alone(self, db: Database) -> None:
        await register_under(db, A)
        rotating = cipher(B, A)
        sealed = next(s for s in keys_service.sealed_columns() if s.label == "account.phone_cipher")
        async with db.read() as s:
            rows = await rekey.pending(s, sealed, cipher=rotating, after=None, limit=10)
        changes = rekey.reseal(sealed, rows, cipher=rotating)
        async with db.session_scope() as s:
            await s.execute(
                update(Account)
                .where(Account.id == rows[0].key)
                .values(phone_cipher=rotating.encrypt("13900000000"))
            )

        async with db.session_scope() as s:
            written = await rekey.apply(s, sealed, changes)

        assert written == len(rows) - 1
        async with db.read() as s:
            kept = await s.scalar(select(Account.phone_cipher).where(Account.id == rows[0].key))
        assert kept is not None and rotating.decrypt(kept) == "13900000000"


@asynccontextmanager
async def serving(
    db: Database, clock: FixedClock, *, current: str, previous: str | None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = Settings(
        database_url=db.url,
        secret_key=current,
        previous_secret_keys=previous,
        worker_in_process=False,
    )
    application = create_app(settings, clock=clock, database=db, run_worker=False)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield application, client


async def test_bookings_and_registrations_go_on_while_the_rotation_runs(
    db: Database, clock: FixedClock
) -> None:
    old = cipher(A)
    async with db.session_scope() as s:
        hospital = await f.make_hospital(s, now=NOW, ratios={"appointment": 100})
        department = await f.make_department(s, hospital=hospital)
        level = await f.make_level(s, hospital=hospital)
        doctor = await f.make_doctor(s, hospital=hospital, department=department, level=level)
        clinic = await f.make_session(
            s,
            hospital=hospital,
            department=department,
            level=level,
            doctor=doctor,
            day=VISIT_DAY,
            capacity=60,
            now=NOW,
        )
        patients = [
            await f.make_patient(s, hospital=hospital, cipher=old, now=NOW, name=name(n))
            for n in range(40)
        ]
        key = await f.make_api_key(s, hospital=hospital, now=NOW)
    auth = {"Authorization": f"Bearer {key}"}

    async with serving(db, clock, current=B, previous=A) as (application, client):
        rotating: FieldCipher = application.state.ctx.cipher
        assert rotating.key_id == KEY_B

        answered: list[int] = []
        seen_by_batches: list[int] = []

        async def book(patient: Patient) -> httpx.Response:
            body = {"patient_id": str(patient.id), "session_id": str(clinic.id)}
            response = await client.post("/api/v1/appointments", json=body, headers=auth)
            answered.append(response.status_code)
            return response

        async def register(n: int) -> httpx.Response:
            body = {
                "name": name(60 + n),
                "id_type": "resident_id",
                "id_number": f.resident_id(),
                "phone": f.phone(),
            }
            return await client.post("/api/v1/patients", json=body, headers=auth)

        rotation = asyncio.create_task(
            rotate_keys(
                db, rotating, batch_size=3, report=lambda _: seen_by_batches.append(len(answered))
            )
        )
        answers = await asyncio.gather(
            *(book(p) for p in patients), *(register(n) for n in range(10))
        )
        summary = await rotation

    # The two really overlapped: some batches were written between bookings.
    assert any(0 < seen < 40 for seen in seen_by_batches), seen_by_batches
    assert [a.status_code for a in answers] == [201] * 50, [
        a.text for a in answers if a.status_code != 201
    ]
    async with db.read() as s:
        booked = await s.scalar(
            select(func.count()).select_from(Appointment).where(Appointment.session_id == clinic.id)
        )
        assert booked == 40
        assert await s.scalar(select(func.count()).select_from(Patient)) == 50
    # The 40 patients and their 40 accounts, two values a patient; the 10 registered during
    # the rotation were written under B and needed nothing.
    assert summary.total + summary.changed_meanwhile == 40 * 3
    after = await key_counts(db)
    assert after["patient.id_cipher"] == {KEY_B: 50}
    assert after["patient.phone_cipher"] == {KEY_B: 50}
    assert after["account.phone_cipher"] == {KEY_B: 50}
    await sealed_values(db, cipher(B))

    # Restarted with B alone: the same person is still recognised through the API.
    async with serving(db, clock, current=B, previous=None) as (_application, client):
        again = await client.post(
            "/api/v1/patients",
            json={
                "name": patients[0].name,
                "id_type": "resident_id",
                "id_number": old.decrypt(patients[0].id_cipher),
                "phone": f.phone(),
            },
            headers=auth,
        )
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "patient_already_registered"
    assert again.json()["patient_id"] == str(patients[0].id)
