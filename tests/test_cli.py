"""The command line as operators and scripts use it (stable names from the API contract)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import httpx
import pyotp
import pytest
from typer.testing import CliRunner

from yuyue.cli import app
from yuyue.config import Settings
from yuyue.demo import catalogue
from yuyue.demo.history import HISTORY_PATIENTS
from yuyue.kit.crypto import api_key_digest, generate_master_secret
from yuyue.web.app import create_app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    database = tmp_path / "cli.db"
    monkeypatch.setenv("YUYUE_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("YUYUE_SECRET_KEY", generate_master_secret())
    return database


def counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as connection:
        query = "SELECT name FROM sqlite_master WHERE type='table'"
        tables = [r[0] for r in connection.execute(query)]
        return {t: connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


class TestInit:
    def test_init_creates_the_schema_and_can_run_again(self, env: Path) -> None:
        first = runner.invoke(app, ["init"])
        assert first.exit_code == 0, first.output
        assert "appointment" in counts(env)
        again = runner.invoke(app, ["init"])
        assert again.exit_code == 0, again.output


class TestSeedDemo:
    def test_seed_demo_loads_a_general_hospital_and_twice_changes_nothing(self, env: Path) -> None:
        result = runner.invoke(app, ["seed-demo"])
        assert result.exit_code == 0, result.output
        loaded = counts(env)
        assert loaded["department"] >= 20
        assert loaded["doctor"] >= 55
        assert loaded["clinic_session"] > 200
        # The six demo patients and the history's own.
        assert loaded["patient"] == 6 + HISTORY_PATIENTS
        # Past weeks with appointments, and the reports' summary rows of those days.
        assert loaded["appointment"] > 10_000
        assert loaded["report_session"] > 1_000
        assert loaded["staff_user"] == 9
        with sqlite3.connect(env) as connection:
            names = {r[0] for r in connection.execute("SELECT name FROM department")}
            records = [r[0] for r in connection.execute("SELECT record_number FROM patient")]
        # Every demo patient has a medical record number, the hospital's 1 … n.
        assert sorted(records) == [f"MR{n:08d}" for n in range(1, loaded["patient"] + 1)]
        assert {"内科", "外科", "儿科", "眼科", "口腔科", "急诊科", "心血管内科"} <= names
        again = runner.invoke(app, ["seed-demo"])
        assert again.exit_code == 0, again.output
        assert counts(env) == loaded


class TestApiKeyCreate:
    def test_the_key_is_alone_on_the_last_line_and_stored_only_as_a_digest(self, env: Path) -> None:
        assert runner.invoke(app, ["seed-demo"]).exit_code == 0
        result = runner.invoke(app, ["api-key", "create", "--channel", "phone"])
        assert result.exit_code == 0, result.output
        key = result.output.strip().splitlines()[-1]
        assert key.startswith("yk_")
        assert " " not in key
        with sqlite3.connect(env) as connection:
            rows = connection.execute("SELECT channel, digest FROM api_key").fetchall()
        assert rows == [("phone", api_key_digest(key))]
        assert key not in env.read_bytes().decode("latin-1")

    def test_an_unknown_channel_is_refused(self, env: Path) -> None:
        assert runner.invoke(app, ["seed-demo"]).exit_code == 0
        result = runner.invoke(app, ["api-key", "create", "--channel", "fax"])
        assert result.exit_code != 0
        assert "fax" in result.output

    def test_without_a_hospital_the_operator_is_told_what_to_do(self, env: Path) -> None:
        assert runner.invoke(app, ["init"]).exit_code == 0
        result = runner.invoke(app, ["api-key", "create", "--channel", "app"])
        assert result.exit_code == 2
        assert "seed-demo" in result.output


class TestDemo:
    def test_demo_prints_urls_logins_and_a_working_key(self, env: Path) -> None:
        result = runner.invoke(app, ["demo", "--no-serve"])
        assert result.exit_code == 0, result.output
        assert "http://127.0.0.1:8000/docs" in result.output
        assert "admin" in result.output
        assert "registrar" in result.output
        # Every demo login, with its password and roles, e.g. the read-only auditor's.
        for staff in catalogue.STAFF:
            assert re.search(
                rf"^    {staff.username} +{staff.password} +{', '.join(staff.roles)}",
                result.output,
                re.MULTILINE,
            ), staff.username
        key = result.output.strip().splitlines()[-1]
        assert key.startswith("yk_")
        with sqlite3.connect(env) as connection:
            digests = {r[0] for r in connection.execute("SELECT digest FROM api_key")}
        assert api_key_digest(key) in digests

    async def test_the_printed_second_factor_signs_the_director_in_and_nothing_less_does(
        self, env: Path
    ) -> None:
        # The command runs its own event loop: off this test's.
        result = await asyncio.to_thread(runner.invoke, app, ["demo", "--no-serve"])
        assert result.exit_code == 0, result.output
        found = re.search(r"TOTP secret \(base32[^)]*\): ([A-Z2-7]+)", result.output)
        assert found is not None, result.output
        secret = found.group(1)
        assert f"otpauth://totp/yuyue%20demo:director?secret={secret}" in result.output
        assert re.search(r"director\s+director123\s+admin\s+\+ second factor", result.output)

        settings = Settings(
            database_url=f"sqlite:///{env}",
            secret_key=os.environ["YUYUE_SECRET_KEY"],
            worker_in_process=False,
        )
        served = create_app(settings, run_worker=False)
        sign_in = {"hospital": "demo", "username": "director", "password": "director123"}
        async with (
            served.router.lifespan_context(served),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=served), base_url="http://demo"
            ) as http,
        ):
            password_alone = await http.post("/api/v1/auth/token", json=sign_in)
            assert password_alone.status_code == 401, password_alone.text
            assert password_alone.json()["code"] == "mfa_required"
            code = pyotp.TOTP(secret).now()
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
            refused = await http.post("/api/v1/auth/token", json={**sign_in, "otp": wrong})
            assert refused.json()["code"] == "invalid_second_factor", refused.text
            granted = await http.post("/api/v1/auth/token", json={**sign_in, "otp": code})
            assert granted.status_code == 200, granted.text
            assert granted.json()["roles"] == ["admin"]
            # The other printed logins still need their password alone.
            admin = await http.post(
                "/api/v1/auth/token", json={**sign_in, "username": "admin", "password": "admin123"}
            )
            assert admin.status_code == 200, admin.text

    def test_the_printed_booking_carries_a_fresh_idempotency_key_like_the_readme(
        self, env: Path
    ) -> None:
        result = runner.invoke(app, ["demo", "--no-serve"])
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        start = next(i for i, line in enumerate(lines) if "-H 'Content-Type" in line)
        command = " ".join(line.strip().rstrip("\\") for line in lines[start : start + 4])
        assert "-X POST http://127.0.0.1:8000/api/v1/appointments" in command
        found = re.search(r"-H 'Idempotency-Key: ([^']+)'", command)
        assert found is not None, command
        assert uuid.UUID(found.group(1)).version == 4
        readme = (Path(__file__).parents[1] / "README.md").read_text("utf-8")
        assert "-H 'Idempotency-Key: " in readme


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestServe:
    @pytest.mark.parametrize("workers", [1, 2])
    def test_serve_says_once_that_it_is_up_and_where(
        self, env: Path, tmp_path: Path, workers: int
    ) -> None:
        assert runner.invoke(app, ["init"]).exit_code == 0
        port = free_port()
        command = [sys.executable, "-m", "yuyue.cli", "serve", "--port", str(port)]
        server = subprocess.Popen(
            [*command, "--workers", str(workers)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "YUYUE_WORKER_IN_PROCESS": "false", "PYTHONUNBUFFERED": "1"},
            cwd=tmp_path,
        )
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            for line in server.stdout or ():
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        seen: list[str] = []
        try:
            deadline = time.monotonic() + 60
            while not any("yuyue is serving" in line for line in seen):
                assert time.monotonic() < deadline, seen
                assert server.poll() is None, seen
                with contextlib.suppress(queue.Empty):
                    seen.append(lines.get(timeout=0.5))
            ready = next(line for line in seen if "yuyue is serving" in line)
            url = f"http://127.0.0.1:{port}/"
            assert ready.strip() == (
                f"yuyue is serving on {url} (API docs: {url}docs) — Ctrl-C stops it"
            )
            # It was up when it said so.
            with urllib.request.urlopen(f"{url}healthz", timeout=5) as answer:
                assert answer.read() == b"ok"
            time.sleep(1.5)  # time enough for a second process to speak up, were it to
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
        while not lines.empty():
            seen.append(lines.get())
        assert sum("yuyue is serving" in line for line in seen) == 1, seen


async def test_the_printed_key_reads_the_printed_demo_patients(env: Path) -> None:
    """A new user tries `GET /api/v1/patients/{id}` with the demo's key and a printed
    patient id: the demo's app channel registered them, so it may read them."""
    result = await asyncio.to_thread(runner.invoke, app, ["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    printed = re.findall(r"^    ([0-9a-f-]{36})  ", result.output, re.MULTILINE)
    assert len(printed) == len(catalogue.DEMO_PATIENTS)
    settings = Settings(
        database_url=f"sqlite:///{env}",
        secret_key=os.environ["YUYUE_SECRET_KEY"],
        worker_in_process=False,
    )
    served = create_app(settings, run_worker=False)
    async with (
        served.router.lifespan_context(served),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served), base_url="http://demo"
        ) as http,
    ):
        for patient_id in printed:
            answer = await http.get(
                f"/api/v1/patients/{patient_id}", headers={"Authorization": f"Bearer {key}"}
            )
            assert answer.status_code == 200, answer.text
