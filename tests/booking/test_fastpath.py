"""Sold-out answers given in front of the framework must be exactly the route's answers,
and everything the route would treat differently must pass through to it."""

from __future__ import annotations

import uuid

import httpx

from tests.booking.test_api import app_only_session, book
from tests.conftest import World
from tests.helpers import assert_problem
from yuyue.kit.crypto import api_key_digest
from yuyue.web.context import AppContext


async def _sold_out_session(client: httpx.AsyncClient, ctx: AppContext, world: World) -> str:
    clinic = await app_only_session(ctx, world, capacity=1)
    first = await client.post(
        "/api/v1/appointments",
        json={"patient_id": str(world.patient.id), "session_id": str(clinic.id)},
        headers={**world.auth, "Idempotency-Key": "first-try"},
    )
    assert first.status_code == 201, first.text
    refused = await book(client, world, patient=world.other_patient, session=clinic)
    assert_problem(refused, 409, "sold_out")
    return str(clinic.id)


class TestFastPath:
    async def test_the_answer_from_memory_equals_the_routes_answer(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        session_id = await _sold_out_session(client, ctx, world)
        body = {"patient_id": str(world.other_patient.id), "session_id": session_id}
        fast = await client.post("/api/v1/appointments", json=body, headers=world.auth)
        problem = assert_problem(fast, 409, "sold_out")
        assert problem["instance"] == "/api/v1/appointments"
        assert [a["session_id"] for a in problem["alternatives"]] == [str(world.session.id)]
        english = await client.post(
            "/api/v1/appointments", json=body, headers={**world.auth, "Accept-Language": "en"}
        )
        assert assert_problem(english, 409, "sold_out")["detail"].startswith("No places")

    async def test_a_retry_of_a_successful_booking_still_gets_its_first_answer(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        session_id = await _sold_out_session(client, ctx, world)
        retry = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(world.patient.id), "session_id": session_id},
            headers={**world.auth, "Idempotency-Key": "first-try"},
        )
        assert retry.status_code == 201, retry.text
        assert retry.headers["Idempotent-Replayed"] == "true"

    async def test_requests_the_route_would_refuse_otherwise_pass_through(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        session_id = await _sold_out_session(client, ctx, world)
        good = {"patient_id": str(world.other_patient.id), "session_id": session_id}
        no_key = await client.post("/api/v1/appointments", json=good)
        assert_problem(no_key, 401, "unauthorized")
        wrong_key = await client.post(
            "/api/v1/appointments", json=good, headers={"Authorization": "Bearer yk_wrong"}
        )
        assert_problem(wrong_key, 401, "unauthorized")
        extra = await client.post(
            "/api/v1/appointments", json={**good, "vip": True}, headers=world.auth
        )
        assert_problem(extra, 422, "validation_error")
        not_uuid = await client.post(
            "/api/v1/appointments", json={**good, "patient_id": "42"}, headers=world.auth
        )
        assert_problem(not_uuid, 422, "validation_error")
        broken = await client.post(
            "/api/v1/appointments",
            content=b'{"patient_id": ',
            headers={**world.auth, "Content-Type": "application/json"},
        )
        assert_problem(broken, 422, "validation_error")
        bad_idempotency = await client.post(
            "/api/v1/appointments", json=good, headers={**world.auth, "Idempotency-Key": ""}
        )
        assert_problem(bad_idempotency, 422, "invalid_idempotency_key")

    async def test_a_place_returned_by_cancellation_is_booked_not_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        session_id = await _sold_out_session(client, ctx, world)
        mine = await client.get(
            f"/api/v1/patients/{world.patient.id}/appointments", headers=world.auth
        )
        cancelled = await client.post(
            f"/api/v1/appointments/{mine.json()[0]['id']}/cancel", headers=world.auth
        )
        assert cancelled.status_code == 200, cancelled.text
        again = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(world.other_patient.id), "session_id": session_id},
            headers=world.auth,
        )
        assert again.status_code == 201, again.text


class TestBookingInFront:
    async def test_refusals_in_front_equal_the_routes(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        """The first request of a key goes through the router (the key is not yet in the
        caller cache); the next is booked in front of it. Both answer alike."""
        body = {"patient_id": str(uuid.uuid4()), "session_id": str(world.session.id)}
        headers = {**world.auth, "Accept-Language": "en"}
        ctx.actors.forget_all()
        by_route = await client.post("/api/v1/appointments", json=body, headers=headers)
        assert ctx.actors.get(api_key_digest(world.api_key)) is not None
        in_front = await client.post("/api/v1/appointments", json=body, headers=headers)
        assert_problem(by_route, 404, "not_found")
        assert in_front.status_code == by_route.status_code
        assert in_front.headers["content-type"] == by_route.headers["content-type"]
        assert in_front.json() == by_route.json()
        bad_key = await client.post(
            "/api/v1/appointments", json=body, headers={**headers, "Idempotency-Key": "x" * 201}
        )
        assert_problem(bad_key, 422, "invalid_idempotency_key")

    async def test_a_booking_in_front_is_the_routes_booking(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        ctx.actors.forget_all()
        first = await book(client, world, patient=world.patient, session=world.session)
        second = await book(client, world, patient=world.other_patient, session=world.session)
        assert first.status_code == second.status_code == 201, second.text
        assert set(first.json()) == set(second.json())
        assert (first.json()["sequence_number"], second.json()["sequence_number"]) == (1, 2)
        invalid = await client.post(
            "/api/v1/appointments",
            json={"patient_id": "not-a-uuid", "session_id": str(world.session.id)},
            headers=world.auth,
        )
        assert_problem(invalid, 422, "validation_error")
