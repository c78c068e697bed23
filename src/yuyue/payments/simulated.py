"""The demo's stand-ins for WeChat Pay, Alipay and the medical-insurance platform, served by
yuyue itself under /sim/ when `payments_simulated` is on.

The adapters are the real ones, configured exactly as for a real merchant account (key
files, gateway URLs); only the URLs point at our own server. The keys are made once, kept
owner-only beside the secret file (never in the repository) and reused, so the files the
adapters read and the keys the simulators sign with agree across restarts. The simulators
keep their trades in memory: the demo serves one process."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI

from yuyue.config import Settings
from yuyue.payments.simulators.alipay import AlipaySimulatorKeys, build_alipay_simulator
from yuyue.payments.simulators.insurance import build_insurance_simulator
from yuyue.payments.simulators.wechatpay import WechatPaySimulatorKeys, build_wechatpay_simulator

WECHATPAY_PREFIX = "/sim/wechatpay"
ALIPAY_PREFIX = "/sim/alipay"
INSURANCE_PREFIX = "/sim/insurance"
INSURANCE_ORG_CODE = "H11010500001"  # the demo hospital's code at the insurance platform

K = TypeVar("K", WechatPaySimulatorKeys, AlipaySimulatorKeys)


@dataclass(frozen=True)
class SimulatedProviders:
    wechatpay: FastAPI
    alipay: FastAPI
    insurance: FastAPI

    def mount(self, app: FastAPI) -> None:
        app.mount(WECHATPAY_PREFIX, self.wechatpay)
        app.mount(ALIPAY_PREFIX, self.alipay)
        app.mount(INSURANCE_PREFIX, self.insurance)


def _write_private(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    data = content.encode("utf-8") if isinstance(content, str) else content
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return path


def _keys(path: Path, kind: type[K]) -> K:
    if path.exists():
        fields: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return kind(**fields)
    keys = kind.generate()
    _write_private(path, json.dumps(asdict(keys)))
    return keys


def _insurance_key(path: Path) -> bytes:
    if not path.exists():
        _write_private(path, secrets.token_hex(32))
    return path.read_bytes().strip()


def prepare(settings: Settings) -> SimulatedProviders:
    """Points `settings` at the simulators (key files, gateway URLs, the providers offered)
    and builds them; mount them on the app with `SimulatedProviders.mount`."""
    directory = settings.secret_file.parent / "payments-sim"
    base = settings.public_base_url.rstrip("/")

    wechat = _keys(directory / "wechatpay-keys.json", WechatPaySimulatorKeys)
    for name, value in wechat.write_merchant_files(directory / "wechatpay").items():
        setattr(settings, name, value)
    settings.wechatpay_gateway_url = base + WECHATPAY_PREFIX

    alipay = _keys(directory / "alipay-keys.json", AlipaySimulatorKeys)
    settings.alipay_app_id = alipay.app_id
    settings.alipay_private_key_file = _write_private(
        directory / "alipay" / "app_private_key.pem", alipay.app_private_key_pem
    )
    settings.alipay_public_key_file = _write_private(
        directory / "alipay" / "alipay_public_key.pem", alipay.alipay_public_key_pem
    )
    settings.alipay_gateway_url = base + ALIPAY_PREFIX + "/gateway.do"

    key_file = directory / "insurance" / "hospital.key"
    insurance_key = _insurance_key(key_file)
    settings.insurance_gateway_url = base + INSURANCE_PREFIX
    settings.insurance_org_code = INSURANCE_ORG_CODE
    settings.insurance_key_file = key_file

    if not settings.payment_providers:
        settings.payment_providers = ["wechatpay", "alipay"]
    return SimulatedProviders(
        wechatpay=build_wechatpay_simulator(keys=wechat, public_base_url=base + WECHATPAY_PREFIX),
        alipay=build_alipay_simulator(keys=alipay, public_base_url=base + ALIPAY_PREFIX),
        insurance=build_insurance_simulator(org_code=INSURANCE_ORG_CODE, key=insurance_key),
    )
