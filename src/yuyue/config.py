"""Settings from the environment (prefix ``YUYUE_``); defaults run on embedded SQLite."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from yuyue.kit.crypto import MasterSecrets

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./yuyue.db"


def normalise_database_url(url: str) -> str:
    """Accepts the URLs operators type and picks the async driver yuyue runs on."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUYUE_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # Master secret for field encryption, blind indexes and signed tokens (urlsafe base64,
    # >= 32 bytes). When unset, one is generated once into `secret_file` beside the data,
    # which suits a single machine; production sets it from a secret store.
    secret_key: str | None = Field(default=None, repr=False)
    secret_file: Path = Path(".yuyue/secret")
    # The secrets being replaced, comma-separated, while a rotation runs (docs/operations.md,
    # "Keys"): they only open what they sealed and verify what they signed; everything new
    # is sealed and signed with the current secret.
    previous_secret_keys: str | None = Field(default=None, repr=False)
    # Shared by every serving process and node: the sold-out memory, idempotency keys,
    # "places changed" signals, the live bus and huey's queue (`kit/redis.py`). Optional:
    # without it each process keeps its own, which is right for one process.
    redis_url: str | None = None
    hospital_code: str = "demo"
    # Background jobs (message delivery, reminders, expired holds, closing waitlists) run
    # inside `yuyue serve` unless a separate `yuyue worker` is deployed.
    worker_in_process: bool = True
    # How long a "sold out" answer may be served from memory before the database is asked
    # again. A place given back clears it at once: in this process, and with Redis in every
    # process; without Redis other processes see it within this.
    sold_out_cache_seconds: float = 2.0
    # How often each serving process adds its counted booking attempts (booked, sold out,
    # refused) to the database for the demand heat map (`booking/demand.py`); also on
    # shutdown. A process that dies without shutting down loses at most this much.
    demand_flush_seconds: float = Field(default=30.0, gt=0.0)
    # How long a finished session or slot list may be served before it is built again
    # (0 turns the cache off). Places taken or given back drop it at once: in this
    # process, and with Redis in every process; without Redis other processes' changes
    # show within this. One second is the promised bound.
    availability_cache_seconds: float = Field(default=1.0, ge=0.0, le=1.0)
    # Serving processes on this machine (`serve --workers`); with more than one and no
    # Redis, caches cannot vouch for idempotency keys seen by other processes, so those
    # requests consult the database.
    serving_processes: int = 1
    staff_token_hours: int = 12
    # Database connections kept open per serving process (PostgreSQL); several processes
    # together must stay under the server's max_connections.
    db_pool_size: int = 40
    # Group commit on PostgreSQL (kit/groupcommit.py): how many booking transactions run at
    # once, and how many bookings one of them carries. More in flight than the machine has
    # cores only makes them contend, and fewer, fuller groups spend less on BEGIN and
    # COMMIT; raise the first with the database server's cores.
    booking_groups_in_flight: int = Field(default=4, ge=1, le=64)
    booking_group_size: int = Field(default=6, ge=1, le=64)
    sql_echo: bool = False
    # The demo hospital: messages also land on a demo phone page and the console, and
    # the sign-in page links to it. Never on in production.
    demo_mode: bool = False
    # Background jobs (huey): its own SQLite file by default; Redis (`redis_url`) when
    # workers run on several machines.
    job_storage: Path = Path(".yuyue/jobs.db")
    job_threads: int = 2
    # SMS: "console" (log and demo phone only), "alibaba" (Alibaba Cloud SendSms) or
    # "tencent" (Tencent Cloud SendSms). Template codes are those approved by the provider,
    # as JSON {"booking_confirmed": "SMS_123", ...}.
    sms_provider: str = "console"
    sms_endpoint: str | None = None
    sms_access_key_id: str | None = None
    sms_access_key_secret: str | None = Field(default=None, repr=False)
    sms_sign_name: str = ""
    sms_app_id: str | None = None
    sms_region: str = "cn-hangzhou"
    sms_templates: dict[str, str] = Field(default_factory=dict)
    sms_timeout_seconds: float = 5.0
    # Email over SMTP; no host means no email channel.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_sender: str = "yuyue@localhost"
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = 10.0
    # Patient sign-in on the web pages.
    web_session_days: int = 30
    public_base_url: str = "http://127.0.0.1:8000"
    # Logs: "text" for a terminal, "json" (one object per line, with the request id) for a
    # log shipper. Identity numbers, phones and tokens are masked in both.
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # Payments. Merchant keys are read from files (owner-only, outside the repository) and
    # never logged. `payments_simulated` serves local stand-ins for WeChat Pay, Alipay and
    # the medical-insurance platform under /sim/ and points the adapters at them: the demo
    # and the tests pay through the providers' real protocols without real money.
    payments_simulated: bool = False
    payment_providers: list[str] = Field(default_factory=list)  # e.g. ["wechatpay", "alipay"]
    wechatpay_gateway_url: str = "https://api.mch.weixin.qq.com"
    wechatpay_mchid: str | None = None
    wechatpay_appid: str | None = None
    wechatpay_cert_serial_no: str | None = None
    wechatpay_private_key_file: Path | None = None  # the merchant's API private key (PEM)
    wechatpay_apiv3_key_file: Path | None = Field(default=None, repr=False)
    # WeChat Pay's public key (the current scheme) or a folder for its platform certificates.
    wechatpay_public_key_file: Path | None = None
    wechatpay_public_key_id: str | None = None
    wechatpay_cert_dir: Path | None = None
    alipay_gateway_url: str = "https://openapi.alipay.com/gateway.do"
    alipay_app_id: str | None = None
    alipay_private_key_file: Path | None = None  # the application's RSA2 private key (PEM)
    alipay_public_key_file: Path | None = None  # Alipay's public key (PEM)
    insurance_gateway_url: str | None = None
    insurance_org_code: str | None = None  # the hospital's code at the insurance platform
    insurance_key_file: Path | None = Field(default=None, repr=False)

    @property
    def async_database_url(self) -> str:
        return normalise_database_url(self.database_url)

    @cached_property
    def master_secret(self) -> str:
        if self.secret_key:
            return self.secret_key
        return _load_or_create_secret(self.secret_file)

    @property
    def previous_master_secrets(self) -> tuple[str, ...]:
        text = self.previous_secret_keys or ""
        return tuple(part.strip() for part in text.split(",") if part.strip())

    def master_secrets(self) -> MasterSecrets:
        """The current secret and the previous ones, decoded and checked."""
        from yuyue.kit.crypto import load_master_secrets

        return load_master_secrets(self.master_secret, self.previous_master_secrets)


def _load_or_create_secret(path: Path) -> str:
    from yuyue.kit.crypto import generate_master_secret

    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = generate_master_secret()
    # Written owner-only: the file protects every identity number in the database.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    return secret
