"""Creating a staff account over the API with a first password the administrator chose: it
must meet the password policy, and a taken username is named in the refusal."""

from __future__ import annotations

import httpx

from tests.conftest import World
from tests.helpers import assert_problem, row_counts
from tests.staff.test_sign_in import make_staff, signed_in, user
from yuyue.staff.enums import Role
from yuyue.web.context import AppContext


class TestChosenFirstPassword:
    async def test_a_strong_one_is_kept_and_must_still_be_changed(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await signed_in(client, world, await make_staff(ctx, world, Role.ADMIN))
        created = await client.post(
            "/api/v1/staff/users",
            json={
                "username": "qian",
                "display_name": "钱",
                "roles": ["nurse"],
                "password": "Lantern-42-moss",
            },
            headers=admin,
        )
        assert created.status_code == 201, created.text
        assert created.json()["temporary_password"] == "Lantern-42-moss"
        assert created.json()["account"]["password_must_change"] is True
        assert (await user(ctx, "qian")).password_must_change

    async def test_a_weak_one_or_a_taken_username_changes_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await signed_in(client, world, await make_staff(ctx, world, Role.ADMIN))
        taken = await make_staff(ctx, world, Role.NURSE)
        before = await row_counts(ctx.db)
        weak = assert_problem(
            await client.post(
                "/api/v1/staff/users",
                json={
                    "username": "sun",
                    "display_name": "孙",
                    "roles": ["nurse"],
                    "password": "password123",
                },
                headers=admin,
            ),
            422,
            "weak_password",
        )
        assert weak["reason"] == "common"
        duplicate = assert_problem(
            await client.post(
                "/api/v1/staff/users",
                json={"username": taken, "display_name": "x", "roles": ["nurse"]},
                headers=admin,
            ),
            409,
            "conflict",
        )
        assert taken in duplicate["detail"]
        assert await row_counts(ctx.db) == before
