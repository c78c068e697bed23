"""Registering and reading real-name patients over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests import factories as f
from tests.conftest import NOW, World
from tests.helpers import assert_problem, row_counts
from yuyue.patients import service as patient_service
from yuyue.patients.models import Account, Patient
from yuyue.patients.rules import IdType
from yuyue.web.context import AppContext

PUBLISHED_EXAMPLE = "11010519491231002X"  # GB 11643's own example: 1949-12-31, female
PHONE = "13912345678"


def with_check(first17: str) -> str:
    """Appends the GB 11643 check character (weights 2^(17-i) mod 11, 10 written as X)."""
    assert re.fullmatch(r"[0-9]{17}", first17)
    total = sum(int(digit) * pow(2, 17 - i, 11) for i, digit in enumerate(first17))
    value = (12 - total % 11) % 11
    return first17 + ("X" if value == 10 else str(value))


async def register(
    client: httpx.AsyncClient,
    world: World,
    *,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> httpx.Response:
    body = {
        "name": "张晓燕",
        "id_type": "resident_id",
        "id_number": PUBLISHED_EXAMPLE,
        "phone": PHONE,
        **fields,
    }
    return await client.post(
        "/api/v1/patients", json=body, headers={**world.auth, **(headers or {})}
    )


async def book(client: httpx.AsyncClient, world: World, patient_id: Any) -> httpx.Response:
    body = {"patient_id": str(patient_id), "session_id": str(world.session.id)}
    return await client.post("/api/v1/appointments", json=body, headers=world.auth)


class TestRegister:
    async def test_a_resident_id_registers_with_masked_number_phone_and_derived_facts(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        response = await register(client, world)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["name"] == "张晓燕"
        assert body["id_type"] == "resident_id"
        assert body["id_number"] == "1101**********002X"
        assert body["phone"] == "139****5678"
        assert body["birth_date"] == "1949-12-31"
        assert body["sex"] == "F"
        assert uuid.UUID(body["id"]) and uuid.UUID(body["account_id"])

    async def test_the_stored_rows_hold_neither_plain_number_nor_plain_phone(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        body = (await register(client, world)).json()
        async with ctx.db.read() as s:
            patient = await s.get(Patient, uuid.UUID(body["id"]))
            account = await s.get(Account, uuid.UUID(body["account_id"]))
        assert patient is not None and account is not None
        for row in (patient, account):
            for column in type(row).__table__.columns:
                stored = str(getattr(row, column.key))
                assert PUBLISHED_EXAMPLE not in stored.upper(), column.key
                assert PHONE not in stored, column.key
        assert ctx.cipher.decrypt(patient.id_cipher) == PUBLISHED_EXAMPLE
        assert ctx.cipher.decrypt(patient.phone_cipher) == PHONE
        assert ctx.cipher.decrypt(account.phone_cipher) == PHONE
        assert patient.id_masked == "1101**********002X"

    async def test_number_typed_in_lower_case_with_spaces_is_stored_normalised(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        response = await register(client, world, id_number=" 110105 19491231 002x ")
        assert response.status_code == 201, response.text
        assert response.json()["id_number"] == "1101**********002X"
        async with ctx.db.read() as s:
            patient = await s.get(Patient, uuid.UUID(response.json()["id"]))
        assert patient is not None
        assert ctx.cipher.decrypt(patient.id_cipher) == PUBLISHED_EXAMPLE

    async def test_a_passport_with_birth_date_and_sex_registers(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        response = await register(
            client,
            world,
            name="John Smith",
            id_type="passport",
            id_number="E12345678",
            birth_date="1985-06-01",
            sex="M",
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["id_type"] == "passport"
        assert body["id_number"] == "E123*5678"
        assert body["birth_date"] == "1985-06-01"
        assert body["sex"] == "M"

    async def test_a_passport_without_birth_date_and_sex_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await register(
            client, world, name="John Smith", id_type="passport", id_number="E12345678"
        )
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"] and "birth_date" in body["errors"][0]["field"]
        assert await row_counts(ctx.db) == before


class TestDuplicate:
    async def test_the_same_person_twice_names_the_existing_patient(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        first = (await register(client, world)).json()
        before = await row_counts(ctx.db)
        again = await register(client, world, phone="13800138000")
        body = assert_problem(again, 409, "patient_already_registered")
        assert body["patient_id"] == first["id"]
        assert await row_counts(ctx.db) == before

    async def test_the_same_number_under_another_name_does_not_reveal_the_patient(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        assert (await register(client, world)).status_code == 201
        before = await row_counts(ctx.db)
        again = await register(client, world, name="王小明")
        body = assert_problem(again, 409, "patient_already_registered")
        assert "patient_id" not in body
        assert await row_counts(ctx.db) == before

    @pytest.mark.parametrize(
        "typed",
        [
            "11010519491231002x",
            "110105 19491231 002X",
            "1101 0519 4912 3100 2x",
            "１１０１０５１９４９１２３１００２Ｘ",
        ],
    )
    async def test_the_same_number_typed_differently_is_the_same_person(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, typed: str
    ) -> None:
        first = (await register(client, world)).json()
        before = await row_counts(ctx.db)
        again = await register(client, world, id_number=typed)
        body = assert_problem(again, 409, "patient_already_registered")
        assert body["patient_id"] == first["id"]
        assert await row_counts(ctx.db) == before


INVALID_IDS = [
    # (number, reason, a word of the zh-CN sentence, a word of the English one)
    (PUBLISHED_EXAMPLE[:17] + "1", "checksum", "校验码", "check digit"),
    (with_check("11010520000231001"), "birth_date", "20000231", "not a real date"),
    (with_check("11010520261121001"), "future_birth_date", "晚于今天", "later than today"),
    (PUBLISHED_EXAMPLE[:17], "length", "18位", "18 characters"),
]


class TestInvalidInput:
    @pytest.mark.parametrize(("number", "reason", "zh", "en"), INVALID_IDS)
    async def test_an_invalid_resident_id_is_refused_with_a_readable_sentence(
        self,
        client: httpx.AsyncClient,
        ctx: AppContext,
        world: World,
        number: str,
        reason: str,
        zh: str,
        en: str,
    ) -> None:
        before = await row_counts(ctx.db)
        chinese = assert_problem(
            await register(client, world, id_number=number), 422, "invalid_id_number"
        )
        assert chinese["reason"] == reason
        assert chinese["detail"].startswith("证件号码有误：") and zh in chinese["detail"]
        assert "id_reason." not in chinese["detail"] and "{" not in chinese["detail"]
        english = assert_problem(
            await register(
                client, world, id_number=number, headers={"Accept-Language": "en-GB,en;q=0.9"}
            ),
            422,
            "invalid_id_number",
        )
        assert english["detail"].startswith("The ID number is not valid:")
        assert en in english["detail"]
        assert english["title"] == "Invalid ID number"
        assert await row_counts(ctx.db) == before

    @pytest.mark.parametrize(
        "phone", ["12345678901", "1391234567", "139123456789", "手机", "+1 415 555 0100"]
    )
    async def test_an_invalid_phone_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, phone: str
    ) -> None:
        before = await row_counts(ctx.db)
        body = assert_problem(await register(client, world, phone=phone), 422, "invalid_phone")
        assert "11位" in body["detail"]
        assert await row_counts(ctx.db) == before

    async def test_an_invalid_account_phone_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await register(client, world, account_phone="10086")
        assert_problem(response, 422, "invalid_phone")
        assert await row_counts(ctx.db) == before

    @pytest.mark.parametrize("name", ["张3", "Alice2", "王@明", "   ", "·"])
    async def test_an_invalid_name_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, name: str
    ) -> None:
        before = await row_counts(ctx.db)
        assert_problem(await register(client, world, name=name), 422, "invalid_name")
        assert await row_counts(ctx.db) == before

    async def test_an_unknown_document_type_is_a_validation_error(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        body = assert_problem(
            await register(client, world, id_type="driving_licence"), 422, "validation_error"
        )
        assert [e["field"] for e in body["errors"]] == ["id_type"]
        assert await row_counts(ctx.db) == before


class TestAccountLimit:
    async def test_an_account_holding_five_patients_refuses_a_sixth(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        holder = "13700001111"
        accounts = set()
        for _ in range(5):
            response = await register(
                client, world, id_number=f.resident_id(), phone=f.phone(), account_phone=holder
            )
            assert response.status_code == 201, response.text
            accounts.add(response.json()["account_id"])
        assert len(accounts) == 1
        before = await row_counts(ctx.db)
        sixth = await register(
            client, world, id_number=f.resident_id(), phone=f.phone(), account_phone=holder
        )
        body = assert_problem(sixth, 409, "account_patient_limit")
        assert "5" in body["detail"]
        assert await row_counts(ctx.db) == before

    async def test_the_account_phone_defaults_to_the_patients_phone(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        first = (await register(client, world)).json()
        second = (
            await register(client, world, name="张大明", id_number=f.resident_id(), phone=PHONE)
        ).json()
        third = (
            await register(
                client,
                world,
                name="张小明",
                id_number=f.resident_id(),
                phone=f.phone(),
                account_phone="+86 139-1234-5678",
            )
        ).json()
        assert first["account_id"] == second["account_id"] == third["account_id"]


class TestRead:
    async def test_a_patient_reads_back_masked(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        created = (await register(client, world)).json()
        response = await client.get(f"/api/v1/patients/{created['id']}", headers=world.auth)
        assert response.status_code == 200, response.text
        assert response.json() == created
        assert response.json()["id_number"] == "1101**********002X"
        assert response.json()["phone"] == "139****5678"

    async def test_an_unknown_patient_is_not_found(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.get(f"/api/v1/patients/{uuid.uuid4()}", headers=world.auth)
        body = assert_problem(response, 404, "not_found")
        assert "就诊人" in body["detail"]
        assert await row_counts(ctx.db) == before

    async def test_a_patient_of_another_hospital_is_not_found(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            elsewhere = await f.make_hospital(s, now=NOW)
            key = await f.make_api_key(s, hospital=elsewhere, now=NOW)
        before = await row_counts(ctx.db)
        response = await client.get(
            f"/api/v1/patients/{world.patient.id}", headers={"Authorization": f"Bearer {key}"}
        )
        assert_problem(response, 404, "not_found")
        response = await client.get(
            f"/api/v1/patients/{world.patient.id}/appointments",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert_problem(response, 404, "not_found")
        assert await row_counts(ctx.db) == before

    async def test_the_appointments_of_a_patient_are_listed(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        url = f"/api/v1/patients/{world.patient.id}/appointments"
        empty = await client.get(url, headers=world.auth)
        assert empty.status_code == 200 and empty.json() == []
        booked = await book(client, world, world.patient.id)
        assert booked.status_code == 201, booked.text
        listed = await client.get(url, headers=world.auth)
        assert listed.status_code == 200, listed.text
        assert [a["id"] for a in listed.json()] == [booked.json()["id"]]
        assert listed.json()[0]["patient_id"] == str(world.patient.id)
        assert listed.json()[0]["session"]["id"] == str(world.session.id)
        other = await client.get(
            f"/api/v1/patients/{world.other_patient.id}/appointments", headers=world.auth
        )
        assert other.json() == []

    async def test_the_appointments_of_an_unknown_patient_are_not_found(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.get(
            f"/api/v1/patients/{uuid.uuid4()}/appointments", headers=world.auth
        )
        assert_problem(response, 404, "not_found")
        assert await row_counts(ctx.db) == before


class TestConcurrentRegistration:
    async def test_the_same_person_registered_twice_at_once_is_stored_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        responses = await asyncio.gather(
            *(register(client, world, phone=f.phone()) for _ in range(4))
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 409, 409, 409], [r.text for r in responses]
        for refused in (r for r in responses if r.status_code == 409):
            assert_problem(refused, 409, "patient_already_registered")
        after = await row_counts(ctx.db)
        assert after["patient"] == before["patient"] + 1

    async def test_a_new_account_created_by_a_concurrent_registration_is_shared(
        self,
        client: httpx.AsyncClient,
        ctx: AppContext,
        world: World,
        backend: str,
        request: pytest.FixtureRequest,
    ) -> None:
        """Two family members registered at the same moment under a holder phone that has no
        account yet: the second must join the account the first creates, not fail."""
        holder = "13700002222"
        async with ctx.db.session_scope() as s:
            first = await patient_service.register_patient(
                s,
                hospital_id=world.hospital.id,
                cipher=ctx.cipher,
                name="张一",
                id_type=IdType.RESIDENT_ID,
                id_number=f.resident_id(),
                phone=f.phone(),
                account_phone=holder,
                birth_date=None,
                sex=None,
                account_patients_max=5,
                today=NOW.date(),
                now=NOW,
            )
            second = asyncio.create_task(
                register(
                    client,
                    world,
                    name="张二",
                    id_number=f.resident_id(),
                    phone=f.phone(),
                    account_phone=holder,
                )
            )
            await wait_until_blocked(ctx, backend)
            assert not second.done()
        response = await second
        assert response.status_code == 201, response.text
        assert response.json()["account_id"] == str(first.account_id)


async def wait_until_blocked(ctx: AppContext, backend: str) -> None:
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
                    "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO account%'"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the concurrent registration never reached its INSERT")
