"""The no-show policy and appeal routes over HTTP, on SQLite and PostgreSQL: a banned
patient is refused online but booked at the window; appeals are decided by registrars,
audited and told to the patient; refusals are problem+json and change nothing."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select

from tests.attendance.conftest import sweep, visit
from tests.conftest import NOW, World
from tests.helpers import assert_problem, row_counts, staff_auth
from yuyue.attendance import service as attendance_service
from yuyue.attendance.models import AppealStatus, BlacklistAppeal
from yuyue.attendance.rules import AppealAlreadyOpen
from yuyue.booking.models import BlacklistEntry
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.models import OutboxMessage
from yuyue.scheduling.enums import Channel
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.staff.rules import Actor, ActorKind
from yuyue.web.context import AppContext


async def ban_world_patient(ctx: AppContext, world: World) -> uuid.UUID:
    for day in (date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)):
        await visit(ctx, world, day=day)
    result = await sweep(ctx, world)
    assert len(result.bans) == 1
    return result.bans[0]


async def appeal(ctx: AppContext, world: World, entry_id: uuid.UUID, text: str) -> uuid.UUID:
    actor = Actor(
        hospital_id=world.hospital.id,
        kind=ActorKind.CHANNEL,
        id=f"account:{world.patient.account_id}",
        channel=Channel.WEB,
        name="portal",
    )
    async with ctx.db.session_scope() as s:
        made = await attendance_service.submit_appeal(
            s,
            actor=actor,
            account_id=world.patient.account_id,
            entry_id=entry_id,
            text=text,
            now=NOW,
        )
        return made.id


async def book(client: httpx.AsyncClient, world: World, headers: dict[str, str]) -> httpx.Response:
    return await client.post(
        "/api/v1/appointments",
        json={"patient_id": str(world.patient.id), "session_id": str(world.session.id)},
        headers=headers,
    )


class TestPolicy:
    async def test_defaults_are_the_requirements(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        response = await client.get("/api/v1/no-show-policy", headers=world.auth)
        assert response.status_code == 200
        assert response.json() == {
            "threshold": 3,
            "window_days": 365,
            "ban_days": [180, 360],
            "grace_minutes": 30,
        }

    async def test_an_admin_sets_it_and_it_is_audited(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        headers = await staff_auth(client, ctx, world, Role.ADMIN)
        response = await client.put(
            "/api/v1/no-show-policy",
            json={"threshold": 3, "window_days": 90, "ban_days": [90, 180, 360]},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["ban_days"] == [90, 180, 360]
        again = await client.get("/api/v1/no-show-policy", headers=world.auth)
        assert again.json()["window_days"] == 90
        assert again.json()["grace_minutes"] == 30
        async with ctx.db.read() as s:
            audited = await s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "update_no_show_policy")
            )
        assert audited == 1

    @pytest.mark.parametrize(
        "body",
        [
            {"threshold": 0},
            {"window_days": 731},
            {"ban_days": [180, 90]},
            {"ban_days": []},
            {"grace_minutes": -1},
            {"limit": 3},
        ],
    )
    async def test_bad_input_is_refused_and_changes_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, body: dict[str, object]
    ) -> None:
        headers = await staff_auth(client, ctx, world, Role.ADMIN)
        before = await row_counts(ctx.db)
        response = await client.put("/api/v1/no-show-policy", json=body, headers=headers)
        assert_problem(response, 422, "validation_error")
        assert await row_counts(ctx.db) == before

    async def test_only_a_scheduler_or_an_admin_sets_it(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        before = await row_counts(ctx.db)
        for headers in (registrar, world.auth):
            response = await client.put(
                "/api/v1/no-show-policy", json={"threshold": 5}, headers=headers
            )
            assert_problem(response, 403, "forbidden")
        assert await row_counts(ctx.db) == before
        # The outpatient office sets the booking rules, and the no-show rules with them.
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
        response = await client.put(
            "/api/v1/no-show-policy", json={"threshold": 5}, headers=scheduler
        )
        assert response.status_code == 200, response.text
        assert response.json()["threshold"] == 5


class TestBannedPatients:
    async def test_refused_online_with_the_until_date_but_booked_at_the_window(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await ban_world_patient(ctx, world)
        before = await row_counts(ctx.db)
        refused = await book(client, world, world.auth)
        body = assert_problem(refused, 403, "blacklisted")
        assert "2027年5月19日 周三 10:00" in body["detail"]
        assert body["until"].startswith("2027-05-19")
        assert await row_counts(ctx.db) == before

        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        at_the_window = await book(client, world, registrar)
        assert at_the_window.status_code == 201, at_the_window.text
        assert at_the_window.json()["channel"] == "window"


class TestAppeals:
    async def test_a_second_open_appeal_is_refused(self, ctx: AppContext, world: World) -> None:
        entry_id = await ban_world_patient(ctx, world)
        await appeal(ctx, world, entry_id, "那几天在外地出差，忘记取消了。")
        before = await row_counts(ctx.db)
        with pytest.raises(AppealAlreadyOpen):
            await appeal(ctx, world, entry_id, "再申诉一次。再申诉一次。")
        assert await row_counts(ctx.db) == before

    async def test_staff_list_appeals_by_status(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        entry_id = await ban_world_patient(ctx, world)
        appeal_id = await appeal(ctx, world, entry_id, "那天急诊住院了，有病历。")
        headers = await staff_auth(client, ctx, world, Role.REGISTRAR)
        listed = await client.get("/api/v1/appeals?status=submitted", headers=headers)
        assert listed.status_code == 200
        [item] = listed.json()
        assert item["id"] == str(appeal_id)
        assert item["patient_name"] == world.patient.name
        assert item["ban"]["ends_at"].startswith("2027-05-19")
        assert "11月2日" in item["ban"]["reason"]
        none = await client.get("/api/v1/appeals?status=accepted", headers=headers)
        assert none.json() == []
        bad = await client.get("/api/v1/appeals?status=maybe", headers=headers)
        assert_problem(bad, 422, "validation_error")

    async def test_accepting_lifts_the_ban_and_online_booking_works_again(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        entry_id = await ban_world_patient(ctx, world)
        appeal_id = await appeal(ctx, world, entry_id, "那天急诊住院了，有病历。")
        headers = await staff_auth(client, ctx, world, Role.REGISTRAR)

        decided = await client.post(
            f"/api/v1/appeals/{appeal_id}/decide",
            json={"decision": "accept", "note": "已核实住院记录"},
            headers=headers,
        )

        assert decided.status_code == 200, decided.text
        body = decided.json()
        assert body["status"] == "accepted"
        assert body["ban"]["lifted_at"] is not None
        assert body["decided_by"].startswith("staff:")
        async with ctx.db.read() as s:
            entry = await s.get(BlacklistEntry, entry_id)
            told = await s.scalar(
                select(OutboxMessage).where(OutboxMessage.kind == MessageKind.APPEAL_ACCEPTED.value)
            )
            audit = await s.scalar(select(AuditEntry).where(AuditEntry.action == "accept_appeal"))
        assert entry is not None and entry.lifted_at == NOW
        assert told is not None and told.patient_id == world.patient.id
        assert audit is not None and audit.entity_id == entry_id
        booked = await book(client, world, world.auth)
        assert booked.status_code == 201, booked.text

        twice = await client.post(
            f"/api/v1/appeals/{appeal_id}/decide",
            json={"decision": "reject", "note": "x"},
            headers=headers,
        )
        assert_problem(twice, 409, "invalid_state")

    async def test_rejecting_keeps_the_ban_and_needs_a_reason(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        entry_id = await ban_world_patient(ctx, world)
        appeal_id = await appeal(ctx, world, entry_id, "我觉得不应该被暂停。")
        headers = await staff_auth(client, ctx, world, Role.REGISTRAR)
        before = await row_counts(ctx.db)
        silent = await client.post(
            f"/api/v1/appeals/{appeal_id}/decide", json={"decision": "reject"}, headers=headers
        )
        assert_problem(silent, 422, "decision_note_required")
        unknown = await client.post(
            f"/api/v1/appeals/{appeal_id}/decide", json={"decision": "maybe"}, headers=headers
        )
        assert_problem(unknown, 422, "validation_error")
        assert await row_counts(ctx.db) == before

        rejected = await client.post(
            f"/api/v1/appeals/{appeal_id}/decide",
            json={"decision": "reject", "note": "未提供就医证明"},
            headers=headers,
        )

        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["status"] == "rejected"
        assert rejected.json()["ban"]["lifted_at"] is None
        async with ctx.db.read() as s:
            told = await s.scalar(
                select(OutboxMessage).where(OutboxMessage.kind == MessageKind.APPEAL_REJECTED.value)
            )
        assert told is not None and told.payload["note"] == "未提供就医证明"
        assert_problem(await book(client, world, world.auth), 403, "blacklisted")

    async def test_only_registrars_and_admins_see_and_decide(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        entry_id = await ban_world_patient(ctx, world)
        appeal_id = await appeal(ctx, world, entry_id, "那天急诊住院了，有病历。")
        nurse = await staff_auth(client, ctx, world, Role.NURSE)
        before = await row_counts(ctx.db)
        for headers in (nurse, world.auth):
            assert_problem(await client.get("/api/v1/appeals", headers=headers), 403, "forbidden")
            decided = await client.post(
                f"/api/v1/appeals/{appeal_id}/decide", json={"decision": "accept"}, headers=headers
            )
            assert_problem(decided, 403, "forbidden")
        assert_problem(await client.get("/api/v1/appeals"), 401, "unauthorized")
        assert await row_counts(ctx.db) == before

        admin = await staff_auth(client, ctx, world, Role.ADMIN)
        unknown = await client.post(
            f"/api/v1/appeals/{uuid.uuid4()}/decide", json={"decision": "accept"}, headers=admin
        )
        assert_problem(unknown, 404, "not_found")
        accepted = await client.post(
            f"/api/v1/appeals/{appeal_id}/decide", json={"decision": "accept"}, headers=admin
        )
        assert accepted.status_code == 200
        async with ctx.db.read() as s:
            appeal_row = await s.get(BlacklistAppeal, appeal_id)
        assert appeal_row is not None and appeal_row.status == AppealStatus.ACCEPTED
