"""The visit-day JSON API: kiosk check-in, refusals as problem+json, permissions, calling."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select

from tests import factories as f
from tests.conftest import NOW, World
from tests.helpers import assert_problem, row_counts, staff_auth
from tests.visits import support as v
from yuyue.booking import service as booking_service
from yuyue.kit.clock import FixedClock
from yuyue.patients import service as patient_service
from yuyue.patients.models import Patient
from yuyue.patients.rules import IdType
from yuyue.scheduling.enums import Channel
from yuyue.staff.enums import Role
from yuyue.visits.events import QueueEvent
from yuyue.visits.models import CheckInFailure
from yuyue.web.context import AppContext


async def kiosk_auth(ctx: AppContext, world: World) -> dict[str, str]:
    async with ctx.db.session_scope() as s:
        key = await f.make_api_key(s, hospital=world.hospital, channel=Channel.KIOSK, now=NOW)
    return {"Authorization": f"Bearer {key}"}


class TestCheckInApi:
    async def test_kiosk_scan_then_second_scan_and_an_event_after_commit(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        seen: list[QueueEvent] = []

        async def listen(event: QueueEvent) -> None:
            seen.append(event)

        ctx.queue_events.subscribe(listen) if hasattr(ctx, "queue_events") else None
        appointment = await v.book(ctx, world)
        auth = await kiosk_auth(ctx, world)
        clock.set(v.local(7, 30))
        token = v.token(ctx, appointment)
        first = await client.post("/api/v1/check-ins", json={"token": token}, headers=auth)
        assert first.status_code == 201, first.text
        ticket = first.json()["ticket"]
        assert first.json()["already_checked_in"] is False
        assert (ticket["queue_number"], ticket["people_ahead"]) == (appointment.sequence_number, 0)
        again = await client.post("/api/v1/check-ins", json={"token": token}, headers=auth)
        assert again.status_code == 200
        assert again.json() == {"already_checked_in": True, "ticket": ticket}
        if hasattr(ctx, "queue_events"):
            assert [e.kind.value for e in seen] == ["checked_in"]

    async def test_forged_voucher_is_refused_with_a_sentence_and_changes_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        appointment = await v.book(ctx, world)
        auth = await kiosk_auth(ctx, world)
        clock.set(v.local(7, 30))
        body, _, mac = v.token(ctx, appointment).partition(".")
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/check-ins",
            json={"token": body + "x." + mac},
            headers={**auth, "Accept-Language": "en"},
        )
        problem = assert_problem(response, 422, "voucher_invalid")
        assert "triage desk" in problem["detail"]
        clock.set(v.local(6, 0))
        early = await client.post(
            "/api/v1/check-ins", json={"token": v.token(ctx, appointment)}, headers=auth
        )
        assert "07:00" in assert_problem(early, 409, "check_in_too_early")["detail"]
        assert await row_counts(ctx.db) == before

    async def test_wrong_short_codes_are_counted_and_then_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        appointment = await v.book(ctx, world)
        auth = await kiosk_auth(ctx, world)
        clock.set(v.local(7, 30))
        wrong = {"code": appointment.voucher_code, "phone_last4": "0000"}
        for _ in range(5):
            response = await client.post("/api/v1/check-ins", json=wrong, headers=auth)
            assert_problem(response, 422, "voucher_invalid")
        clock.set(v.local(7, 31))
        locked = await client.post("/api/v1/check-ins", json=wrong, headers=auth)
        assert assert_problem(locked, 429, "code_locked")["retry_after"] > 0
        async with ctx.db.read() as s:
            count = await s.scalar(select(func.count()).select_from(CheckInFailure))
        assert count == 5

    async def test_wrong_codes_slow_the_kiosk_but_the_next_patient_still_checks_in(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        appointment = await v.book(ctx, world)
        auth = await kiosk_auth(ctx, world)
        clock.set(v.local(7, 30))
        for guess in range(6):
            wrong = {"code": f"{10000000 + guess}", "phone_last4": "0000"}
            response = await client.post("/api/v1/check-ins", json=wrong, headers=auth)
            if response.status_code == 429:
                break
            assert_problem(response, 422, "voucher_invalid")
        slowed = assert_problem(response, 429, "too_many_attempts")
        assert 1 <= slowed["retry_after"] <= 2
        before = await row_counts(ctx.db)
        async with ctx.db.read() as s:
            masked = await s.scalar(
                select(Patient.phone_masked).where(Patient.id == appointment.patient_id)
            )
        assert masked is not None
        right = {"code": appointment.voucher_code, "phone_last4": masked[-4:]}
        refused = await client.post("/api/v1/check-ins", json=right, headers=auth)
        assert_problem(refused, 429, "too_many_attempts")
        assert await row_counts(ctx.db) == before
        clock.set(v.local(7, 30) + timedelta(seconds=slowed["retry_after"]))
        checked = await client.post("/api/v1/check-ins", json=right, headers=auth)
        assert checked.status_code == 201, checked.text

    async def test_an_app_key_may_not_check_in_nor_call(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        appointment = await v.book(ctx, world)
        clock.set(v.local(7, 30))
        response = await client.post(
            "/api/v1/check-ins", json={"token": v.token(ctx, appointment)}, headers=world.auth
        )
        assert_problem(response, 403, "forbidden")
        response = await client.post(
            f"/api/v1/sessions/{world.session.id}/call-next", headers=world.auth
        )
        assert_problem(response, 403, "forbidden")

    async def test_bad_input_is_a_validation_problem(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await kiosk_auth(ctx, world)
        response = await client.post("/api/v1/check-ins", json={"code": "123"}, headers=auth)
        assert_problem(response, 422, "validation_error")


async def book_known(ctx: AppContext, world: World) -> tuple[str, str]:
    """A patient with an identity and a phone number the test knows, booked for the visit
    day; returns the two numbers."""
    id_number, phone = f.resident_id(), f.phone()
    async with ctx.db.session_scope() as s:
        patient = await patient_service.register_patient(
            s,
            hospital_id=world.hospital.id,
            cipher=ctx.cipher,
            name="周九",
            id_type=IdType.RESIDENT_ID,
            id_number=id_number,
            phone=phone,
            account_phone=None,
            birth_date=None,
            sex=None,
            account_patients_max=5,
            today=NOW.date(),
            now=NOW,
        )
        await booking_service.book(
            s,
            actor=v.app_actor(world),
            patient_id=patient.id,
            session_id=world.session.id,
            slot_id=None,
            now=NOW,
        )
    return id_number, phone


class TestDeskLookupKeepsNumbersOutOfAddresses:
    async def test_identity_and_phone_numbers_are_looked_up_in_the_body(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        id_number, phone = await book_known(ctx, world)
        clock.set(v.local(7, 30))
        nurse = await staff_auth(client, ctx, world, Role.NURSE)
        for query in (id_number, phone, f"{phone[:3]} {phone[3:7]} {phone[7:]}"):
            found = await client.post("/api/v1/desk/lookup", json={"q": query}, headers=nurse)
            assert found.status_code == 200, found.text
            assert [m["patient_name"] for m in found.json()] == ["周九"], query

    async def test_an_identity_or_phone_number_in_the_address_is_refused_unsearched_unlogged(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        id_number, phone = await book_known(ctx, world)
        clock.set(v.local(7, 30))
        nurse = await staff_auth(client, ctx, world, Role.NURSE)
        before = await row_counts(ctx.db)
        for query in (id_number, phone, "a.voucher.token"):
            refused = await client.get("/api/v1/desk/lookup", params={"q": query}, headers=nurse)
            body = assert_problem(refused, 422, "lookup_in_url")
            assert id_number not in body["detail"] and phone not in body["detail"]
        # Not even the read log: nothing was searched.
        assert await row_counts(ctx.db) == before

    async def test_a_short_code_may_still_be_looked_up_in_the_address(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        booked = await v.book(ctx, world, ordinal=0)
        clock.set(v.local(7, 30))
        nurse = await staff_auth(client, ctx, world, Role.NURSE)
        code = booked.voucher_code
        found = await client.get(
            "/api/v1/desk/lookup", params={"q": f"{code[:4]} {code[4:]}"}, headers=nurse
        )
        assert found.status_code == 200, found.text
        assert [m["appointment_id"] for m in found.json()] == [str(booked.id)]

    async def test_a_short_or_missing_query_is_a_validation_problem(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        nurse = await staff_auth(client, ctx, world, Role.NURSE)
        for body in ({}, {"q": "12"}, {"q": "1" * 2001}):
            answer = await client.post("/api/v1/desk/lookup", json=body, headers=nurse)
            assert_problem(answer, 422, "validation_error")


class TestDeskAndCallingApi:
    async def test_desk_walk_in_then_doctor_calls_and_nurse_moves(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        booked = await v.book(ctx, world, ordinal=0)
        clock.set(v.local(7, 30))
        nurse = await staff_auth(client, ctx, world, Role.NURSE)
        doctor = await staff_auth(client, ctx, world, Role.DOCTOR, doctor=world.doctor)
        found = await client.post(
            "/api/v1/desk/lookup", json={"q": booked.voucher_code}, headers=nurse
        )
        assert found.status_code == 200, found.text
        assert [m["appointment_id"] for m in found.json()] == [str(booked.id)]
        checked = await client.post(
            "/api/v1/desk/check-ins", json={"appointment_id": str(booked.id)}, headers=nurse
        )
        assert checked.status_code == 201, checked.text
        async with ctx.db.session_scope() as s:
            walker = await v.book_patient_only(s, ctx, world)
        walk = await client.post(
            "/api/v1/walk-ins",
            json={"patient_id": str(walker), "session_id": str(world.session.id)},
            headers=nurse,
        )
        assert walk.status_code == 201, walk.text
        walk_visit = walk.json()["ticket"]["visit_id"]
        queue = (
            await client.get(f"/api/v1/sessions/{world.session.id}/queue", headers=doctor)
        ).json()
        assert [r["visit_id"] for r in queue["waiting"]][-1] == walk_visit
        # Only nurses reorder; a move needs a reason.
        first = queue["waiting"][0]["visit_id"]
        denied = await client.post(
            f"/api/v1/visits/{walk_visit}/move",
            json={"before": first, "reason": "行动不便"},
            headers=doctor,
        )
        assert_problem(denied, 403, "forbidden")
        no_reason = await client.post(
            f"/api/v1/visits/{walk_visit}/move", json={"before": first}, headers=nurse
        )
        assert_problem(no_reason, 422, "validation_error")
        moved = await client.post(
            f"/api/v1/visits/{walk_visit}/move",
            json={"before": first, "reason": "行动不便"},
            headers=nurse,
        )
        assert moved.json()["position"] == 1
        called = await client.post(f"/api/v1/sessions/{world.session.id}/call-next", headers=doctor)
        assert (called.json()["visit_id"], called.json()["status"]) == (walk_visit, "called")
        for action, status in (("start", "in_consultation"), ("finish", "finished")):
            response = await client.post(f"/api/v1/visits/{walk_visit}/{action}", headers=doctor)
            assert response.json()["status"] == status, response.text
        refused = await client.post(f"/api/v1/visits/{walk_visit}/skip", headers=doctor)
        assert_problem(refused, 409, "invalid_visit_state")
        board = await client.get(f"/api/v1/departments/{world.department.id}/board", headers=doctor)
        assert board.status_code == 200, board.text
        assert len(board.json()[0]["next"]) == 1

    async def test_openapi_documents_the_visit_routes_and_their_problems(
        self, client: httpx.AsyncClient
    ) -> None:
        schema = (await client.get("/openapi.json")).json()
        check_in = schema["paths"]["/api/v1/check-ins"]["post"]
        assert "voucher_invalid" in check_in["responses"]["422"]["description"]
        assert check_in["responses"]["409"]["content"]["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }
        for path in (
            "/api/v1/desk/lookup",
            "/api/v1/walk-ins",
            "/api/v1/sessions/{session_id}/queue",
            "/api/v1/sessions/{session_id}/call-next",
            "/api/v1/visits/{visit_id}/skip",
            "/api/v1/visits/{visit_id}/move",
            "/api/v1/visits/{visit_id}/priority",
        ):
            assert path in schema["paths"], path
