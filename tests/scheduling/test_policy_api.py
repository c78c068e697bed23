"""The scheduler sets the release policy; bookings follow it at once."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tests.conftest import World
from tests.helpers import assert_problem, row_counts, staff_auth
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext


async def scheduler_auth(
    client: httpx.AsyncClient, ctx: AppContext, world: World
) -> dict[str, str]:
    return await staff_auth(client, ctx, world, Role.SCHEDULER)


class TestBookingPolicy:
    async def test_defaults_follow_the_beijing_platform(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        policy = (await client.get("/api/v1/booking-policy", headers=world.auth)).json()
        assert policy["release_days_ahead"] == 7
        assert policy["release_time"] == "08:00:00"
        assert policy["cancel_deadline_time"] == "15:00:00"
        assert policy["hold_minutes"] == 15
        assert policy["limit_per_day"] == 2
        assert policy["reserved_release_time"] == "07:00:00"

    async def test_a_department_override_changes_only_that_department(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        scheduler = await scheduler_auth(client, ctx, world)
        response = await client.put(
            "/api/v1/booking-policy",
            json={"department_id": str(world.department.id), "limit_per_department_per_day": 2},
            headers=scheduler,
        )
        assert response.status_code == 200, response.text
        assert response.json()["limit_per_department_per_day"] == 2
        assert response.json()["release_days_ahead"] == 7
        hospital = (await client.get("/api/v1/booking-policy", headers=world.auth)).json()
        assert hospital["limit_per_department_per_day"] == 1
        department = (
            await client.get(
                "/api/v1/booking-policy",
                params={"department_id": str(world.department.id)},
                headers=world.auth,
            )
        ).json()
        assert department["limit_per_department_per_day"] == 2
        async with ctx.db.read() as s:
            actions = (await s.scalars(select(AuditEntry.action))).all()
        assert "update_policy" in actions

    async def test_a_shorter_window_closes_booking_at_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        scheduler = await scheduler_auth(client, ctx, world)
        response = await client.put(
            "/api/v1/booking-policy", json={"release_days_ahead": 1}, headers=scheduler
        )
        assert response.status_code == 200, response.text
        booking = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(world.patient.id), "session_id": str(world.session.id)},
            headers=world.auth,
        )
        body = assert_problem(booking, 409, "outside_release_window")
        assert body["opens_at"] == "2026-11-22T00:00:00+00:00"

    async def test_nonsense_values_and_channel_keys_are_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        scheduler = await scheduler_auth(client, ctx, world)
        before = await row_counts(ctx.db)
        assert_problem(
            await client.put("/api/v1/booking-policy", json={"hold_minutes": 0}, headers=scheduler),
            422,
            "validation_error",
        )
        assert_problem(
            await client.put(
                "/api/v1/booking-policy", json={"release_time": "25:00"}, headers=scheduler
            ),
            422,
            "validation_error",
        )
        assert_problem(
            await client.put(
                "/api/v1/booking-policy", json={"limit_per_day": 3}, headers=world.auth
            ),
            403,
            "forbidden",
        )
        assert await row_counts(ctx.db) == before
