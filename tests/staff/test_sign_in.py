"""Staff sessions, lock-out, throttling, the password policy, the second factor and the
administrators' account endpoints, over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pyotp
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW, World
from tests.helpers import assert_problem, row_counts
from yuyue.kit.clock import FixedClock
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry, StaffUser
from yuyue.web.context import AppContext

PASSWORD = "secret-pass"


async def make_staff(ctx: AppContext, world: World, *roles: Role) -> str:
    async with ctx.db.session_scope() as s:
        return await f.make_staff(s, hospital=world.hospital, roles=list(roles), now=NOW)


async def token_of(
    client: httpx.AsyncClient, world: World, username: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token",
        json={"hospital": world.hospital.code, "username": username, "password": password, **extra},
    )


async def signed_in(client: httpx.AsyncClient, world: World, username: str) -> dict[str, str]:
    response = await token_of(client, world, username)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def works(client: httpx.AsyncClient, auth: dict[str, str]) -> bool:
    response = await client.get("/api/v1/auth/sessions", headers=auth)
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


async def user(ctx: AppContext, username: str) -> StaffUser:
    async with ctx.db.read() as s:
        found = await s.scalar(select(StaffUser).where(StaffUser.username == username))
    assert found is not None
    return found


@pytest_asyncio.fixture
async def other_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


class TestSessions:
    async def test_signing_out_kills_the_token(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await signed_in(client, world, await make_staff(ctx, world, Role.NURSE))
        assert await works(client, auth)
        assert (await client.post("/api/v1/auth/sign-out", headers=auth)).status_code == 204
        assert not await works(client, auth)

    async def test_a_user_lists_and_ends_their_own_sessions(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        username = await make_staff(ctx, world, Role.NURSE)
        first = await signed_in(client, world, username)
        second = await signed_in(client, world, username)
        listed = (await client.get("/api/v1/auth/sessions", headers=first)).json()
        assert len(listed) == 2 and all(s["live"] for s in listed)
        assert [s["current"] for s in listed].count(True) == 1
        other = next(s for s in listed if not s["current"])
        stranger = await signed_in(client, world, await make_staff(ctx, world, Role.NURSE))
        before = await row_counts(ctx.db)
        assert_problem(
            await client.delete(f"/api/v1/auth/sessions/{other['id']}", headers=stranger),
            404,
            "not_found",
        )
        assert await row_counts(ctx.db) == before and await works(client, second)
        deleted = await client.delete(f"/api/v1/auth/sessions/{other['id']}", headers=first)
        assert deleted.status_code == 204
        assert not await works(client, second) and await works(client, first)

    async def test_idle_for_thirty_minutes_ends_it_and_requests_keep_it(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        auth = await signed_in(client, world, await make_staff(ctx, world, Role.NURSE))
        for minutes in (20, 40, 60):
            clock.set(NOW + timedelta(minutes=minutes))
            assert await works(client, auth)
        clock.set(NOW + timedelta(minutes=91))
        assert not await works(client, auth)

    async def test_a_password_change_ends_every_session(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        username = await make_staff(ctx, world, Role.NURSE)
        auth, other = (
            await signed_in(client, world, username),
            await signed_in(client, world, username),
        )
        changed = await client.post(
            "/api/v1/auth/password",
            json={"current": PASSWORD, "new": "lantern-river-42"},
            headers=auth,
        )
        assert changed.status_code == 204, changed.text
        assert not await works(client, auth) and not await works(client, other)
        assert_problem(await token_of(client, world, username), 401, "invalid_credentials")
        assert (await token_of(client, world, username, "lantern-river-42")).status_code == 200

    async def test_a_weak_or_wrong_password_change_changes_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        username = await make_staff(ctx, world, Role.NURSE)
        auth = await signed_in(client, world, username)
        before = await row_counts(ctx.db)
        for new, reason in (
            ("short", "too_short"),
            ("1234567890123", "only_digits"),
            ("password123", "common"),
        ):
            body = assert_problem(
                await client.post(
                    "/api/v1/auth/password", json={"current": PASSWORD, "new": new}, headers=auth
                ),
                422,
                "weak_password",
            )
            assert body["reason"] == reason
        assert await row_counts(ctx.db) == before
        assert (await user(ctx, username)).failed_sign_ins == 0
        wrong = await client.post(
            "/api/v1/auth/password",
            json={"current": "not-it-at-all", "new": "lantern-river-42"},
            headers=auth,
        )
        assert_problem(wrong, 403, "wrong_password")
        assert (await user(ctx, username)).failed_sign_ins == 1
        assert await works(client, auth)


class TestLockOut:
    async def test_five_wrong_passwords_lock_even_the_right_one_for_fifteen_minutes(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        username = await make_staff(ctx, world, Role.NURSE)
        for _ in range(4):
            assert_problem(
                await token_of(client, world, username, "guess-guess"), 401, "invalid_credentials"
            )
        locked = await token_of(client, world, username, "guess-guess")
        body = assert_problem(locked, 429, "account_locked")
        assert locked.headers["Retry-After"] == "900" and body["retry_after"] == 900
        before = await row_counts(ctx.db)
        right = await token_of(client, world, username)
        assert_problem(right, 429, "account_locked")
        assert await row_counts(ctx.db) == before
        clock.set(NOW + timedelta(minutes=15))
        assert (await token_of(client, world, username)).status_code == 200

    async def test_a_successful_sign_in_resets_the_count(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        username = await make_staff(ctx, world, Role.NURSE)
        for _ in range(4):
            await token_of(client, world, username, "guess-guess")
        assert (await token_of(client, world, username)).status_code == 200
        assert (await user(ctx, username)).failed_sign_ins == 0
        for _ in range(4):
            assert_problem(
                await token_of(client, world, username, "guess-guess"), 401, "invalid_credentials"
            )

    async def test_one_address_guessing_is_slowed_but_others_are_not_locked_out(
        self,
        client: httpx.AsyncClient,
        other_client: httpx.AsyncClient,
        ctx: AppContext,
        world: World,
        clock: FixedClock,
    ) -> None:
        victims = [await make_staff(ctx, world, Role.NURSE) for _ in range(3)]
        for attempt in range(10):
            # Spread over many names (and unknown ones): no account reaches its own lock.
            name = victims[attempt % 3] if attempt % 2 else f"nobody{attempt}"
            assert_problem(
                await token_of(client, world, name, "guess-guess"), 401, "invalid_credentials"
            )
        before = await row_counts(ctx.db)
        refused = await token_of(client, world, victims[0])
        body = assert_problem(refused, 429, "too_many_attempts")
        assert refused.headers["Retry-After"] == "60" and body["retry_after"] == 60
        assert await row_counts(ctx.db) == before
        # The staff themselves, from their own machines, still sign in.
        assert (await token_of(other_client, world, victims[0])).status_code == 200
        clock.set(NOW + timedelta(minutes=1))
        assert (await token_of(client, world, victims[1])).status_code == 200


class TestSecondFactor:
    async def enrol(
        self, client: httpx.AsyncClient, auth: dict[str, str], clock: FixedClock
    ) -> tuple[str, list[str]]:
        started = await client.post("/api/v1/auth/totp/enrol", headers=auth)
        assert started.status_code == 200, started.text
        body = started.json()
        assert body["otpauth_uri"].startswith("otpauth://totp/")
        assert body["qr_code"].startswith("data:image/svg+xml")
        secret = body["secret"]
        confirmed = await client.post(
            "/api/v1/auth/totp/confirm",
            json={"code": pyotp.TOTP(secret).at(clock.now())},
            headers=auth,
        )
        assert confirmed.status_code == 200, confirmed.text
        codes = confirmed.json()["recovery_codes"]
        assert len(codes) == 10 and len(set(codes)) == 10
        return secret, codes

    async def test_enrolled_sign_in_takes_two_steps_and_a_code_works_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        username = await make_staff(ctx, world, Role.NURSE)
        secret, codes = await self.enrol(client, await signed_in(client, world, username), clock)
        stored = await user(ctx, username)
        assert stored.totp_secret is not None and secret not in stored.totp_secret
        async with ctx.db.read() as s:
            audit = (await s.scalars(select(AuditEntry))).all()
        assert secret not in json.dumps([a.after for a in audit])

        clock.set(NOW + timedelta(minutes=2))
        before = await row_counts(ctx.db)
        first = assert_problem(await token_of(client, world, username), 401, "mfa_required")
        assert await row_counts(ctx.db) == before
        # The challenge is not a token.
        assert not await works(client, {"Authorization": f"Bearer {first['challenge']}"})
        code = pyotp.TOTP(secret).at(clock.now())
        second = await client.post(
            "/api/v1/auth/token/totp", json={"challenge": first["challenge"], "code": code}
        )
        assert second.status_code == 200, second.text
        assert await works(client, {"Authorization": f"Bearer {second.json()['access_token']}"})
        again = await client.post(
            "/api/v1/auth/token/totp", json={"challenge": first["challenge"], "code": code}
        )
        assert_problem(again, 401, "invalid_second_factor")
        # One step, as the contract allows: the password and a recovery code together.
        assert (await token_of(client, world, username, otp=codes[0])).status_code == 200
        assert_problem(
            await token_of(client, world, username, otp=codes[0]), 401, "invalid_second_factor"
        )

    async def test_wrong_codes_count_toward_the_lock(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        username = await make_staff(ctx, world, Role.NURSE)
        secret, _ = await self.enrol(client, await signed_in(client, world, username), clock)
        challenge = (await token_of(client, world, username)).json()["challenge"]
        for _ in range(4):
            assert_problem(
                await client.post(
                    "/api/v1/auth/token/totp", json={"challenge": challenge, "code": "000000"}
                ),
                401,
                "invalid_second_factor",
            )
        fifth = await client.post(
            "/api/v1/auth/token/totp", json={"challenge": challenge, "code": "000000"}
        )
        assert_problem(fifth, 429, "account_locked")
        clock.set(NOW + timedelta(minutes=1))
        right = pyotp.TOTP(secret).at(clock.now())
        assert_problem(
            await client.post(
                "/api/v1/auth/token/totp", json={"challenge": challenge, "code": right}
            ),
            429,
            "account_locked",
        )

    async def test_a_required_role_without_a_factor_reaches_only_the_enrolment(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        admin = await signed_in(client, world, await make_staff(ctx, world, Role.ADMIN))
        await self.enrol(client, admin, clock)
        put = await client.put(
            "/api/v1/staff/second-factor-roles", json={"roles": ["nurse"]}, headers=admin
        )
        assert put.status_code == 200, put.text
        username = await make_staff(ctx, world, Role.NURSE)
        signed = await token_of(client, world, username)
        assert signed.json()["limit"] == "second_factor_enrolment"
        auth = {"Authorization": f"Bearer {signed.json()['access_token']}"}
        assert_problem(
            await client.get("/api/v1/departments", headers=auth),
            403,
            "second_factor_enrolment_required",
        )
        await self.enrol(client, auth, clock)
        assert (await client.get("/api/v1/departments", headers=auth)).status_code == 200

    async def test_an_administrator_resets_a_second_factor_and_it_ends_the_sessions(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        admin = await signed_in(client, world, await make_staff(ctx, world, Role.ADMIN))
        username = await make_staff(ctx, world, Role.NURSE)
        auth = await signed_in(client, world, username)
        await self.enrol(client, auth, clock)
        nurse = await user(ctx, username)
        reset = await client.post(
            f"/api/v1/staff/users/{nurse.id}/second-factor-reset", headers=admin
        )
        assert reset.status_code == 200 and reset.json()["second_factor"] is False
        assert not await works(client, auth)
        assert (await token_of(client, world, username)).status_code == 200


class TestAccounts:
    async def test_an_administrator_creates_a_nurse_who_must_change_the_password(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await signed_in(client, world, await make_staff(ctx, world, Role.ADMIN))
        created = await client.post(
            "/api/v1/staff/users",
            json={
                "username": "nurse.li",
                "display_name": "李护士",
                "roles": ["nurse"],
                "department_id": str(world.department.id),
            },
            headers=admin,
        )
        assert created.status_code == 201, created.text
        temporary = created.json()["temporary_password"]
        async with ctx.db.read() as s:
            audit = (
                await s.scalars(select(AuditEntry).where(AuditEntry.action == "staff.created"))
            ).all()
        assert len(audit) == 1 and temporary not in json.dumps([audit[0].before, audit[0].after])
        signed = await token_of(client, world, "nurse.li", temporary)
        assert signed.json()["limit"] == "password_change"
        auth = {"Authorization": f"Bearer {signed.json()['access_token']}"}
        assert_problem(
            await client.get("/api/v1/departments", headers=auth), 403, "password_change_required"
        )
        changed = await client.post(
            "/api/v1/auth/password",
            json={"current": temporary, "new": "lantern-river-42"},
            headers=auth,
        )
        assert changed.status_code == 204
        again = await token_of(client, world, "nurse.li", "lantern-river-42")
        assert again.json()["limit"] is None

    async def test_disable_ends_sessions_and_enable_lets_them_back(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await signed_in(client, world, await make_staff(ctx, world, Role.ADMIN))
        username = await make_staff(ctx, world, Role.REGISTRAR)
        auth = await signed_in(client, world, username)
        target = (await user(ctx, username)).id
        assert (
            await client.post(f"/api/v1/staff/users/{target}/disable", headers=admin)
        ).status_code == 200
        assert not await works(client, auth)
        assert_problem(await token_of(client, world, username), 401, "invalid_credentials")
        assert (
            await client.post(f"/api/v1/staff/users/{target}/enable", headers=admin)
        ).status_code == 200
        assert (await token_of(client, world, username)).status_code == 200

    async def test_roles_change_and_password_reset(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await signed_in(client, world, await make_staff(ctx, world, Role.ADMIN))
        username = await make_staff(ctx, world, Role.NURSE)
        auth = await signed_in(client, world, username)
        target = (await user(ctx, username)).id
        changed = await client.patch(
            f"/api/v1/staff/users/{target}",
            json={"roles": ["doctor"], "doctor_id": str(world.doctor.id)},
            headers=admin,
        )
        assert changed.status_code == 200 and changed.json()["roles"] == ["doctor"]
        reset = await client.post(f"/api/v1/staff/users/{target}/password-reset", headers=admin)
        temporary = reset.json()["temporary_password"]
        assert not await works(client, auth)
        assert (await token_of(client, world, username, temporary)).json()[
            "limit"
        ] == "password_change"

    async def test_refusals_change_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin_name = await make_staff(ctx, world, Role.ADMIN)
        admin = await signed_in(client, world, admin_name)
        nurse = await signed_in(client, world, await make_staff(ctx, world, Role.NURSE))
        me = (await user(ctx, admin_name)).id
        async with ctx.db.session_scope() as s:
            elsewhere = await f.make_hospital(s, now=NOW)
            stranger = await f.make_staff(s, hospital=elsewhere, roles=[Role.NURSE], now=NOW)
        stranger_id = (await user(ctx, stranger)).id
        before = await row_counts(ctx.db)
        assert_problem(
            await client.post(
                "/api/v1/staff/users",
                json={"username": "x", "display_name": "x", "roles": ["nurse"]},
                headers=nurse,
            ),
            403,
            "forbidden",
        )
        assert_problem(
            await client.post(f"/api/v1/staff/users/{me}/disable", headers=admin),
            409,
            "own_account",
        )
        assert_problem(
            await client.patch(
                f"/api/v1/staff/users/{me}", json={"roles": ["nurse"]}, headers=admin
            ),
            409,
            "own_account",
        )
        assert_problem(
            await client.post(f"/api/v1/staff/users/{stranger_id}/disable", headers=admin),
            404,
            "not_found",
        )
        assert_problem(
            await client.post(
                "/api/v1/staff/users",
                json={"username": admin_name, "display_name": "x", "roles": ["nurse"]},
                headers=admin,
            ),
            409,
            "conflict",
        )
        assert await row_counts(ctx.db) == before

    async def test_an_administrator_ends_a_members_sessions(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await signed_in(client, world, await make_staff(ctx, world, Role.ADMIN))
        username = await make_staff(ctx, world, Role.NURSE)
        auth = await signed_in(client, world, username)
        target = (await user(ctx, username)).id
        listed = await client.get(f"/api/v1/staff/users/{target}/sessions", headers=admin)
        assert [s["live"] for s in listed.json()] == [True]
        assert (
            await client.delete(f"/api/v1/staff/users/{target}/sessions", headers=admin)
        ).status_code == 204
        assert not await works(client, auth)
