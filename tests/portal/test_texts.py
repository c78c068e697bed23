"""Every sentence the pages use exists in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import yuyue.portal
from yuyue.booking.states import AppointmentStatus, RefundShown
from yuyue.booking.waitlist.states import WaitlistStatus
from yuyue.frontdesk import texts  # noqa: F401  (the live notices share the front desk sentences)
from yuyue.kit import i18n
from yuyue.patients.rules import IdType
from yuyue.payments.gateway import Provider
from yuyue.portal import pages  # noqa: F401  (registers the page sentences)
from yuyue.portal.paying import ONLINE
from yuyue.scheduling.enums import Period

PORTAL = Path(yuyue.portal.__file__).parent
LITERAL = re.compile(r"""\bt\(\s*["']([a-z_.]+)["']""")


def used_ids() -> set[str]:
    found: set[str] = set()
    for path in [*PORTAL.glob("templates/*.html"), *PORTAL.glob("*.py")]:
        found.update(
            m for m in LITERAL.findall(path.read_text("utf-8")) if not m.endswith((".", "_"))
        )
    return found


def composed_ids() -> set[str]:
    """Ids the templates build from a prefix and a value, e.g. t("status." ~ a.status)."""
    return {
        *(f"period.{p.value}" for p in Period),
        *(f"status.{s.value}" for s in AppointmentStatus),
        *(f"idtype.{t.value}" for t in IdType),
        *(f"waitlist.{w.value}" for w in WaitlistStatus),
        *(f"page.waitlist_done_{n}" for n in ("joined", "decline", "leave")),
        *(f"provider.{p.value}" for p in Provider),
        *(f"pay.with.{p.value}" for p in ONLINE),
        *(f"refund.{r.value}" for r in RefundShown if r is not RefundShown.NONE),
        *(f"refund.{r.value}_hint" for r in RefundShown if r is not RefundShown.NONE),
        *(f"reschedule.done_{fee}" for fee in ("carried", "refunded")),
    }


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_sentence_the_pages_use_is_translated(locale: str) -> None:
    ids = used_ids() | composed_ids()
    assert len(ids) > 150
    missing = sorted(ids - i18n.message_ids(locale))
    assert missing == []
