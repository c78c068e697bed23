"""Who may read a patient named by id, and the reads that are logged, on SQLite and
PostgreSQL: staff read any patient of the hospital and each read leaves a `read.` audit
entry; a channel key reads only the patients its channel registered (or registered again
with the same name and document number); a kiosk key reads none. Refused callers get the
same `not_found` as for a patient that does not exist. Unmasking shows a full identity
number or phone once, to registrars and administrators, with a reason; refused, it shows
and changes nothing; shown, it is logged without the number."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW, World
from tests.helpers import assert_problem, row_counts, staff_auth
from yuyue.kit.errors import NotFound
from yuyue.patients import service
from yuyue.patients.models import PatientChannel
from yuyue.scheduling.enums import Channel
from yuyue.staff.enums import Role
from yuyue.staff.errors import UnmaskReasonRequired
from yuyue.staff.models import AuditEntry
from yuyue.staff.rules import Actor, ActorKind
from yuyue.staff.service import ReadSource
from yuyue.web.context import AppContext

NAME = "王小红"
SOURCE = ReadSource(route="test", address="10.0.0.1")


async def key_of(ctx: AppContext, world: World, channel: Channel) -> dict[str, str]:
    async with ctx.db.session_scope() as s:
        key = await f.make_api_key(s, hospital=world.hospital, channel=channel, now=NOW)
    return {"Authorization": f"Bearer {key}"}


async def register(
    client: httpx.AsyncClient, headers: dict[str, str], number: str, *, name: str = NAME
) -> httpx.Response:
    return await client.post(
        "/api/v1/patients",
        json={"name": name, "id_type": "resident_id", "id_number": number, "phone": f.phone()},
        headers=headers,
    )


async def reads(ctx: AppContext, action: str = "") -> list[AuditEntry]:
    async with ctx.db.read() as s:
        query = select(AuditEntry).where(AuditEntry.action.like("read.%"))
        if action:
            query = query.where(AuditEntry.action == action)
        return list(await s.scalars(query.order_by(AuditEntry.at, AuditEntry.id)))


async def every_read(
    client: httpx.AsyncClient, headers: dict[str, str], patient_id: Any
) -> list[httpx.Response]:
    """Every way a caller reads a patient it names by id."""
    return [
        await client.get(f"/api/v1/patients/{patient_id}", headers=headers),
        await client.get(f"/api/v1/patients/{patient_id}/appointments", headers=headers),
        await client.get(
            "/api/v1/waitlist", params={"patient_id": str(patient_id)}, headers=headers
        ),
        await client.post(
            "/api/v1/guidance",
            json={"text": "头痛", "patient_id": str(patient_id)},
            headers=headers,
        ),
    ]


def channel_actor(world: World, channel: Channel) -> Actor:
    return Actor(hospital_id=world.hospital.id, kind=ActorKind.CHANNEL, id="k", channel=channel)


class TestChannelKeys:
    async def test_the_registering_channel_reads_its_patient_and_another_channel_does_not(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        created = await register(client, world.auth, f.resident_id())
        assert created.status_code == 201, created.text
        patient_id = created.json()["id"]
        for answer in await every_read(client, world.auth, patient_id):
            assert answer.status_code == 200, answer.text

        wechat = await key_of(ctx, world, Channel.WECHAT)
        before = await row_counts(ctx.db)
        unknown = await client.get(f"/api/v1/patients/{uuid.uuid4()}", headers=wechat)
        for answer in await every_read(client, wechat, patient_id):
            body = assert_problem(answer, 404, "not_found")
            # Told exactly what an unknown id is told: existence is not revealed.
            assert body["detail"] == unknown.json()["detail"]
        assert await row_counts(ctx.db) == before
        # Channel reads are the patient's own use of a partner's app: not logged as staff's.
        assert await reads(ctx) == []

    async def test_registering_the_same_person_again_lets_the_channel_read_them(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        number = f.resident_id()
        patient_id = (await register(client, world.auth, number)).json()["id"]
        alipay = await key_of(ctx, world, Channel.ALIPAY)

        # Another name with the number is not the same person: no id, still not readable.
        impostor = await register(client, alipay, number, name="李四")
        body = assert_problem(impostor, 409, "patient_already_registered")
        assert "patient_id" not in body
        assert_problem(
            await client.get(f"/api/v1/patients/{patient_id}", headers=alipay), 404, "not_found"
        )

        again = await register(client, alipay, number)
        assert assert_problem(again, 409, "patient_already_registered")["patient_id"] == patient_id
        read = await client.get(f"/api/v1/patients/{patient_id}", headers=alipay)
        assert read.status_code == 200, read.text
        assert read.json()["id_number"] != number and "*" in read.json()["id_number"]
        async with ctx.db.read() as s:
            known = (await s.scalars(select(PatientChannel.channel))).all()
        assert sorted(known) == ["alipay", "app", "app", "app"]  # world's two, this one

    async def test_a_kiosk_key_reads_no_patient_by_id_even_one_it_registered(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        kiosk = await key_of(ctx, world, Channel.KIOSK)
        created = await register(client, kiosk, f.resident_id())
        assert created.status_code == 201, created.text
        before = await row_counts(ctx.db)
        for patient_id in (created.json()["id"], world.patient.id):
            for answer in await every_read(client, kiosk, patient_id):
                assert_problem(answer, 404, "not_found")
        assert await row_counts(ctx.db) == before

    async def test_the_rule_holds_in_the_service_whoever_calls_it(
        self, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.read() as s:
            read = await service.readable_patient(
                s, actor=channel_actor(world, Channel.APP), patient_id=world.patient.id
            )
            assert read.id == world.patient.id
            for channel in (Channel.WECHAT, Channel.PHONE, Channel.KIOSK, Channel.WINDOW):
                with pytest.raises(NotFound):
                    await service.readable_patient(
                        s, actor=channel_actor(world, channel), patient_id=world.patient.id
                    )
            elsewhere = Actor(
                hospital_id=uuid.uuid4(), kind=ActorKind.CHANNEL, id="k", channel=Channel.APP
            )
            with pytest.raises(NotFound):
                await service.readable_patient(s, actor=elsewhere, patient_id=world.patient.id)


class TestStaffReads:
    async def test_each_staff_read_is_logged_with_roles_route_and_address(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        nurse = await staff_auth(client, ctx, world, Role.NURSE)
        answers = await every_read(client, nurse, world.patient.id)
        assert [a.status_code for a in answers[:3]] == [200, 200, 200]
        logged = await reads(ctx, "read.record")
        assert [e.after["read"] for e in logged if e.after] == ["profile", "visits", "waitlist"]
        first = logged[0]
        assert first.entity_type == "patient" and first.entity_id == world.patient.id
        assert first.actor.startswith("staff:")
        assert first.after == {
            "read": "profile",
            "roles": ["nurse"],
            "route": "GET /api/v1/patients/{patient_id}",
            "address": "127.0.0.1",
        }

    async def test_an_unknown_patient_is_not_found_and_nothing_is_logged(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        nurse = await staff_auth(client, ctx, world, Role.NURSE)
        before = await row_counts(ctx.db)
        for answer in (await every_read(client, nurse, uuid.uuid4()))[:3]:
            assert_problem(answer, 404, "not_found")
        assert await row_counts(ctx.db) == before


class TestUnmask:
    async def test_a_registrar_sees_the_full_number_once_and_it_is_logged_without_it(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        number = ctx.cipher.decrypt(world.patient.id_cipher)
        phone = ctx.cipher.decrypt(world.patient.phone_cipher)
        # The reason quotes the number: it is kept masked.
        shown = await client.post(
            f"/api/v1/patients/{world.patient.id}/unmask",
            json={"field": "id_number", "reason": f"核对证件 {number}"},
            headers=registrar,
        )
        assert shown.status_code == 200, shown.text
        assert shown.json() == {
            "patient_id": str(world.patient.id),
            "field": "id_number",
            "value": number,
        }
        assert shown.headers["cache-control"] == "no-store"
        by_phone = await client.post(
            f"/api/v1/patients/{world.patient.id}/unmask",
            json={"field": "phone", "reason": "需要联系患者"},
            headers=registrar,
        )
        assert by_phone.json()["value"] == phone
        logged = await reads(ctx, "read.unmask")
        assert [(e.entity_id, e.after["field"]) for e in logged if e.after] == [
            (world.patient.id, "id_number"),
            (world.patient.id, "phone"),
        ]
        assert logged[0].after is not None
        assert logged[0].after["reason"] == f"核对证件 {world.patient.id_masked}"
        assert logged[0].after["route"] == "POST /api/v1/patients/{patient_id}/unmask"
        async with ctx.db.read() as s:
            stored = repr(
                [(e.actor, e.before, e.after) for e in await s.scalars(select(AuditEntry))]
            )
        assert number not in stored and phone not in stored

    async def test_an_administrator_may_unmask(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await staff_auth(client, ctx, world, Role.ADMIN)
        shown = await client.post(
            f"/api/v1/patients/{world.patient.id}/unmask",
            json={"field": "phone", "reason": "核对"},
            headers=admin,
        )
        assert shown.status_code == 200, shown.text

    @pytest.mark.parametrize("reason", ["", "   ", "x"])
    async def test_without_a_reason_nothing_is_shown_and_nothing_logged(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, reason: str
    ) -> None:
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        number = ctx.cipher.decrypt(world.patient.id_cipher)
        before = await row_counts(ctx.db)
        refused = await client.post(
            f"/api/v1/patients/{world.patient.id}/unmask",
            json={"field": "id_number", "reason": reason},
            headers=registrar,
        )
        assert_problem(refused, 422, "unmask_reason_required")
        assert number not in refused.text
        assert await row_counts(ctx.db) == before

    @pytest.mark.parametrize("role", [Role.NURSE, Role.DOCTOR, Role.FINANCE, Role.SCHEDULER])
    async def test_other_roles_and_keys_are_refused_and_nothing_changes(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, role: Role
    ) -> None:
        headers = await staff_auth(client, ctx, world, role)
        kiosk = await key_of(ctx, world, Channel.KIOSK)
        before = await row_counts(ctx.db)
        for caller in (headers, world.auth, kiosk):
            refused = await client.post(
                f"/api/v1/patients/{world.patient.id}/unmask",
                json={"field": "id_number", "reason": "核对证件"},
                headers=caller,
            )
            assert_problem(refused, 403, "forbidden")
        assert await row_counts(ctx.db) == before

    async def test_the_service_refuses_before_reading_anything(
        self, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            registrar = Actor(
                hospital_id=world.hospital.id,
                kind=ActorKind.STAFF,
                id="r",
                channel=Channel.WINDOW,
                roles=frozenset({Role.REGISTRAR}),
            )
            with pytest.raises(UnmaskReasonRequired):
                await service.unmask(
                    s,
                    actor=registrar,
                    cipher=ctx.cipher,
                    patient_id=uuid.uuid4(),  # not even looked up
                    field=service.rules.UnmaskField.PHONE,
                    reason=" ",
                    source=SOURCE,
                    now=NOW,
                )
            with pytest.raises(NotFound):
                await service.unmask(
                    s,
                    actor=registrar,
                    cipher=ctx.cipher,
                    patient_id=uuid.uuid4(),
                    field=service.rules.UnmaskField.PHONE,
                    reason="核对证件",
                    source=SOURCE,
                    now=NOW,
                )
