"""Approvals (审批): staff changes to a confirmed booking wait for a supervisor, take effect on
approval, are refused (changing nothing) when they can no longer be made, and never
approved by the one who asked."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.helpers import assert_problem, row_counts, staff_auth
from yuyue.booking import rules
from yuyue.booking.models import Appointment, ChangeRequest
from yuyue.booking.rules import RequestState
from yuyue.kit.clock import FixedClock
from yuyue.notifications.models import OutboxMessage
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext

LATE = timedelta(days=2, hours=6)  # past the patients' deadline (15:00 the day before)


class TestRules:
    def test_only_a_pending_request_is_decided(self) -> None:
        rules.check_request_state(RequestState.PENDING, "approve")
        for state in (RequestState.APPROVED, RequestState.REJECTED, RequestState.WITHDRAWN):
            with pytest.raises(rules.InvalidTransition):
                rules.check_request_state(state, "approve")

    def test_who_asked_does_not_decide(self) -> None:
        with pytest.raises(rules.OwnRequest):
            rules.check_four_eyes(requested_by_id="u1", deciding_id="u1")
        rules.check_four_eyes(requested_by_id="u1", deciding_id="u2")

    @pytest.mark.parametrize("reason", ["", " ", "x", "长" * 501])
    def test_a_reason_is_required(self, reason: str) -> None:
        with pytest.raises(rules.InvalidReason):
            rules.check_request_reason(reason)

    def test_only_a_confirmed_booking_needs_approval_to_change(self) -> None:
        assert rules.staff_change_needs_approval(rules.S.BOOKED)
        assert not rules.staff_change_needs_approval(rules.S.HELD)


async def book(client: httpx.AsyncClient, world: World, patient: Any = None) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/appointments",
        json={
            "patient_id": str((patient or world.patient).id),
            "session_id": str(world.session.id),
        },
        headers=world.auth,
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def ask(
    client: httpx.AsyncClient, appointment_id: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v1/appointments/{appointment_id}/change-requests",
        json={"kind": "cancel_late", "reason": "患者突发高烧住院", **body},
        headers=headers,
    )


async def appointment(ctx: AppContext, appointment_id: str | uuid.UUID) -> Appointment:
    async with ctx.db.read() as s:
        found = await s.get(Appointment, uuid.UUID(str(appointment_id)))
    assert found is not None
    return found


async def kinds_queued(ctx: AppContext) -> list[str]:
    async with ctx.db.read() as s:
        return sorted((await s.scalars(select(OutboxMessage.kind))).all())


class TestCancelLate:
    async def test_a_late_cancel_takes_effect_when_a_supervisor_approves(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        booked = await book(client, world)
        clock.advance(LATE)
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        asked = await ask(client, booked["id"], registrar)
        assert asked.status_code == 201, asked.text
        request = asked.json()
        assert request["state"] == "pending" and request["kind"] == "cancel_late"
        assert (await appointment(ctx, booked["id"])).status == "booked"  # not yet

        supervisor = await staff_auth(client, ctx, world, Role.SUPERVISOR)
        listed = await client.get("/api/v1/change-requests?state=pending", headers=supervisor)
        assert [r["id"] for r in listed.json()] == [request["id"]]
        approved = await client.post(
            f"/api/v1/change-requests/{request['id']}/approve",
            json={"note": "已核实住院证明"},
            headers=supervisor,
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "approved"
        cancelled = await appointment(ctx, booked["id"])
        assert cancelled.status == "cancelled" and cancelled.cancel_reason == "staff"
        assert cancelled.cancel_note == "患者突发高烧住院"
        assert "cancelled" in await kinds_queued(ctx)  # the patient is told
        async with ctx.db.read() as s:
            actions = sorted(
                (
                    await s.scalars(
                        select(AuditEntry.action).where(AuditEntry.entity_type == "change_request")
                    )
                ).all()
            )
        assert actions == ["change_request.approved", "change_request.created"]

    async def test_a_rejected_request_changes_nothing_and_needs_a_note(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        booked = await book(client, world)
        clock.advance(LATE)
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        request = (await ask(client, booked["id"], registrar)).json()
        supervisor = await staff_auth(client, ctx, world, Role.SUPERVISOR)
        url = f"/api/v1/change-requests/{request['id']}"
        before = await row_counts(ctx.db)
        assert_problem(
            await client.post(f"{url}/reject", json={}, headers=supervisor),
            422,
            "validation_error",
        )
        assert await row_counts(ctx.db) == before
        rejected = await client.post(
            f"{url}/reject", json={"note": "无证明材料"}, headers=supervisor
        )
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["state"] == "rejected"
        assert rejected.json()["decision_note"] == "无证明材料"
        assert (await appointment(ctx, booked["id"])).status == "booked"
        # Decided once.
        assert_problem(
            await client.post(f"{url}/approve", json={}, headers=supervisor), 409, "invalid_state"
        )

    async def test_who_asked_cannot_approve_it_even_holding_both_roles(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        booked = await book(client, world)
        clock.advance(LATE)
        both = await staff_auth(client, ctx, world, Role.REGISTRAR, Role.SUPERVISOR)
        request = (await ask(client, booked["id"], both)).json()
        before = await row_counts(ctx.db)
        refused = await client.post(
            f"/api/v1/change-requests/{request['id']}/approve", json={}, headers=both
        )
        assert_problem(refused, 403, "own_request")
        assert await row_counts(ctx.db) == before

    async def test_only_supervisors_decide_and_only_staff_ask(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        booked = await book(client, world)
        clock.advance(LATE)
        finance = await staff_auth(client, ctx, world, Role.FINANCE)
        before = await row_counts(ctx.db)
        assert_problem(await ask(client, booked["id"], world.auth), 403, "forbidden")
        assert_problem(await ask(client, booked["id"], finance), 403, "forbidden")
        assert await row_counts(ctx.db) == before
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        request = (await ask(client, booked["id"], registrar)).json()
        other_registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        before = await row_counts(ctx.db)
        assert_problem(
            await client.post(
                f"/api/v1/change-requests/{request['id']}/approve",
                json={},
                headers=other_registrar,
            ),
            403,
            "forbidden",
        )
        assert await row_counts(ctx.db) == before

    async def test_one_pending_request_per_booking_and_it_can_be_withdrawn(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        booked = await book(client, world)
        clock.advance(LATE)
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        first = (await ask(client, booked["id"], registrar)).json()
        assert_problem(await ask(client, booked["id"], registrar), 409, "request_pending")
        other = await staff_auth(client, ctx, world, Role.REGISTRAR)
        assert_problem(
            await client.post(f"/api/v1/change-requests/{first['id']}/withdraw", headers=other),
            409,
            "invalid_state",
        )
        withdrawn = await client.post(
            f"/api/v1/change-requests/{first['id']}/withdraw", headers=registrar
        )
        assert withdrawn.json()["state"] == "withdrawn"
        assert (await ask(client, booked["id"], registrar)).status_code == 201

    async def test_bad_requests_are_refused_and_change_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        booked = await book(client, world)
        clock.advance(LATE)
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        before = await row_counts(ctx.db)
        for bad in ({"reason": " "}, {"kind": "move"}, {"kind": "change_patient"}):
            assert_problem(
                await ask(client, booked["id"], registrar, **bad), 422, "validation_error"
            )
        assert_problem(
            await ask(client, booked["id"], registrar, kind="steal"), 422, "validation_error"
        )
        assert_problem(await ask(client, str(uuid.uuid4()), registrar), 404, "not_found")
        assert_problem(
            await ask(client, booked["id"], registrar, kind="move", session_id=str(uuid.uuid4())),
            404,
            "not_found",
        )
        assert await row_counts(ctx.db) == before


async def colleague_session(ctx: AppContext, world: World, capacity: int = 5) -> Any:
    async with ctx.db.session_scope() as s:
        doctor = await f.make_doctor(
            s, hospital=world.hospital, department=world.department, level=world.free_level
        )
        return await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.free_level,
            doctor=doctor,
            day=VISIT_DAY + timedelta(days=1),
            capacity=capacity,
            now=NOW,
        )


class TestMove:
    async def test_staff_moving_a_confirmed_booking_asks_first(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        target = await colleague_session(ctx, world)
        booked = await book(client, world)
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        before = await row_counts(ctx.db)
        direct = await client.post(
            f"/api/v1/appointments/{booked['id']}/reschedule",
            json={"session_id": str(target.id)},
            headers=registrar,
        )
        assert assert_problem(direct, 409, "approval_required")["change"] == "move"
        assert await row_counts(ctx.db) == before

        request = (
            await ask(client, booked["id"], registrar, kind="move", session_id=str(target.id))
        ).json()
        supervisor = await staff_auth(client, ctx, world, Role.SUPERVISOR)
        approved = await client.post(
            f"/api/v1/change-requests/{request['id']}/approve", json={}, headers=supervisor
        )
        assert approved.status_code == 200, approved.text
        moved = await appointment(ctx, approved.json()["outcome"]["appointment_id"])
        assert moved.session_id == target.id and moved.status == "booked"
        assert (await appointment(ctx, booked["id"])).status == "cancelled"
        assert "rescheduled" in await kinds_queued(ctx)

    async def test_an_approval_that_can_no_longer_be_made_changes_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        target = await colleague_session(ctx, world, capacity=1)
        booked = await book(client, world)
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        request = (
            await ask(client, booked["id"], registrar, kind="move", session_id=str(target.id))
        ).json()
        # The target's last place goes to someone else meanwhile.
        taken = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(world.other_patient.id), "session_id": str(target.id)},
            headers=world.auth,
        )
        assert taken.status_code == 201, taken.text
        supervisor = await staff_auth(client, ctx, world, Role.SUPERVISOR)
        before = await row_counts(ctx.db)
        refused = await client.post(
            f"/api/v1/change-requests/{request['id']}/approve", json={}, headers=supervisor
        )
        assert refused.status_code == 409, refused.text
        assert await row_counts(ctx.db) == before
        async with ctx.db.read() as s:
            still = await s.get(ChangeRequest, uuid.UUID(request["id"]))
        assert still is not None and still.state == "pending"
        assert (await appointment(ctx, booked["id"])).status == "booked"


class TestChangePatient:
    async def test_the_booking_becomes_the_other_patients_and_both_are_told(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        booked = await book(client, world)
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        request = (
            await ask(
                client,
                booked["id"],
                registrar,
                kind="change_patient",
                patient_id=str(world.other_patient.id),
                reason="家属为另一位家人预约时选错就诊人",
            )
        ).json()
        supervisor = await staff_auth(client, ctx, world, Role.SUPERVISOR)
        approved = await client.post(
            f"/api/v1/change-requests/{request['id']}/approve", json={}, headers=supervisor
        )
        assert approved.status_code == 200, approved.text
        changed = await appointment(ctx, booked["id"])
        assert changed.patient_id == world.other_patient.id
        assert changed.status == "booked"
        assert changed.sequence_number == booked["sequence_number"]
        assert changed.voucher_code != booked["voucher"]["code"]
        async with ctx.db.read() as s:
            told = {
                m.kind: m.patient_id
                for m in (
                    await s.scalars(
                        select(OutboxMessage).where(
                            OutboxMessage.kind.in_(["patient_changed", "booking_transferred"])
                        )
                    )
                ).all()
            }
        assert told == {
            "patient_changed": world.other_patient.id,
            "booking_transferred": world.patient.id,
        }

    async def test_a_patient_already_in_the_session_cannot_take_it(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        booked = await book(client, world)
        await book(client, world, patient=world.other_patient)
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        request = (
            await ask(
                client,
                booked["id"],
                registrar,
                kind="change_patient",
                patient_id=str(world.other_patient.id),
            )
        ).json()
        supervisor = await staff_auth(client, ctx, world, Role.SUPERVISOR)
        before = await row_counts(ctx.db)
        refused = await client.post(
            f"/api/v1/change-requests/{request['id']}/approve", json={}, headers=supervisor
        )
        assert_problem(refused, 409, "already_booked")
        assert await row_counts(ctx.db) == before
