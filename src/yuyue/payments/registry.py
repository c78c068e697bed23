"""The gateways this process can use, one per provider, built from settings.

Adapters live in `payments/providers/`; each reads its merchant settings (key files, ids,
the gateway URL). Tests may put their own gateway under a provider
(`gateways[Provider.WECHATPAY] = double`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from yuyue.config import Settings
from yuyue.payments.gateway import Gateway, Provider
from yuyue.payments.insurance import InsuranceGateway
from yuyue.payments.rules import ProviderUnavailable


class Gateways:
    """Provider → Gateway. Asking for a provider the hospital has not configured is a
    refusal the patient can read (`provider_unavailable`), not a crash."""

    def __init__(self, gateways: Mapping[Provider, Gateway] | None = None) -> None:
        self._gateways: dict[Provider, Gateway] = dict(gateways or {})

    def get(self, provider: Provider) -> Gateway:
        gateway = self._gateways.get(provider)
        if gateway is None:
            raise ProviderUnavailable(provider=provider.value)
        return gateway

    def __setitem__(self, provider: Provider, gateway: Gateway) -> None:
        self._gateways[provider] = gateway

    def __delitem__(self, provider: Provider) -> None:
        del self._gateways[provider]

    def __contains__(self, provider: object) -> bool:
        return provider in self._gateways

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._gateways)


def gateways_from_settings(settings: Settings) -> Gateways:
    """The adapters whose merchant settings are complete, limited to
    `settings.payment_providers` when that names any. A half-configured provider stops
    start-up with the missing setting named (never its value)."""
    from yuyue.payments.providers.alipay import alipay_from_settings
    from yuyue.payments.providers.wechatpay import wechatpay_from_settings

    wanted = {Provider(name) for name in settings.payment_providers}
    built: dict[Provider, Gateway | None] = {
        Provider.WECHATPAY: wechatpay_from_settings(settings),
        Provider.ALIPAY: alipay_from_settings(settings),
    }
    return Gateways(
        {
            provider: gateway
            for provider, gateway in built.items()
            if gateway is not None and (not wanted or provider in wanted)
        }
    )


def insurance_gateway_from_settings(settings: Settings) -> InsuranceGateway | None:
    """The medical-insurance platform's adapter (`AppContext.insurance`), or None when it
    is not configured or `settings.payment_providers` names others only. It stands beside
    the `Gateways`, not in them: pre-authorisation is not a `Gateway` (payments/insurance.py)."""
    from yuyue.payments.providers.insurance import insurance_from_settings

    wanted = {Provider(name) for name in settings.payment_providers}
    if wanted and Provider.INSURANCE not in wanted:
        return None
    return insurance_from_settings(settings)
