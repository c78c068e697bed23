"""The command line as operators and scripts use it (stable names from the API contract)."""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yuyue.cli import app
from yuyue.kit.crypto import api_key_digest, generate_master_secret

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
        assert loaded["patient"] == 6
        assert loaded["staff_user"] == 6
        with sqlite3.connect(env) as connection:
            names = {r[0] for r in connection.execute("SELECT name FROM department")}
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
        key = result.output.strip().splitlines()[-1]
        assert key.startswith("yk_")
        with sqlite3.connect(env) as connection:
            digests = {r[0] for r in connection.execute("SELECT digest FROM api_key")}
        assert api_key_digest(key) in digests

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
