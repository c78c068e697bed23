"""POST /api/v1/guidance over HTTP: open to anyone, a patient's age and sex only for a
caller with a key, and a per-client limit."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import World
from tests.guidance.conftest import Departments
from tests.helpers import assert_problem
from yuyue.guidance.throttle import LIMIT
from yuyue.web.context import AppContext


def open_to_all(ctx: AppContext, world: World) -> None:
    ctx.settings.hospital_code = world.hospital.code


class TestGuidanceApi:
    async def test_anyone_can_ask_without_a_key(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, departments: Departments
    ) -> None:
        open_to_all(ctx, world)
        response = await client.post("/api/v1/guidance", json={"text": "头疼，心慌"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["emergency"] is False and body["action"] is None
        assert body["advice"]
        first = body["departments"][0]
        assert set(first) == {"department_id", "name", "reason", "kind"}
        assert first["department_id"] in {
            str(departments.neurology.id),
            str(departments.cardiology.id),
        }

    async def test_a_red_flag_answers_emergency(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, departments: Departments
    ) -> None:
        open_to_all(ctx, world)
        response = await client.post(
            "/api/v1/guidance",
            json={"text": "my father's face is drooping and his speech is slurred"},
            headers={"Accept-Language": "en"},
        )
        body = response.json()
        assert body["emergency"] is True and body["action"] == "call_120"
        assert "Call 120" in body["advice"]
        assert body["departments"][0]["department_id"] == str(departments.emergency.id)

    async def test_age_and_sex_in_the_request_are_respected(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, departments: Departments
    ) -> None:
        open_to_all(ctx, world)
        response = await client.post(
            "/api/v1/guidance", json={"text": "月经不调", "sex": "M", "age": 30}
        )
        ids = [d["department_id"] for d in response.json()["departments"]]
        assert str(departments.gynaecology.id) not in ids

    async def test_a_patient_needs_a_key_and_gives_age_and_sex(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, departments: Departments
    ) -> None:
        open_to_all(ctx, world)
        asked = {"text": "月经不调", "patient_id": str(world.patient.id)}
        anonymous = await client.post("/api/v1/guidance", json=asked)
        assert_problem(anonymous, 401, "unauthorized")
        keyed = await client.post("/api/v1/guidance", json=asked, headers=world.auth)
        assert keyed.status_code == 200
        # 张三 is a man: gynaecology is not offered to him.
        ids = [d["department_id"] for d in keyed.json()["departments"]]
        assert str(departments.gynaecology.id) not in ids
        unknown = await client.post(
            "/api/v1/guidance",
            json={"text": "头疼", "patient_id": str(uuid.uuid4())},
            headers=world.auth,
        )
        assert_problem(unknown, 404, "not_found")

    async def test_bad_input_is_a_validation_problem(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        open_to_all(ctx, world)
        for body in ({"text": ""}, {"text": "头疼", "sex": "X"}, {"text": "x" * 501}):
            assert_problem(
                await client.post("/api/v1/guidance", json=body), 422, "validation_error"
            )

    async def test_one_client_is_limited_and_told_when_to_retry(
        self, app: object, ctx: AppContext, world: World, departments: Departments
    ) -> None:
        open_to_all(ctx, world)

        def client_at(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 50000))  # type: ignore[arg-type]
            return httpx.AsyncClient(transport=transport, base_url="http://test")

        async with client_at("198.51.100.1") as busy, client_at("198.51.100.2") as other:
            for _ in range(LIMIT):
                assert (
                    await busy.post("/api/v1/guidance", json={"text": "头疼"})
                ).status_code == 200
            refused = await busy.post("/api/v1/guidance", json={"text": "头疼"})
            problem = assert_problem(refused, 429, "too_many_requests")
            assert 1 <= int(refused.headers["retry-after"]) <= 60
            assert problem["retry_after"] == int(refused.headers["retry-after"])
            assert (await other.post("/api/v1/guidance", json={"text": "头疼"})).status_code == 200
