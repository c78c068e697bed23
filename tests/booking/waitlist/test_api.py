"""The waitlist over HTTP on SQLite and PostgreSQL: the five routes, their refusals with
stable codes in both languages, and that a refusal changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tests import factories as f
from tests.booking.waitlist.support import call, channel_actor, entries, full_session
from tests.conftest import NOW, World
from tests.helpers import assert_problem, row_counts, staff_auth
from yuyue.booking import service as booking_service
from yuyue.kit.clock import FixedClock
from yuyue.staff.enums import Role
from yuyue.web.context import AppContext


async def join(
    client: httpx.AsyncClient, world: World, session_id: Any, patient_id: Any, **headers: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/sessions/{session_id}/waitlist",
        json={"patient_id": str(patient_id)},
        headers={**world.auth, **headers},
    )


async def cancel_first(ctx: AppContext, world: World, full: Any) -> None:
    await call(
        ctx,
        booking_service.cancel,
        actor=channel_actor(world),
        appointment_id=full.appointments[0],
        note=None,
        now=ctx.clock.now(),
    )


class TestJoinOverHttp:
    async def test_join_then_list_with_position_then_leave(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        response = await join(client, world, full.clinic.id, world.patient.id)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "waiting" and body["status_text"] == "候补中"
        assert body["position"] == 1
        assert body["offer"] is None
        assert body["session"]["id"] == str(full.clinic.id)
        assert body["session"]["period"] == "afternoon"
        assert body["session"]["doctor"] == world.doctor.name
        listed = await client.get(
            "/api/v1/waitlist", params={"patient_id": str(world.patient.id)}, headers=world.auth
        )
        assert listed.status_code == 200
        assert [e["id"] for e in listed.json()] == [body["id"]]
        left = await client.delete(f"/api/v1/waitlist/{body['id']}", headers=world.auth)
        assert left.status_code == 200, left.text
        assert left.json()["status"] == "left" and left.json()["position"] is None

    async def test_refusals_have_stable_codes_in_both_languages_and_change_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        assert (await join(client, world, full.clinic.id, world.patient.id)).status_code == 201
        open_session = await full_session(ctx, world, days=1, fill=False)
        before = await row_counts(ctx.db)
        again = await join(client, world, full.clinic.id, world.patient.id)
        assert "已在本次出诊的候补" in assert_problem(again, 409, "already_waiting")["detail"]
        english = await join(
            client, world, full.clinic.id, world.patient.id, **{"Accept-Language": "en"}
        )
        assert (
            "already on the waitlist" in assert_problem(english, 409, "already_waiting")["detail"]
        )
        not_needed = await join(client, world, open_session.clinic.id, world.other_patient.id)
        assert assert_problem(not_needed, 409, "waitlist_not_needed")["remaining"] == 2
        holder = await join(client, world, full.clinic.id, full.holders[0].id)
        assert_problem(holder, 409, "already_booked")
        unknown_session = await join(client, world, f.new_uuid(), world.patient.id)
        assert_problem(unknown_session, 404, "not_found")
        unknown_patient = await join(client, world, full.clinic.id, f.new_uuid())
        assert_problem(unknown_patient, 404, "not_found")
        malformed = await client.post(
            f"/api/v1/sessions/{full.clinic.id}/waitlist",
            json={"patient_id": "not-a-uuid", "extra": 1},
            headers=world.auth,
        )
        assert_problem(malformed, 422, "validation_error")
        bad_path = await client.post(
            "/api/v1/sessions/nope/waitlist",
            json={"patient_id": str(world.patient.id)},
            headers=world.auth,
        )
        assert_problem(bad_path, 422, "validation_error")
        assert await row_counts(ctx.db) == before

    async def test_after_the_closing_time_joining_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        clock = ctx.clock
        assert isinstance(clock, FixedClock)
        # 13:30 Shanghai on the visit day, less 120 minutes.
        clock.set(NOW + timedelta(days=3, hours=3, minutes=30))
        response = await join(client, world, full.clinic.id, world.patient.id)
        body = assert_problem(response, 409, "waitlist_closed")
        assert body["closed_at"] == "2026-11-23T03:30:00+00:00"
        assert "11月23日 周一 11:30" in body["detail"]

    async def test_without_credentials_or_from_another_hospital(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        entry = (await join(client, world, full.clinic.id, world.patient.id)).json()
        async with ctx.db.session_scope() as s:
            elsewhere = await f.make_hospital(s, now=NOW)
            other_key = await f.make_api_key(s, hospital=elsewhere, now=NOW)
        other = {"Authorization": f"Bearer {other_key}"}
        before = await row_counts(ctx.db)
        no_key = await client.post(
            f"/api/v1/sessions/{full.clinic.id}/waitlist",
            json={"patient_id": str(world.patient.id)},
        )
        assert_problem(no_key, 401, "unauthorized")
        assert_problem(
            await client.get("/api/v1/waitlist", params={"patient_id": str(world.patient.id)}),
            401,
            "unauthorized",
        )
        for method, path in (
            ("DELETE", f"/api/v1/waitlist/{entry['id']}"),
            ("POST", f"/api/v1/waitlist/{entry['id']}/accept"),
            ("POST", f"/api/v1/waitlist/{entry['id']}/decline"),
            ("DELETE", f"/api/v1/waitlist/{f.new_uuid()}"),
        ):
            assert_problem(await client.request(method, path, headers=other), 404, "not_found")
        foreign = await client.post(
            f"/api/v1/sessions/{full.clinic.id}/waitlist",
            json={"patient_id": str(world.patient.id)},
            headers=other,
        )
        assert_problem(foreign, 404, "not_found")
        listed = await client.get(
            "/api/v1/waitlist", params={"patient_id": str(world.patient.id)}, headers=other
        )
        assert_problem(listed, 404, "not_found")
        assert await row_counts(ctx.db) == before


class TestOffersOverHttp:
    async def test_offer_accept_books_and_wrong_states_are_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        entry = (await join(client, world, full.clinic.id, world.patient.id)).json()
        early = await client.post(f"/api/v1/waitlist/{entry['id']}/accept", headers=world.auth)
        assert_problem(early, 409, "invalid_state")
        await cancel_first(ctx, world, full)
        listed = (
            await client.get(
                "/api/v1/waitlist",
                params={"patient_id": str(world.patient.id)},
                headers=world.auth,
            )
        ).json()
        assert listed[0]["status"] == "offered"
        assert listed[0]["offer"]["expires_at"] == "2026-11-20T02:30:00Z"
        appointment_id = listed[0]["offer"]["appointment_id"]
        accepted = await client.post(f"/api/v1/waitlist/{entry['id']}/accept", headers=world.auth)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "accepted"
        booked = await client.get(f"/api/v1/appointments/{appointment_id}", headers=world.auth)
        assert booked.json()["status"] == "booked"
        assert booked.json()["patient_id"] == str(world.patient.id)
        before = await row_counts(ctx.db)
        for path in ("accept", "decline"):
            again = await client.post(f"/api/v1/waitlist/{entry['id']}/{path}", headers=world.auth)
            assert_problem(again, 409, "invalid_state")
        assert_problem(
            await client.delete(f"/api/v1/waitlist/{entry['id']}", headers=world.auth),
            409,
            "invalid_state",
        )
        assert await row_counts(ctx.db) == before

    async def test_declining_the_last_offer_makes_the_place_bookable_at_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        entry = (await join(client, world, full.clinic.id, world.patient.id)).json()
        # Teach the sold-out memory that the session is full.
        refused = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(world.other_patient.id), "session_id": str(full.clinic.id)},
            headers=world.auth,
        )
        assert_problem(refused, 409, "sold_out")
        await cancel_first(ctx, world, full)
        declined = await client.post(f"/api/v1/waitlist/{entry['id']}/decline", headers=world.auth)
        assert declined.status_code == 200, declined.text
        assert declined.json()["status"] == "declined"
        booked = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(world.other_patient.id), "session_id": str(full.clinic.id)},
            headers=world.auth,
        )
        assert booked.status_code == 201, booked.text
        assert [e.status for e in await entries(ctx, full.clinic)] == ["declined"]

    async def test_staff_can_act_for_a_patient_at_the_window(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world, capacity=4, ratios={"appointment": 50, "onsite": 50})
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        # The window still has on-site places: a registrar books rather than waits.
        refused = await client.post(
            f"/api/v1/sessions/{full.clinic.id}/waitlist",
            json={"patient_id": str(world.patient.id)},
            headers=registrar,
        )
        assert_problem(refused, 409, "waitlist_not_needed")
        waiting = await join(client, world, full.clinic.id, world.patient.id)
        left = await client.delete(f"/api/v1/waitlist/{waiting.json()['id']}", headers=registrar)
        assert left.status_code == 200 and left.json()["status"] == "left"
