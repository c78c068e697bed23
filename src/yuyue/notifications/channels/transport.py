"""What an HTTP provider's silence or garbled answer means for the worker's next try."""

from __future__ import annotations

import httpx

from yuyue.notifications.channels.base import SendOutcome


def transport_failure(error: httpx.HTTPError) -> SendOutcome:
    # Once the request may have left (a read timeout, a dropped connection), the provider
    # may have sent the text: the worker should ask `was_sent` before trying again.
    what = "timeout" if isinstance(error, httpx.TimeoutException) else "network error"
    unsure = not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return SendOutcome(
        accepted=False,
        retryable=True,
        reason=f"{what}: {type(error).__name__}",
        details={"outcome_unknown": "true"} if unsure else {},
    )


def unreadable_answer(http_status: int) -> SendOutcome:
    # A 2xx we cannot read may still have been a success; a 5xx or 429 is the provider's
    # trouble; any other 4xx without a code (a wrong endpoint, a proxy's page) is ours.
    if http_status < 400:
        return SendOutcome(
            accepted=False,
            retryable=True,
            reason=f"unreadable answer (HTTP {http_status})",
            details={"outcome_unknown": "true"},
        )
    return SendOutcome(
        accepted=False,
        retryable=http_status >= 500 or http_status == 429,
        reason=f"HTTP {http_status}",
    )
