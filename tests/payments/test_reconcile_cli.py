"""`yuyue reconcile` by hand, against the WeChat Pay simulator configured as a real merchant
account would be (key files, gateway URL, all from the environment)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.payments.serving import serve_asgi
from yuyue.cli import app
from yuyue.kit.crypto import generate_master_secret
from yuyue.payments.reconcile import business_day
from yuyue.payments.simulators.wechatpay import (
    WechatPaySimulatorKeys,
    build_wechatpay_simulator,
    wechatpay_simulator_of,
)

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("YUYUE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("YUYUE_SECRET_KEY", generate_master_secret())
    monkeypatch.setenv("YUYUE_JOB_STORAGE", str(tmp_path / "jobs.db"))
    return tmp_path


def test_refused_arguments_and_no_provider(env: Path) -> None:
    assert runner.invoke(app, ["seed-demo"]).exit_code == 0
    assert runner.invoke(app, ["reconcile", "--provider", "paypal"]).exit_code == 2
    assert runner.invoke(app, ["reconcile", "--date", "6 Dec"]).exit_code == 2
    assert runner.invoke(app, ["reconcile", "--provider", "wechatpay"]).exit_code == 2
    nothing = runner.invoke(app, ["reconcile"])
    assert nothing.exit_code == 1 and "no provider configured" in nothing.output


def test_a_day_by_hand_refunds_a_stray_charge_once(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = WechatPaySimulatorKeys.generate()
    simulator_app = build_wechatpay_simulator(keys=keys)
    simulator = wechatpay_simulator_of(simulator_app)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    stray = simulator.add_provider_only_trade(amount_fen=1200, paid_at=yesterday)
    for name, value in keys.write_merchant_files(env / "wechatpay").items():
        monkeypatch.setenv(f"YUYUE_{name.upper()}", str(value))
    assert runner.invoke(app, ["seed-demo"]).exit_code == 0
    day = business_day(yesterday).isoformat()
    with serve_asgi(simulator_app) as url:
        monkeypatch.setenv("YUYUE_WECHATPAY_GATEWAY_URL", url)
        first = runner.invoke(app, ["reconcile", "--provider", "wechatpay", "--date", day])
        again = runner.invoke(app, ["reconcile", "--provider", "wechatpay", "--date", day])
    simulator.close()

    assert first.exit_code == 0, first.output
    assert f"wechatpay {day}: done, 1 discrepancies, 1 refunds started" in first.output
    assert f"wechatpay {day}: done, 1 discrepancies, 0 refunds started" in again.output
    [refund] = simulator.refunds.values()
    assert (refund.out_trade_no, refund.refund_fen) == (stray.out_trade_no, 1200)
