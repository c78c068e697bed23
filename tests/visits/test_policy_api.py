"""The visit-day rules each hospital sets: read by anyone signed in, set by an admin."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import World
from tests.helpers import assert_problem, row_counts, staff_auth
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext


class TestVisitPolicy:
    async def test_defaults_follow_the_requirements(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        policy = (await client.get("/api/v1/visit-policy", headers=world.auth)).json()
        assert policy["check_in_minutes_before"] == 60
        assert policy["elderly_age"] == 70
        assert policy["priority_classes"][0] == "emergency"
        assert policy["come_back_ahead"] == 3
        assert policy["travel_minutes"] == 0

    @pytest.mark.parametrize("role", [Role.ADMIN, Role.SCHEDULER])
    async def test_a_scheduler_or_an_admin_sets_them_and_the_change_is_audited(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, role: Role
    ) -> None:
        admin = await staff_auth(client, ctx, world, role)
        response = await client.put(
            "/api/v1/visit-policy",
            json={
                "elderly_age": 65,
                "travel_minutes": 40,
                "priority_classes": ["emergency", "elderly"],
            },
            headers=admin,
        )
        assert response.status_code == 200, response.text
        policy = (await client.get("/api/v1/visit-policy", headers=world.auth)).json()
        assert policy["elderly_age"] == 65 and policy["travel_minutes"] == 40
        assert policy["priority_classes"] == ["emergency", "elderly"]
        assert policy["check_in_minutes_before"] == 60  # left out, kept
        async with ctx.db.read() as session:
            audited = await session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "update_visit_policy")
            )
        assert audited == 1

    async def test_bad_values_and_other_roles_change_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await staff_auth(client, ctx, world, Role.ADMIN)
        nurse = await staff_auth(client, ctx, world, Role.NURSE)
        before = await row_counts(ctx.db)
        for body in (
            {"elderly_age": 12},
            {"priority_classes": ["emergency", "emergency"]},
            {"priority_classes": ["vip"]},
            {"travel_minutes": -5},
            {"unknown_field": 1},
        ):
            assert_problem(
                await client.put("/api/v1/visit-policy", json=body, headers=admin),
                422,
                "validation_error",
            )
        assert_problem(
            await client.put("/api/v1/visit-policy", json={"elderly_age": 65}, headers=nurse),
            403,
            "forbidden",
        )
        assert await row_counts(ctx.db) == before
