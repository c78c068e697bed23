"""`yuyue keys` as an operator runs it: refusals that change nothing, a rotation with its
progress and summary, a second run with nothing to do, and no secret (nor any identity
number or phone) in what it prints or logs."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.operations.test_keys import (
    KEY_A,
    KEY_B,
    A,
    B,
    C,
    Registered,
    legacy_token,
    register_under,
)
from yuyue.cli import app
from yuyue.kit.crypto import generate_master_secret, key_id, load_master_secret
from yuyue.kit.db import Database

runner = CliRunner()
SEALED = {
    "account": "phone_cipher",
    "patient": "id_cipher, phone_cipher, id_index, phone_index",
    "staff_user": "totp_secret",
    "outbox_message": "to_phone_cipher",
}


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keys.db"
    monkeypatch.setenv("YUYUE_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("YUYUE_SECRET_KEY", A)
    monkeypatch.delenv("YUYUE_PREVIOUS_SECRET_KEYS", raising=False)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    return path


def populate(path: Path, secret: str) -> Registered:
    async def main() -> Registered:
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            return await register_under(db, secret)
        finally:
            await db.dispose()

    return asyncio.run(main())


def sealed_snapshot(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as connection:
        return {
            table: sorted(connection.execute(f"SELECT id, {columns} FROM {table}").fetchall())
            for table, columns in SEALED.items()
        }


def configure(monkeypatch: pytest.MonkeyPatch, current: str, *previous: str) -> None:
    monkeypatch.setenv("YUYUE_SECRET_KEY", current)
    if previous:
        monkeypatch.setenv("YUYUE_PREVIOUS_SECRET_KEYS", ",".join(previous))


def plaintexts(registered: Registered) -> list[str]:
    return [*registered.numbers.values(), *registered.phones.values(), registered.holder]


class TestRefusals:
    def test_rotate_without_a_previous_secret_is_refused_and_changes_nothing(
        self, database: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        populate(database, A)
        configure(monkeypatch, B)
        before = sealed_snapshot(database)

        result = runner.invoke(app, ["keys", "rotate"])

        assert result.exit_code == 2, result.output
        assert "no previous secret is configured" in result.output
        assert "YUYUE_PREVIOUS_SECRET_KEYS" in result.output
        assert sealed_snapshot(database) == before

    def test_values_under_a_secret_not_configured_refuse_the_whole_rotation(
        self, database: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        populate(database, A)
        configure(monkeypatch, B, C)
        before = sealed_snapshot(database)

        result = runner.invoke(app, ["keys", "rotate"])

        assert result.exit_code == 2, result.output
        assert "refused, nothing changed" in result.output
        assert f"patient.id_cipher: 5 values sealed with key {KEY_A}" in result.output
        assert sealed_snapshot(database) == before

    def test_a_value_no_secret_opens_stops_the_rotation_with_its_row(
        self, database: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        registered = populate(database, A)
        stray = next(iter(registered.numbers))
        with sqlite3.connect(database) as connection:
            connection.execute(
                "UPDATE patient SET id_cipher = ? WHERE id = ?",
                (legacy_token(C, "x"), stray.hex),
            )
        configure(monkeypatch, B, A)

        result = runner.invoke(app, ["keys", "rotate"])

        assert result.exit_code == 1, result.output
        assert f"stopped: patient.id_cipher of row {stray}" in result.output
        assert "altered or needs another key" in result.output

    def test_an_unusable_previous_secret_is_named_without_its_value(
        self, database: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        short = generate_master_secret()[:20]
        configure(monkeypatch, B, A, short)

        for command in (["keys", "status"], ["keys", "rotate"]):
            result = runner.invoke(app, command)

            assert result.exit_code == 2, result.output
            assert "previous secret number 2" in result.output
            assert short not in result.output


class TestRotation:
    def test_status_rotate_and_again_with_no_secret_in_output_or_logs(
        self,
        database: Path,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        registered = populate(database, A)
        configure(monkeypatch, B, A)

        before = runner.invoke(app, ["keys", "status"])
        rotated = runner.invoke(app, ["keys", "rotate", "--batch-size", "2"])
        after = runner.invoke(app, ["keys", "status"])
        again = runner.invoke(app, ["keys", "rotate"])

        for result in (before, rotated, after, again):
            assert result.exit_code == 0, result.output
        assert f"current key {KEY_B}; previous: {KEY_A}" in before.output
        assert f"{KEY_A} (previous): 5" in before.output
        assert "v1 (from before key ids): 1" in before.output
        assert "run `yuyue keys rotate`" in before.output
        assert "patient.id_cipher: 2 re-sealed" in rotated.output
        assert "patient.id_cipher: 5 re-sealed" in rotated.output
        assert "re-sealed 16 values" in rotated.output
        assert f"every stored value is under key {KEY_B}" in rotated.output
        assert KEY_A not in after.output.split("\n", 1)[1]
        assert f"{KEY_B} (current): 5" in after.output
        assert "every stored value is under the current key" in after.output
        assert "re-sealed 0 values" in again.output
        shown = before.output + rotated.output + after.output + again.output + caplog.text
        for secret in (A, B):
            assert secret not in shown
        for plain in plaintexts(registered):
            assert plain not in shown

    def test_status_with_one_secret_and_with_a_missing_one(
        self, database: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        populate(database, A)

        alone = runner.invoke(app, ["keys", "status"])
        configure(monkeypatch, B)
        missing = runner.invoke(app, ["keys", "status"])

        assert alone.exit_code == 0 and missing.exit_code == 0, alone.output + missing.output
        assert f"current key {KEY_A}; previous: none" in alone.output
        assert "1 values are from before key ids (v1)" in alone.output
        assert "every stored value is under the current key" in alone.output
        assert f"{KEY_A} (NOT CONFIGURED): 5" in missing.output
        assert "15 values name a secret that is not configured" in missing.output
        assert "run `yuyue keys rotate`" in missing.output

    def test_new_prints_a_usable_secret_alone_on_the_last_line(self) -> None:
        result = runner.invoke(app, ["keys", "new"])

        assert result.exit_code == 0, result.output
        *text, secret = result.output.strip().splitlines()
        assert f"key id {key_id(load_master_secret(secret))}" in "\n".join(text)
        assert runner.invoke(app, ["keys", "new"]).output.splitlines()[-1] != secret
