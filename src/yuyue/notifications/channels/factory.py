"""Builds the configured SMS and email senders from settings, refusing half a configuration
at start-up rather than at the first message."""

from __future__ import annotations

from typing import Protocol

import httpx

from yuyue.config import Settings
from yuyue.notifications.channels.alibaba import ALIBABA_SMS_ENDPOINT, AlibabaSmsSender
from yuyue.notifications.channels.base import EmailSender, SmsSender
from yuyue.notifications.channels.smtp import SmtpEmailSender
from yuyue.notifications.channels.tencent import TENCENT_SMS_ENDPOINT, TencentSmsSender

SMS_PROVIDERS = ("console", "alibaba", "tencent")


class HttpSmsSender(SmsSender, Protocol):
    """An SMS sender holding HTTP connections open between messages; close it on shutdown."""

    async def aclose(self) -> None: ...


def build_sms_sender(
    settings: Settings, *, client: httpx.AsyncClient | None = None
) -> HttpSmsSender | None:
    """None for "console" (messages are only logged and shown on the demo phone).

    `client` lets tests and the worker share one connection pool; the caller then closes
    it. Without one, the sender opens its own and `aclose()` closes it.
    """
    provider = settings.sms_provider.strip().lower()
    if provider == "console":
        return None
    if provider == "alibaba":
        key_id, secret = _credentials(settings, provider)
        return AlibabaSmsSender(
            access_key_id=key_id,
            access_key_secret=secret,
            sign_name=_sign_name(settings),
            region=settings.sms_region,
            endpoint=settings.sms_endpoint or ALIBABA_SMS_ENDPOINT,
            timeout_seconds=settings.sms_timeout_seconds,
            client=client,
        )
    if provider == "tencent":
        key_id, secret = _credentials(settings, provider)
        if not settings.sms_app_id:
            raise ValueError("YUYUE_SMS_APP_ID is required for tencent (the SmsSdkAppId)")
        if not settings.sms_region.startswith("ap-"):
            raise ValueError(
                f"YUYUE_SMS_REGION {settings.sms_region!r} is not a Tencent Cloud region; "
                "set ap-guangzhou, ap-beijing or ap-nanjing"
            )
        return TencentSmsSender(
            secret_id=key_id,
            secret_key=secret,
            sdk_app_id=settings.sms_app_id,
            sign_name=_sign_name(settings),
            region=settings.sms_region,
            endpoint=settings.sms_endpoint or TENCENT_SMS_ENDPOINT,
            timeout_seconds=settings.sms_timeout_seconds,
            client=client,
        )
    raise ValueError(
        f"unknown YUYUE_SMS_PROVIDER {settings.sms_provider!r}; choose one of "
        + ", ".join(SMS_PROVIDERS)
    )


def build_email_sender(settings: Settings) -> EmailSender | None:
    """None without YUYUE_SMTP_HOST: the email channel is off."""
    if not settings.smtp_host:
        return None
    if settings.smtp_username and not settings.smtp_password:
        raise ValueError("YUYUE_SMTP_USERNAME is set but YUYUE_SMTP_PASSWORD is not")
    return SmtpEmailSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_sender,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        timeout_seconds=settings.smtp_timeout_seconds,
    )


def _credentials(settings: Settings, provider: str) -> tuple[str, str]:
    key_id, secret = settings.sms_access_key_id, settings.sms_access_key_secret
    if not key_id or not secret:
        missing = [
            name
            for name, value in (
                ("YUYUE_SMS_ACCESS_KEY_ID", key_id),
                ("YUYUE_SMS_ACCESS_KEY_SECRET", secret),
            )
            if not value
        ]
        raise ValueError(f"{provider} SMS needs " + " and ".join(missing))
    return key_id, secret


def _sign_name(settings: Settings) -> str:
    # Mainland SMS without an approved signature (the 【…】 prefix) is refused by every
    # provider; better to say so now.
    if not settings.sms_sign_name.strip():
        raise ValueError("YUYUE_SMS_SIGN_NAME is required: the provider-approved signature")
    return settings.sms_sign_name
