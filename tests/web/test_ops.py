"""What an operator watches: liveness and readiness, the request id, Prometheus metrics and
JSON logs that mask identity numbers, phones and tokens."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.conftest import World
from yuyue.kit import observability as obs
from yuyue.web import ops

ID_NUMBER = "11010519491231002X"
PHONE = "13812345678"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestHealth:
    async def test_liveness_touches_nothing(self, client: httpx.AsyncClient) -> None:
        answer = await client.get("/healthz")
        assert (answer.status_code, answer.text) == (200, "ok")

    async def test_ready_when_the_database_answers(self, client: httpx.AsyncClient) -> None:
        answer = await client.get("/readyz")
        assert answer.status_code == 200
        assert answer.json() == {"status": "ready", "checks": {"database": True}}

    async def test_not_ready_when_the_database_does_not(
        self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def refused(ctx: object) -> bool:
            raise ConnectionRefusedError("connection refused")

        monkeypatch.setattr(ops, "_database_answers", refused)
        answer = await client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["checks"]["database"] is False
        # Liveness is not readiness: the process still serves.
        assert (await client.get("/healthz")).status_code == 200


class TestRequestId:
    async def test_an_edge_request_id_is_carried_and_returned(
        self, client: httpx.AsyncClient
    ) -> None:
        answer = await client.get("/healthz", headers={"X-Request-ID": "edge-7f3a.1"})
        assert answer.headers["x-request-id"] == "edge-7f3a.1"

    @pytest.mark.parametrize("sent", [None, "", "has spaces", "x" * 65, "<script>"])
    async def test_a_missing_or_odd_one_is_replaced(
        self, client: httpx.AsyncClient, sent: str | None
    ) -> None:
        headers = {} if sent is None else {"X-Request-ID": sent}
        first = (await client.get("/healthz", headers=headers)).headers["x-request-id"]
        second = (await client.get("/healthz", headers=headers)).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", first)
        assert first != second

    async def test_log_lines_written_while_serving_carry_it(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        async def app(scope: obs.Scope, receive: obs.Receive, send: obs.Send) -> None:
            logging.getLogger("yuyue.inside").warning("serving")
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        observed = obs.RequestObservation(app)
        transport = httpx.ASGITransport(app=observed)
        with caplog.at_level(logging.INFO):
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                answer = await http.get("/x", headers={"X-Request-ID": "req-42"})
            logging.getLogger("yuyue.outside").warning("idle")
        assert answer.headers["x-request-id"] == "req-42"
        formatter = obs.JsonFormatter()
        lines = {r.name: json.loads(formatter.format(r)) for r in caplog.records}
        assert lines["yuyue.inside"]["request_id"] == "req-42"
        assert "request_id" not in lines["yuyue.outside"]

    async def test_a_record_keeps_the_request_id_of_its_making(self) -> None:
        make = logging.getLogRecordFactory()
        token = obs.request_id.set("abc-1")
        try:
            record = make("yuyue.x", logging.INFO, __file__, 1, "booked", None, None)
        finally:
            obs.request_id.reset(token)
        # Formatted after the request ended, it still names the request it came from.
        line = json.loads(obs.JsonFormatter().format(record))
        assert line["request_id"] == "abc-1"
        assert line["level"] == "info" and line["message"] == "booked"


class TestMetrics:
    async def test_requests_are_counted_by_route_template(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        route = "/api/v1/sessions/{session_id}/slots"
        before = sample("yuyue_http_requests_total", method="GET", route=route, status="200")
        answer = await client.get(f"/api/v1/sessions/{world.session.id}/slots", headers=world.auth)
        assert answer.status_code == 200
        after = sample("yuyue_http_requests_total", method="GET", route=route, status="200")
        assert after == before + 1
        text = (await client.get("/metrics")).text
        routes = set(re.findall(r'yuyue_http_requests_total\{[^}]*route="([^"]*)"', text))
        assert route in routes
        assert not [r for r in routes if re.search(r"[0-9a-f]{8}-[0-9a-f]{4}", r)]

    async def test_bookings_and_refusals_are_counted(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        booked_before = sample("yuyue_bookings_total", channel="app")
        refused_before = sample("yuyue_refusals_total", code="already_booked")
        body = {"patient_id": str(world.patient.id), "session_id": str(world.session.id)}
        first = await client.post("/api/v1/appointments", headers=world.auth, json=body)
        again = await client.post("/api/v1/appointments", headers=world.auth, json=body)
        assert first.status_code == 201, first.text
        assert again.json()["code"] == "already_booked"
        assert sample("yuyue_bookings_total", channel="app") == booked_before + 1
        assert sample("yuyue_refusals_total", code="already_booked") == refused_before + 1

    async def test_the_scrape_shows_pool_backlog_and_holds(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        body = {"patient_id": str(world.patient.id), "session_id": str(world.session.id)}
        assert (
            await client.post("/api/v1/appointments", headers=world.auth, json=body)
        ).status_code == 201
        answer = await client.get("/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        values = {
            m.group(1): float(m.group(2))
            for m in re.finditer(r"^(yuyue_[a-z_]+) ([0-9.e+-]+)$", answer.text, re.MULTILINE)
        }
        assert values["yuyue_db_pool_size"] >= 1
        assert values["yuyue_outbox_backlog"] >= 1  # the confirmation and its reminders
        assert values["yuyue_holds_overdue"] == 0
        assert "yuyue_holds_open" in values
        assert "yuyue_http_request_duration_seconds_bucket" in answer.text


class TestRedaction:
    @pytest.mark.parametrize(
        ("line", "hidden", "kept"),
        [
            (f"patient {ID_NUMBER} booked", ID_NUMBER, "110***********002X"),
            (f"sms to {PHONE} sent", PHONE, "138****5678"),
            ("Authorization: Bearer yk_abcdefghijklmnop", "abcdefghijklmnop", "Bearer ***"),
            ("key yk_abcdefghijklmnopqrstuv used", "abcdefghijklmnopqrstuv", "yk_abc***"),
            (
                "cookie eyJzdWIiOiIxMjMiLCJoaWQiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
                "c2lnbmF0dXJlLXNpZ25hdHVyZQ",
                "***token***",
            ),
        ],
    )
    def test_secrets_and_identities_never_reach_a_line(
        self, line: str, hidden: str, kept: str
    ) -> None:
        masked = obs.redact(line)
        assert hidden not in masked
        assert kept in masked

    def test_ordinary_numbers_are_left_alone(self) -> None:
        assert obs.redact("took 1234 ms for 25 places") == "took 1234 ms for 25 places"

    def test_the_served_logging_configuration_writes_masked_json(self) -> None:
        program = (
            "import logging, logging.config\n"
            "from yuyue.kit.observability import logging_config\n"
            "logging.config.dictConfig(logging_config(json_logs=True))\n"
            f"logging.getLogger('yuyue.demo').warning('id %s phone %s', '{ID_NUMBER}', '{PHONE}')\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, check=True
        )
        line = json.loads(done.stderr.strip().splitlines()[-1])
        assert line["level"] == "warning" and line["logger"] == "yuyue.demo"
        assert ID_NUMBER not in line["message"] and PHONE not in line["message"]

    def test_plain_text_logs_are_masked_too(self) -> None:
        program = (
            "import logging, logging.config\n"
            "from yuyue.kit.observability import logging_config\n"
            "logging.config.dictConfig(logging_config(json_logs=False))\n"
            f"logging.getLogger('yuyue.demo').warning('phone %s', '{PHONE}')\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, check=True
        )
        assert "138****5678" in done.stderr and PHONE not in done.stderr
