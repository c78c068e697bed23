"""The published contract: /openapi.json names every stable path, parameter and field that
channel partners script against, and every error has a sentence in both languages."""

from __future__ import annotations

import json
import string
from typing import Any

import httpx
import pytest
import pytest_asyncio

from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError

STABLE_OPERATIONS = [
    ("get", "/api/v1/departments"),
    ("get", "/api/v1/sessions"),
    ("get", "/api/v1/sessions/{session_id}/slots"),
    ("post", "/api/v1/patients"),
    ("post", "/api/v1/appointments"),
    ("get", "/api/v1/appointments/{appointment_id}"),
    ("post", "/api/v1/appointments/{appointment_id}/cancel"),
]


@pytest_asyncio.fixture
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return dict(response.json())


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.removeprefix("#/components/schemas/")
    return dict(spec["components"]["schemas"][name])


def parameters(operation: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    return {p["name"].lower(): p for p in operation.get("parameters", []) if p["in"] == where}


class TestPaths:
    @pytest.mark.parametrize(("method", "path"), STABLE_OPERATIONS)
    async def test_every_stable_operation_is_published_behind_the_bearer_scheme(
        self, spec: dict[str, Any], method: str, path: str
    ) -> None:
        assert path in spec["paths"], sorted(spec["paths"])
        operation = spec["paths"][path].get(method)
        assert operation is not None, (method, path, list(spec["paths"][path]))
        schemes = {name for requirement in operation["security"] for name in requirement}
        bearer = [
            name
            for name, scheme in spec["components"]["securitySchemes"].items()
            if scheme["type"] == "http" and scheme["scheme"].lower() == "bearer"
        ]
        assert schemes and schemes <= set(bearer)

    async def test_the_liveness_probe_is_published_without_security(
        self, spec: dict[str, Any]
    ) -> None:
        operation = spec["paths"]["/healthz"]["get"]
        assert "security" not in operation
        assert "text/plain" in operation["responses"]["200"]["content"]

    async def test_session_search_takes_department_doctor_and_dates(
        self, spec: dict[str, Any]
    ) -> None:
        query = parameters(spec["paths"]["/api/v1/sessions"]["get"], "query")
        assert {"department_id", "doctor_id", "date_from", "date_to"} <= set(query)
        assert not any(p.get("required") for p in query.values())

    @pytest.mark.parametrize(
        ("method", "path", "name"),
        [
            ("get", "/api/v1/sessions/{session_id}/slots", "session_id"),
            ("get", "/api/v1/appointments/{appointment_id}", "appointment_id"),
            ("post", "/api/v1/appointments/{appointment_id}/cancel", "appointment_id"),
        ],
    )
    async def test_path_ids_are_uuids(
        self, spec: dict[str, Any], method: str, path: str, name: str
    ) -> None:
        path_parameters = parameters(spec["paths"][path][method], "path")
        assert path_parameters[name]["required"] is True
        assert path_parameters[name]["schema"]["format"] == "uuid"

    async def test_booking_takes_an_optional_idempotency_key_header(
        self, spec: dict[str, Any]
    ) -> None:
        headers = parameters(spec["paths"]["/api/v1/appointments"]["post"], "header")
        assert "idempotency-key" in headers, headers
        assert not headers["idempotency-key"].get("required", False)


class TestSchemas:
    async def test_a_session_has_the_fields_channels_read(self, spec: dict[str, Any]) -> None:
        schema = spec["components"]["schemas"]["SessionRead"]
        fields = {"id", "date", "period", "doctor", "level", "fee", "status", "remaining"}
        assert fields <= set(schema["properties"])
        assert fields <= set(schema["required"])
        listing = spec["paths"]["/api/v1/sessions"]["get"]["responses"]["200"]
        items = listing["content"]["application/json"]["schema"]["items"]
        assert items["$ref"].endswith("/SessionRead")

    async def test_a_slot_has_id_start_end_and_remaining(self, spec: dict[str, Any]) -> None:
        response = spec["paths"]["/api/v1/sessions/{session_id}/slots"]["get"]["responses"]["200"]
        item = resolve(spec, response["content"]["application/json"]["schema"]["items"])
        assert {"id", "start", "end", "remaining"} <= set(item["properties"])

    async def test_registering_a_patient_takes_the_contract_fields_and_returns_an_id(
        self, spec: dict[str, Any]
    ) -> None:
        operation = spec["paths"]["/api/v1/patients"]["post"]
        body = resolve(spec, operation["requestBody"]["content"]["application/json"]["schema"])
        assert {"name", "id_type", "id_number", "phone"} <= set(body["properties"])
        created = operation["responses"]["201"]["content"]["application/json"]["schema"]
        assert "id" in resolve(spec, created)["properties"]

    async def test_a_booking_answers_201_with_the_appointment(self, spec: dict[str, Any]) -> None:
        operation = spec["paths"]["/api/v1/appointments"]["post"]
        body = resolve(spec, operation["requestBody"]["content"]["application/json"]["schema"])
        assert {"patient_id", "session_id", "slot_id"} <= set(body["properties"])
        assert set(body["required"]) == {"patient_id", "session_id"}
        created = operation["responses"]["201"]["content"]["application/json"]["schema"]
        appointment = resolve(spec, created)
        assert {"id", "status", "sequence_number", "slot", "voucher"} <= set(
            appointment["properties"]
        )
        for path, method in [
            ("/api/v1/appointments/{appointment_id}", "get"),
            ("/api/v1/appointments/{appointment_id}/cancel", "post"),
        ]:
            answer = spec["paths"][path][method]["responses"]["200"]
            assert answer["content"]["application/json"]["schema"] == created

    async def test_a_refused_booking_documents_a_sold_out_problem(
        self, spec: dict[str, Any]
    ) -> None:
        refused = spec["paths"]["/api/v1/appointments"]["post"]["responses"]["409"]
        example = refused["content"]["application/problem+json"]["example"]
        assert example["code"] == "sold_out"
        assert example["status"] == 409
        assert example["type"].endswith("/sold_out")
        assert example["alternatives"]

    async def test_no_operation_documents_a_validation_body_it_never_sends(
        self, spec: dict[str, Any]
    ) -> None:
        wrong = [
            f"{method.upper()} {path}"
            for path, operations in spec["paths"].items()
            for method, operation in operations.items()
            if "HTTPValidationError" in json.dumps(operation["responses"].get("422", {}))
        ]
        assert wrong == []


class TestHealth:
    async def test_healthz_answers_ok(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.text == "ok"
        assert response.headers["content-type"].startswith("text/plain")


def _error_classes(cls: type[YuyueError]) -> list[type[YuyueError]]:
    found: list[type[YuyueError]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_error_classes(sub)]
    return found


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class TestSentences:
    async def test_every_message_exists_in_both_languages(self) -> None:
        assert i18n.message_ids("zh-CN") == i18n.message_ids("en")

    async def test_every_error_code_has_a_title_and_a_sentence_in_both_languages(
        self, spec: dict[str, Any]
    ) -> None:
        # `spec` built the app, so every context has registered its errors and messages.
        codes = {error.code for error in _error_classes(YuyueError)}
        assert {"sold_out", "invalid_id_number", "not_found", "validation_error"} <= codes
        for locale in i18n.LOCALES:
            ids = i18n.message_ids(locale)
            missing = sorted(
                key
                for code in codes
                for key in (f"title.{code}", f"error.{code}")
                if key not in ids
            )
            assert missing == [], locale

    async def test_both_languages_fill_in_the_same_values(self) -> None:
        for key in i18n.message_ids("zh-CN"):
            chinese = i18n.translate(key, "zh-CN")
            english = i18n.translate(key, "en")
            assert english and chinese, key
            assert _placeholders(chinese) == _placeholders(english), key
