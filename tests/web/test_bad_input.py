"""Bad input, bad credentials and wrong roles: always a problem+json with a stable code,
never a 5xx, and nothing written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select, update

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.helpers import assert_problem, row_counts
from yuyue.kit.clock import FixedClock
from yuyue.kit.crypto import TokenSigner, generate_master_secret, load_master_secret
from yuyue.staff.enums import Role
from yuyue.staff.models import ApiKey, StaffUser
from yuyue.web.context import AppContext

PROBLEM_JSON = "application/problem+json"


@pytest_asyncio.fixture
async def raw_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Like `client`, but an unhandled error comes back as the 500 a real server sends."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def staff_login(
    client: httpx.AsyncClient, ctx: AppContext, world: World, *roles: Role
) -> tuple[str, str]:
    """Creates a staff user and signs in; returns (username, token)."""
    async with ctx.db.session_scope() as s:
        username = await f.make_staff(s, hospital=world.hospital, roles=list(roles), now=NOW)
    response = await client.post(
        "/api/v1/auth/token",
        json={"hospital": world.hospital.code, "username": username, "password": "secret-pass"},
    )
    assert response.status_code == 200, response.text
    return username, str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def booking_body(world: World, **changes: Any) -> dict[str, Any]:
    return {
        "patient_id": str(world.patient.id),
        "session_id": str(world.session.id),
        **changes,
    }


def assert_validation_error(response: httpx.Response, *fields: str) -> dict[str, Any]:
    body = assert_problem(response, 422, "validation_error")
    named = [e["field"] for e in body["errors"]]
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"]), body
    for field in fields:
        assert field in named, body
    return body


class TestMalformedBooking:
    async def test_a_malformed_json_body_is_a_validation_error(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/appointments",
            content=b'{"patient_id": "',
            headers={**world.auth, "Content-Type": "application/json"},
        )
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"]
        assert await row_counts(ctx.db) == before

    @pytest.mark.parametrize(
        "content",
        [b"null", b"[]", b'"text"', b"\xff\xfe\x00", b"{}" * 3],
        ids=["null", "array", "string", "not-utf8", "two-objects"],
    )
    async def test_a_body_that_is_not_one_json_object_is_a_validation_error(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, content: bytes
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/appointments",
            content=content,
            headers={**world.auth, "Content-Type": "application/json"},
        )
        assert_problem(response, 422, "validation_error")
        assert await row_counts(ctx.db) == before

    async def test_a_form_encoded_body_is_a_validation_error(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/appointments", data=booking_body(world), headers=world.auth
        )
        assert_problem(response, 422, "validation_error")
        assert await row_counts(ctx.db) == before

    async def test_a_missing_field_is_named(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(world.patient.id)},
            headers=world.auth,
        )
        body = assert_validation_error(response, "session_id")
        assert "session_id" in body["detail"]
        assert await row_counts(ctx.db) == before

    async def test_an_extra_field_is_named(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/appointments", json=booking_body(world, colour="red"), headers=world.auth
        )
        assert_validation_error(response, "colour")
        assert await row_counts(ctx.db) == before

    @pytest.mark.parametrize("bad", ["abc", "", 12345, None, "01a20666-8b23-7a6c-bd77"])
    async def test_a_patient_id_that_is_not_a_uuid_is_named(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, bad: Any
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/appointments", json=booking_body(world, patient_id=bad), headers=world.auth
        )
        assert_validation_error(response, "patient_id")
        assert await row_counts(ctx.db) == before

    async def test_a_slot_id_that_is_not_a_uuid_is_named(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/appointments", json=booking_body(world, slot_id="first"), headers=world.auth
        )
        assert_validation_error(response, "slot_id")
        assert await row_counts(ctx.db) == before

    async def test_an_unknown_patient_is_not_found(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/appointments",
            json=booking_body(world, patient_id=str(uuid.uuid4())),
            headers=world.auth,
        )
        body = assert_problem(response, 404, "not_found")
        assert "就诊人" in body["detail"]
        assert await row_counts(ctx.db) == before

    async def test_an_unknown_session_is_not_found(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/appointments",
            json=booking_body(world, session_id=str(uuid.uuid4())),
            headers={**world.auth, "Accept-Language": "en"},
        )
        body = assert_problem(response, 404, "not_found")
        assert "clinic session" in body["detail"]
        assert await row_counts(ctx.db) == before

    async def test_an_overlong_idempotency_key_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/appointments",
            json=booking_body(world),
            headers={**world.auth, "Idempotency-Key": "k" * 201},
        )
        assert_problem(response, 422, "invalid_idempotency_key")
        assert await row_counts(ctx.db) == before


class TestCredentials:
    async def test_no_authorization_asks_for_a_bearer_token(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post("/api/v1/appointments", json=booking_body(world))
        assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert await row_counts(ctx.db) == before

    @pytest.mark.parametrize(
        "authorization",
        [
            "Bearer yk_not-a-real-key",
            "Bearer ",
            "Basic dXNlcjpwYXNz",
            "Bearer a.b",
            "Bearer eyJzdWIiOiIxIn0.AAAAAAAAAAAAAAAAAAAAAA",
            "yk_missing_scheme",
        ],
    )
    async def test_a_wrong_api_key_or_token_is_unauthorized(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, authorization: str
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/appointments",
            json=booking_body(world),
            headers={"Authorization": authorization},
        )
        assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert await row_counts(ctx.db) == before

    async def test_a_revoked_key_stops_working(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        assert (await client.get("/api/v1/departments", headers=world.auth)).status_code == 200
        async with ctx.db.session_scope() as s:
            await s.execute(
                update(ApiKey).where(ApiKey.hospital_id == world.hospital.id).values(revoked_at=NOW)
            )
        ctx.actors.forget_all()
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/appointments", json=booking_body(world), headers=world.auth
        )
        assert_problem(response, 401, "unauthorized")
        assert_problem(
            await client.get("/api/v1/departments", headers=world.auth), 401, "unauthorized"
        )
        assert await row_counts(ctx.db) == before

    async def test_a_staff_token_signed_with_another_secret_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        username, token = await staff_login(client, ctx, world, Role.ADMIN)
        async with ctx.db.read() as s:
            user_id = await s.scalar(select(StaffUser.id).where(StaffUser.username == username))
        # A token names its staff session; the forgeries name the real one.
        session_id = ctx.staff_signer.verify(token, now=NOW)["sid"]
        claims = {"sub": str(user_id), "hid": str(world.hospital.id), "sid": session_id}
        expires = NOW + timedelta(hours=1)
        forged = TokenSigner(load_master_secret(generate_master_secret()), "staff")
        before = await row_counts(ctx.db)
        for token in (
            forged.sign(claims, expires_at=expires),
            ctx.voucher_signer.sign(claims, expires_at=expires),
        ):
            response = await client.post(
                "/api/v1/api-keys", json={"channel": "web", "name": "x"}, headers=bearer(token)
            )
            assert_problem(response, 401, "unauthorized")
        # The same claims signed with the right key work, so only the signature was wrong.
        genuine = ctx.staff_signer.sign(claims, expires_at=expires)
        assert (await client.get("/api/v1/departments", headers=bearer(genuine))).status_code == 200
        assert await row_counts(ctx.db) == before

    async def test_a_staff_token_expires_after_twelve_hours(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        _username, token = await staff_login(client, ctx, world, Role.SCHEDULER)
        # In use all day (an idle token dies after 30 minutes), up to 11:59 after sign-in.
        for _ in range(28):
            clock.advance(timedelta(minutes=25))
            assert (
                await client.get("/api/v1/departments", headers=bearer(token))
            ).status_code == 200
        clock.advance(timedelta(hours=11, minutes=59) - timedelta(minutes=25 * 28))
        assert (await client.get("/api/v1/departments", headers=bearer(token))).status_code == 200
        clock.advance(timedelta(minutes=1, seconds=1))
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/sessions/generate", json={"days": 7}, headers=bearer(token)
        )
        assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert await row_counts(ctx.db) == before

    @pytest.mark.parametrize("who", ["wrong-password", "unknown-user", "unknown-hospital"])
    async def test_a_failed_sign_in_does_not_say_which_part_was_wrong(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, who: str
    ) -> None:
        async with ctx.db.session_scope() as s:
            username = await f.make_staff(s, hospital=world.hospital, roles=[Role.ADMIN], now=NOW)
        body = {"hospital": world.hospital.code, "username": username, "password": "secret-pass"}
        body |= {
            "wrong-password": {"password": "Secret-pass"},
            "unknown-user": {"username": "nobody"},
            "unknown-hospital": {"hospital": "nowhere"},
        }[who]
        before = await row_counts(ctx.db)
        response = await client.post("/api/v1/auth/token", json=body)
        problem = assert_problem(response, 401, "invalid_credentials")
        assert problem["detail"] == "用户名或密码不正确。"
        assert "access_token" not in response.text
        # Only the client address's failure count is written, the same for a wrong password
        # and an unknown user, so what is written does not tell them apart either.
        counted = 0 if who == "unknown-hospital" else 1
        assert await row_counts(ctx.db) == {**before, "sign_in_throttle": counted}


def scheduler_calls(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    session = world.session.id
    return [
        ("POST", "/api/v1/sessions/generate", {}),
        (
            "POST",
            "/api/v1/schedule-templates",
            {"department_id": str(world.department.id), "weekday": 0, "period": "morning"},
        ),
        (
            "POST",
            "/api/v1/sessions",
            {
                "department_id": str(world.department.id),
                "doctor_id": str(world.doctor.id),
                "date": VISIT_DAY.isoformat(),
                "period": "evening",
            },
        ),
        ("POST", f"/api/v1/sessions/{session}/extra-places", {"count": 2}),
        ("POST", f"/api/v1/sessions/{session}/stop", {"reason": "医生临时外出会诊"}),
        ("PUT", "/api/v1/pool-ratios", {"ratios": {"appointment": 100}}),
        ("POST", "/api/v1/api-keys", {"channel": "phone", "name": "call centre"}),
        (
            "POST",
            "/api/v1/blacklist",
            {
                "patient_id": str(world.patient.id),
                "reason": "多次爽约",
                "ends_at": (NOW + timedelta(days=90)).isoformat(),
            },
        ),
    ]


class TestRoles:
    async def test_a_channel_key_cannot_call_scheduler_or_admin_endpoints(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        for method, url, body in scheduler_calls(world):
            response = await client.request(method, url, json=body, headers=world.auth)
            problem = assert_problem(response, 403, "forbidden")
            assert problem["detail"] == "当前身份无权执行此操作。", (method, url)
        assert await row_counts(ctx.db) == before

    async def test_a_staff_member_without_the_role_is_forbidden(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        _username, token = await staff_login(client, ctx, world, Role.NURSE)
        before = await row_counts(ctx.db)
        for method, url, body in scheduler_calls(world):
            response = await client.request(method, url, json=body, headers=bearer(token))
            assert_problem(response, 403, "forbidden")
        assert await row_counts(ctx.db) == before


class TestSessionQuery:
    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"date_from": "2026-11-25", "date_to": "2026-11-24"}, "date_to"),
            ({"date_from": "2026-11-20", "date_to": "2026-12-22"}, "date_to"),
            ({"date_from": "0001-01-01"}, "date_to"),
            ({"date_from": "2026-02-30"}, "date_from"),
            ({"date_to": "2026-13-01"}, "date_to"),
            ({"department_id": "internal-medicine"}, "department_id"),
        ],
    )
    async def test_a_bad_query_is_a_validation_error(
        self,
        client: httpx.AsyncClient,
        ctx: AppContext,
        world: World,
        params: dict[str, str],
        field: str,
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.get("/api/v1/sessions", params=params, headers=world.auth)
        assert_validation_error(response, field)
        assert await row_counts(ctx.db) == before

    async def test_a_range_of_exactly_31_days_is_accepted(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        response = await client.get(
            "/api/v1/sessions",
            params={"date_from": "2026-11-20", "date_to": "2026-12-21"},
            headers=world.auth,
        )
        assert response.status_code == 200, response.text
        assert [s["id"] for s in response.json()] == [str(world.session.id)]

    async def test_a_path_id_that_is_not_a_uuid_is_named(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        for url, field in [
            ("/api/v1/sessions/monday/slots", "session_id"),
            ("/api/v1/appointments/abc", "appointment_id"),
            ("/api/v1/patients/42", "patient_id"),
        ]:
            assert_validation_error(await client.get(url, headers=world.auth), field)
        assert await row_counts(ctx.db) == before


class TestRouting:
    @pytest.mark.parametrize("url", ["/api/v1/nothing-here", "/api/v2/sessions"])
    async def test_an_unknown_route_is_a_problem(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, url: str
    ) -> None:
        before = await row_counts(ctx.db)
        assert_problem(await client.get(url, headers=world.auth), 404, "not_found")
        assert await row_counts(ctx.db) == before

    async def test_an_unknown_page_outside_the_api_is_a_page(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        response = await client.get("/index.php")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "未找到" in response.text

    @pytest.mark.parametrize(
        ("method", "url"),
        [
            ("DELETE", "/api/v1/appointments"),
            ("GET", "/api/v1/appointments"),
            ("PUT", "/api/v1/departments"),
            ("POST", "/healthz"),
        ],
    )
    async def test_a_wrong_method_is_a_problem(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, method: str, url: str
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.request(method, url, headers=world.auth)
        body = assert_problem(response, 405, "method_not_allowed")
        assert body["detail"] == "该地址不支持此请求方法。"
        assert await row_counts(ctx.db) == before

    async def test_a_wrong_method_names_the_allowed_methods(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        response = await client.request("DELETE", "/api/v1/appointments", headers=world.auth)
        assert response.status_code == 405
        assert response.headers.get("Allow") == "POST"


class TestNeverAServerError:
    async def test_every_refusal_is_problem_json_and_none_is_a_5xx(
        self, raw_client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        auth = world.auth
        json_type = {**auth, "Content-Type": "application/json"}
        calls: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "/api/v1/appointments", {"content": b"{", "headers": json_type}),
            ("POST", "/api/v1/appointments", {"content": b"", "headers": json_type}),
            ("POST", "/api/v1/appointments", {"json": {}, "headers": auth}),
            ("POST", "/api/v1/appointments", {"json": booking_body(world, x=1), "headers": auth}),
            ("POST", "/api/v1/appointments", {"json": booking_body(world, patient_id=1)}),
            (
                "POST",
                "/api/v1/appointments",
                {"json": booking_body(world, session_id=str(uuid.uuid4())), "headers": auth},
            ),
            (
                "POST",
                "/api/v1/appointments",
                {"json": booking_body(world, slot_id=str(uuid.uuid4())), "headers": auth},
            ),
            ("GET", f"/api/v1/appointments/{uuid.uuid4()}", {"headers": auth}),
            ("POST", f"/api/v1/appointments/{uuid.uuid4()}/cancel", {"headers": auth}),
            (
                "POST",
                f"/api/v1/appointments/{uuid.uuid4()}/cancel",
                {"content": b"[", "headers": json_type},
            ),
            ("GET", f"/api/v1/sessions/{uuid.uuid4()}/slots", {"headers": auth}),
            ("GET", "/api/v1/sessions", {"params": {"date_from": "x"}, "headers": auth}),
            ("GET", "/api/v1/sessions", {"params": {"date_to": "9999-12-31"}, "headers": auth}),
            ("POST", "/api/v1/patients", {"json": {"name": "张三"}, "headers": auth}),
            (
                "POST",
                "/api/v1/patients",
                {
                    "json": {"name": "张三", "id_number": "x" * 41, "phone": "1" * 31},
                    "headers": auth,
                },
            ),
            (
                "POST",
                "/api/v1/auth/token",
                {"json": {"hospital": "", "username": "", "password": ""}},
            ),
            ("POST", "/api/v1/auth/token", {"content": b"not json", "headers": json_type}),
            ("PATCH", "/api/v1/sessions", {"headers": auth}),
            ("GET", "/api/v1/../../etc/passwd", {"headers": auth}),
            ("GET", "/api/v1/departments", {"headers": {"Authorization": "Bearer \x7f"}}),
        ]
        for method, url, options in calls:
            response = await raw_client.request(method, url, **options)
            assert 400 <= response.status_code < 500, (method, url, response.text)
            assert response.headers["content-type"] == PROBLEM_JSON, (method, url)
            body = response.json()
            assert body["status"] == response.status_code
            assert body["code"] and body["detail"] and body["title"], body
        assert await row_counts(ctx.db) == before

    async def test_a_nul_character_in_a_sign_in_is_refused_not_a_crash(
        self,
        raw_client: httpx.AsyncClient,
        ctx: AppContext,
        world: World,
        backend: str,
        request: pytest.FixtureRequest,
    ) -> None:
        before = await row_counts(ctx.db)
        response = await raw_client.post(
            "/api/v1/auth/token",
            json={"hospital": f"{world.hospital.code}\u0000", "username": "u", "password": "p"},
        )
        assert response.status_code in (401, 422), response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert await row_counts(ctx.db) == before

    async def test_a_nul_character_in_a_cancellation_note_is_not_a_crash(
        self,
        raw_client: httpx.AsyncClient,
        ctx: AppContext,
        world: World,
        backend: str,
        request: pytest.FixtureRequest,
    ) -> None:
        booked = await raw_client.post(
            "/api/v1/appointments", json=booking_body(world), headers=world.auth
        )
        assert booked.status_code == 201, booked.text
        response = await raw_client.post(
            f"/api/v1/appointments/{booked.json()['id']}/cancel",
            json={"note": "改期\u0000"},
            headers=world.auth,
        )
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"] == PROBLEM_JSON
