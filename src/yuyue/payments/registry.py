"""The gateways this process can use, one per provider, built from settings.

Adapters live in `payments/providers/`; each is wired here once it exists (a
`wechatpay_from_settings`, an `alipay_from_settings`). Tests and the demo put their own
gateway under a provider (`gateways[Provider.WECHATPAY] = double`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from yuyue.config import Settings
from yuyue.payments.gateway import Gateway, Provider
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
    """No real adapter is wired yet: every provider is unavailable until its adapter's
    factory is added here (by `settings.payment_providers`)."""
    del settings
    return Gateways()
