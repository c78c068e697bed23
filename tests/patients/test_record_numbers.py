"""Medical record numbers (病历号): each patient gets the hospital's next one when registered
(``MR`` and 8 digits), never the same twice in a hospital even when registrations run at
once, on SQLite and PostgreSQL; patients registered before the numbers existed get theirs
from the migration in the order they registered; registrars find patients by them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from tests import factories as f
from tests.conftest import NOW, PG_URL, World
from tests.patients.old_rows import insert_patient
from tests.patients.test_api import register
from yuyue.kit import migrate
from yuyue.kit.crypto import FieldCipher, generate_master_secret, load_master_secret
from yuyue.kit.db import Database
from yuyue.patients import rules
from yuyue.patients import service as patient_service
from yuyue.patients.models import Patient, RecordNumberSequence
from yuyue.scheduling.models import Hospital
from yuyue.web.context import AppContext

BEFORE = "e4c1a7d9b5f2"  # the revision before medical record numbers


class TestTheFormat:
    @pytest.mark.parametrize(
        ("sequence", "expected"),
        [(1, "MR00000001"), (42, "MR00000042"), (99_999_999, "MR99999999")],
    )
    def test_the_prefix_and_eight_digits(self, sequence: int, expected: str) -> None:
        assert rules.record_number(sequence) == expected

    def test_past_eight_digits_the_number_grows_rather_than_repeats(self) -> None:
        assert rules.record_number(100_000_000) == "MR100000000"

    def test_there_is_no_number_zero(self) -> None:
        with pytest.raises(ValueError, match="start at 1"):
            rules.record_number(0)

    @pytest.mark.parametrize(
        "typed",
        ["MR00000042", "mr00000042", "MR 0000 0042", "MR-42", "ＭＲ００００００４２", "mr42"],
    )
    def test_what_a_registrar_types_is_read_as_the_stored_form(self, typed: str) -> None:
        assert rules.parse_record_number(typed) == "MR00000042"
        assert rules.lookup_kind(typed) is rules.LookupKind.RECORD_NUMBER

    @pytest.mark.parametrize("typed", ["MR", "MR0", "MR00000000", "MRX1", "M00000042", "00000042"])
    def test_text_not_shaped_like_a_record_number_is_not_one(self, typed: str) -> None:
        assert rules.parse_record_number(typed) is None

    def test_phones_and_id_numbers_keep_their_kinds(self) -> None:
        assert rules.lookup_kind("13912345678") is rules.LookupKind.PHONE
        assert rules.lookup_kind(f.resident_id()) is rules.LookupKind.RESIDENT_ID
        assert rules.lookup_kind("E12345678") is rules.LookupKind.OTHER_DOCUMENT
        with pytest.raises(rules.InvalidLookup):
            rules.lookup_kind("MR#42")


class TestAssignment:
    async def test_patients_are_numbered_in_turn_within_their_hospital(
        self, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            taken = await s.scalar(
                select(RecordNumberSequence.last_number).where(
                    RecordNumberSequence.hospital_id == world.hospital.id
                )
            )
            assert taken is not None
            first = await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
            second = await f.make_patient(
                s, hospital=world.hospital, cipher=ctx.cipher, now=NOW, name="李四"
            )
            elsewhere = await f.make_hospital(s, now=NOW, code="other")
            theirs = await f.make_patient(s, hospital=elsewhere, cipher=ctx.cipher, now=NOW)
        assert first.record_number == rules.record_number(taken + 1)
        assert second.record_number == rules.record_number(taken + 2)
        # Another hospital counts from 1: the numbers are unique in a hospital.
        assert theirs.record_number == "MR00000001"

    async def test_a_registration_that_rolls_back_gives_its_number_back(
        self, ctx: AppContext, world: World
    ) -> None:
        class Abandoned(Exception):
            pass

        dropped: list[Patient] = []

        async def abandon() -> None:
            async with ctx.db.session_scope() as s:
                dropped.append(
                    await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
                )
                raise Abandoned

        with pytest.raises(Abandoned):
            await abandon()
        async with ctx.db.session_scope() as s:
            kept = await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
        assert kept.record_number == dropped[0].record_number

    async def test_the_database_refuses_a_number_twice_in_a_hospital(
        self, ctx: AppContext, world: World
    ) -> None:
        async def give_a_taken_number() -> None:
            async with ctx.db.session_scope() as s:
                patient = await f.make_patient(
                    s, hospital=world.hospital, cipher=ctx.cipher, now=NOW
                )
                patient.record_number = world.patient.record_number

        with pytest.raises(IntegrityError, match="record_number"):
            await give_a_taken_number()


class TestConcurrentRegistrations:
    async def test_registrations_at_once_all_get_different_numbers(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        responses = await asyncio.gather(
            *(
                register(
                    client,
                    world,
                    name=f"并发{'一二三四五六七八'[n]}",
                    id_number=f.resident_id(),
                    phone=f.phone(),
                )
                for n in range(8)
            )
        )
        assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
        numbers = [r.json()["record_number"] for r in responses]
        async with ctx.db.read() as s:
            stored = list(
                (
                    await s.scalars(
                        select(Patient.record_number).where(
                            Patient.hospital_id == world.hospital.id
                        )
                    )
                ).all()
            )
            last = await s.scalar(
                select(RecordNumberSequence.last_number).where(
                    RecordNumberSequence.hospital_id == world.hospital.id
                )
            )
        assert len(set(numbers)) == 8
        assert len(set(stored)) == len(stored)
        # No gaps either: the hospital's numbers are 1 … its count of patients.
        assert sorted(stored) == [rules.record_number(n) for n in range(1, len(stored) + 1)]
        assert last == len(stored)

    async def test_a_registration_waits_for_the_open_one_and_takes_the_next_number(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, backend: str
    ) -> None:
        """The first registration holds its number in an open transaction; the second,
        arriving meanwhile, must wait for it rather than read the same last number."""
        async with ctx.db.session_scope() as s:
            first = await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
            second = asyncio.create_task(
                register(client, world, name="后来", id_number=f.resident_id(), phone=f.phone())
            )
            await wait_for_the_number_row(ctx, backend)
            assert not second.done()
        response = await second
        assert response.status_code == 201, response.text
        taken = int(first.record_number.removeprefix("MR"))
        assert response.json()["record_number"] == rules.record_number(taken + 1)


async def wait_for_the_number_row(ctx: AppContext, backend: str) -> None:
    """Returns once another transaction waits on a lock (PostgreSQL) or after a pause long
    enough for a request to queue for the single SQLite writer."""
    if backend == "sqlite":
        await asyncio.sleep(0.3)
        return
    for _ in range(200):
        async with ctx.db.read() as s:
            waiting = await s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the concurrent registration never waited")


class TestTheReadModel:
    async def test_the_api_shows_the_number_on_registering_and_reading(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        created = await register(client, world)
        assert created.status_code == 201, created.text
        number = created.json()["record_number"]
        assert rules.parse_record_number(number) == number
        read = await client.get(f"/api/v1/patients/{created.json()['id']}", headers=world.auth)
        assert read.json()["record_number"] == number


class TestFindByRecordNumber:
    async def test_found_however_typed_and_only_in_its_hospital(
        self, ctx: AppContext, world: World
    ) -> None:
        number = world.patient.record_number
        digits = str(int(number.removeprefix("MR")))
        async with ctx.db.session_scope() as s:
            for typed in (number, f"mr-{digits}", f" MR {digits} "):
                found = await patient_service.find_patients(
                    s,
                    hospital_id=world.hospital.id,
                    cipher=ctx.cipher,
                    query=typed,
                    today=NOW.date(),
                )
                assert [p.id for p in found] == [world.patient.id], typed
            elsewhere = await f.make_hospital(s, now=NOW, code="other")
            assert (
                await patient_service.find_patients(
                    s, hospital_id=elsewhere.id, cipher=ctx.cipher, query=number, today=NOW.date()
                )
                == []
            )

    async def test_a_number_nobody_has_finds_nobody(self, ctx: AppContext, world: World) -> None:
        async with ctx.db.read() as s:
            found = await patient_service.find_patients(
                s,
                hospital_id=world.hospital.id,
                cipher=ctx.cipher,
                query="MR99999999",
                today=NOW.date(),
            )
        assert found == []


@asynccontextmanager
async def old_database(backend: str, tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """An empty database (SQLite file, or a PostgreSQL schema of its own) at `BEFORE`."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        await asyncio.to_thread(command.upgrade, migrate.alembic_config(url), BEFORE)
        yield url, {}
        return
    admin = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    schema = f"yuyue_backfill_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    connect_args = {"server_settings": {"search_path": schema}}
    try:
        config = migrate.alembic_config(PG_URL, connect_args=connect_args)
        await asyncio.to_thread(command.upgrade, config, BEFORE)
        yield PG_URL, connect_args
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


