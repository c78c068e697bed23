"""Staff sign-in, roles and channel API keys over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, select, update

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.helpers import assert_problem, row_counts
from yuyue.kit import crypto
from yuyue.scheduling.enums import Period
from yuyue.scheduling.models import PoolRatio
from yuyue.staff.enums import Role
from yuyue.staff.models import ApiKey, StaffUser
from yuyue.web.context import AppContext


async def make_staff(ctx: AppContext, world: World, *roles: Role) -> str:
    async with ctx.db.session_scope() as s:
        return await f.make_staff(s, hospital=world.hospital, roles=list(roles), now=NOW)


async def sign_in(
    client: httpx.AsyncClient, world: World, username: str, password: str = "secret-pass"
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token",
        json={"hospital": world.hospital.code, "username": username, "password": password},
    )


async def staff_auth(
    client: httpx.AsyncClient, ctx: AppContext, world: World, *roles: Role
) -> dict[str, str]:
    response = await sign_in(client, world, await make_staff(ctx, world, *roles))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sessions_on(
    client: httpx.AsyncClient, headers: dict[str, str], day: Any = VISIT_DAY
) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/v1/sessions",
        params={"date_from": day.isoformat(), "date_to": day.isoformat()},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return list(response.json())


class TestSignIn:
    async def test_sign_in_returns_a_bearer_token_with_the_users_roles(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        username = await make_staff(ctx, world, Role.SCHEDULER, Role.REGISTRAR)
        response = await sign_in(client, world, username)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer"
        assert sorted(body["roles"]) == ["registrar", "scheduler"]
        assert body["access_token"] and not body["access_token"].startswith(crypto.API_KEY_PREFIX)
        assert datetime.fromisoformat(body["expires_at"]) == NOW + timedelta(hours=12)

    async def test_sign_in_writes_only_its_staff_session(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        username = await make_staff(ctx, world, Role.NURSE)
        before = await row_counts(ctx.db)
        assert (await sign_in(client, world, username)).status_code == 200
        assert await row_counts(ctx.db) == {**before, "staff_session": before["staff_session"] + 1}

    async def test_a_wrong_password_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        username = await make_staff(ctx, world, Role.ADMIN)
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/auth/token",
            json={"hospital": world.hospital.code, "username": username, "password": "guess"},
            headers={"Accept-Language": "en"},
        )
        body = assert_problem(response, 401, "invalid_credentials")
        assert body["detail"] == "Wrong username or password."
        # A wrong attempt is counted against the client address, and nothing else is written.
        assert await row_counts(ctx.db) == {**before, "sign_in_throttle": 1}

    async def test_the_same_username_in_another_hospital_is_another_person(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        username = await make_staff(ctx, world, Role.ADMIN)
        async with ctx.db.session_scope() as s:
            elsewhere = await f.make_hospital(s, now=NOW)
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/auth/token",
            json={"hospital": elsewhere.code, "username": username, "password": "secret-pass"},
        )
        assert_problem(response, 401, "invalid_credentials")
        # A wrong attempt is counted against the client address, and nothing else is written.
        assert await row_counts(ctx.db) == {**before, "sign_in_throttle": 1}


class TestStaffToken:
    async def test_the_token_works_on_a_staff_endpoint(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await staff_auth(client, ctx, world, Role.SCHEDULER)
        response = await client.put(
            "/api/v1/pool-ratios",
            json={
                "department_id": str(world.department.id),
                "ratios": {"appointment": 70, "onsite": 30},
            },
            headers=auth,
        )
        assert response.status_code == 204, response.text
        async with ctx.db.read() as s:
            saved = {
                r.pool: r.percent
                for r in await s.scalars(
                    select(PoolRatio).where(PoolRatio.department_id == world.department.id)
                )
            }
        assert saved == {"appointment": 70, "onsite": 30}

    async def test_a_staff_token_reads_the_onsite_pool(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await staff_auth(client, ctx, world, Role.REGISTRAR)
        [clinic] = await sessions_on(client, auth)
        # Staff book for patients standing at the window: the on-site pool (8 of 25).
        assert clinic["remaining"] == 8

    async def test_a_disabled_user_can_no_longer_use_an_existing_token(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        username = await make_staff(ctx, world, Role.ADMIN)
        token = (await sign_in(client, world, username)).json()["access_token"]
        assert (await client.get("/api/v1/departments", headers=bearer(token))).status_code == 200
        async with ctx.db.session_scope() as s:
            await s.execute(
                update(StaffUser).where(StaffUser.username == username).values(active=False)
            )
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/api-keys", json={"channel": "phone", "name": "热线"}, headers=bearer(token)
        )
        assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert_problem(
            await client.get("/api/v1/departments", headers=bearer(token)), 401, "unauthorized"
        )
        assert_problem(await sign_in(client, world, username), 401, "invalid_credentials")
        assert await row_counts(ctx.db) == {**before, "sign_in_throttle": 1}

    async def test_a_role_removed_takes_effect_on_an_existing_token(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        username = await make_staff(ctx, world, Role.ADMIN)
        token = (await sign_in(client, world, username)).json()["access_token"]
        async with ctx.db.session_scope() as s:
            await s.execute(
                update(StaffUser).where(StaffUser.username == username).values(roles=["nurse"])
            )
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/api-keys", json={"channel": "phone", "name": "热线"}, headers=bearer(token)
        )
        assert_problem(response, 403, "forbidden")
        assert await row_counts(ctx.db) == before


class TestApiKeys:
    async def test_an_admin_creates_a_phone_key_that_reads_the_phone_pool(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        # A session whose places include a pool of the phone channel's own.
        async with ctx.db.session_scope() as s:
            await s.execute(delete(PoolRatio).where(PoolRatio.hospital_id == world.hospital.id))
            for pool, percent in {"appointment": 40, "phone": 20, "onsite": 40}.items():
                s.add(PoolRatio(hospital_id=world.hospital.id, pool=pool, percent=percent))
            await s.flush()
            clinic = await f.make_session(
                s,
                hospital=world.hospital,
                department=world.department,
                level=world.free_level,
                doctor=world.doctor,
                day=VISIT_DAY,
                period=Period.AFTERNOON,
                start=time(13, 30),
                end=time(17, 30),
                now=NOW,
            )
        admin = await staff_auth(client, ctx, world, Role.ADMIN)
        response = await client.post(
            "/api/v1/api-keys", json={"channel": "phone", "name": "电话预约中心"}, headers=admin
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["channel"] == "phone" and created["name"] == "电话预约中心"
        key = created["key"]
        assert key.startswith(crypto.API_KEY_PREFIX)

        phone = {s["id"]: s["remaining"] for s in await sessions_on(client, bearer(key))}
        app = {s["id"]: s["remaining"] for s in await sessions_on(client, world.auth)}
        # Phone draws on its own 5 places and the shared appointment pool's 10; the app
        # only on the shared 10.
        assert phone[str(clinic.id)] == 15
        assert app[str(clinic.id)] == 10
        assert phone[str(world.session.id)] == app[str(world.session.id)] == 15

        slots = await client.get(f"/api/v1/sessions/{clinic.id}/slots", headers=bearer(key))
        assert slots.status_code == 200
        assert sum(s["remaining"] for s in slots.json()) == 15

    async def test_only_the_keys_digest_is_stored(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await staff_auth(client, ctx, world, Role.ADMIN)
        created = (
            await client.post(
                "/api/v1/api-keys", json={"channel": "phone", "name": "call centre"}, headers=admin
            )
        ).json()
        async with ctx.db.read() as s:
            row = await s.get(ApiKey, uuid.UUID(created["id"]))
        assert row is not None
        assert row.channel == "phone" and row.revoked_at is None
        assert row.digest == crypto.api_key_digest(created["key"])
        assert row.prefix == created["key"][:8]
        for column in ApiKey.__table__.columns:
            assert created["key"] not in str(getattr(row, column.key)), column.key

    async def test_a_key_books_in_its_channel(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await staff_auth(client, ctx, world, Role.ADMIN)
        key = (
            await client.post(
                "/api/v1/api-keys", json={"channel": "phone", "name": "call centre"}, headers=admin
            )
        ).json()["key"]
        booked = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(world.patient.id), "session_id": str(world.session.id)},
            headers=bearer(key),
        )
        assert booked.status_code == 201, booked.text
        assert booked.json()["channel"] == "phone"

    async def test_a_scheduler_cannot_create_keys(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await staff_auth(client, ctx, world, Role.SCHEDULER)
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/api-keys", json={"channel": "phone", "name": "x"}, headers=auth
        )
        assert_problem(response, 403, "forbidden")
        assert await row_counts(ctx.db) == before

    async def test_an_unknown_channel_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await staff_auth(client, ctx, world, Role.ADMIN)
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/api-keys", json={"channel": "fax", "name": "x"}, headers=admin
        )
        body = assert_problem(response, 422, "validation_error")
        assert [e["field"] for e in body["errors"]] == ["channel"]
        assert await row_counts(ctx.db) == before


class TestRevokeApiKey:
    async def test_a_revoked_key_stops_working_at_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await staff_auth(client, ctx, world, Role.ADMIN)
        created = await client.post(
            "/api/v1/api-keys", json={"channel": "kiosk", "name": "大厅自助机 3"}, headers=admin
        )
        assert created.status_code == 201, created.text
        key = bearer(created.json()["key"])
        # The key works and is now in the caller cache.
        assert (await client.get("/api/v1/departments", headers=key)).status_code == 200
        revoked = await client.delete(f"/api/v1/api-keys/{created.json()['id']}", headers=admin)
        assert revoked.status_code == 204, revoked.text
        refused = await client.get("/api/v1/departments", headers=key)
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthorized"

    async def test_only_an_admin_revokes_and_unknown_keys_are_not_found(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await staff_auth(client, ctx, world, Role.ADMIN)
        created = await client.post(
            "/api/v1/api-keys", json={"channel": "phone", "name": "12580"}, headers=admin
        )
        url = f"/api/v1/api-keys/{created.json()['id']}"
        assert (await client.delete(url, headers=world.auth)).json()["code"] == "forbidden"
        unknown = await client.delete(f"/api/v1/api-keys/{uuid.uuid4()}", headers=admin)
        assert unknown.status_code == 404
        assert unknown.json()["code"] == "not_found"