class TestBackfill:
    async def test_patients_before_the_numbers_get_them_in_the_order_they_registered(
        self, backend: str, tmp_path: Path
    ) -> None:
        async with old_database(backend, tmp_path) as (url, connect_args):
            await self._check(url, connect_args)

    async def _check(self, url: str, connect_args: dict[str, Any]) -> None:
        cipher = FieldCipher(load_master_secret(generate_master_secret()))
        db = Database(url, connect_args=connect_args)
        early, late = NOW - timedelta(days=30), NOW - timedelta(days=1)
        try:
            async with db.session_scope() as s:
                hospital = await f.make_hospital(s, now=NOW)
                other = await f.make_hospital(s, now=NOW, code="other")
                # Inserted out of order; two at the same instant are ordered by id.
                third = await insert_patient(s, hospital=hospital, cipher=cipher, created_at=late)
                tied_b = await insert_patient(
                    s,
                    hospital=hospital,
                    cipher=cipher,
                    created_at=early,
                    patient_id=uuid.UUID(int=2),
                )
                tied_a = await insert_patient(
                    s,
                    hospital=hospital,
                    cipher=cipher,
                    created_at=early,
                    patient_id=uuid.UUID(int=1),
                )
                theirs = await insert_patient(s, hospital=other, cipher=cipher, created_at=late)
        finally:
            await db.dispose()

        await migrate.upgrade(url, connect_args=connect_args)

        db = Database(url, connect_args=connect_args)
        try:
            async with db.read() as s:
                numbers = dict((await s.execute(select(Patient.id, Patient.record_number))).all())
            assert numbers == {
                tied_a: "MR00000001",
                tied_b: "MR00000002",
                third: "MR00000003",
                theirs: "MR00000001",
            }
            # The next registration carries on from the last number given.
            async with db.session_scope() as s:
                hospital_row = await s.get(Hospital, hospital.id)
                assert hospital_row is not None
                new = await f.make_patient(s, hospital=hospital_row, cipher=cipher, now=NOW)
            assert new.record_number == "MR00000004"
        finally:
            await db.dispose()
