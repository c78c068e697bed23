"""What an appointment's `payment.state` reads as its refund moves (pure)."""

from __future__ import annotations

import pytest

from yuyue.booking.rules import payment_state_shown
from yuyue.booking.states import RefundShown


@pytest.mark.parametrize(
    ("refund", "shown"),
    [
        (RefundShown.NONE, "paid"),
        (RefundShown.PENDING, "refunding"),
        (RefundShown.AT_WINDOW, "refunding"),
        (RefundShown.REFUNDED, "refunded"),
        (RefundShown.FAILED, "refund_failed"),
    ],
)
def test_the_payment_reads_as_where_its_refund_is(refund: RefundShown, shown: str) -> None:
    assert payment_state_shown(refund.value) == shown


def test_every_refund_state_has_a_reading() -> None:
    assert {payment_state_shown(r.value) for r in RefundShown} == {
        "paid",
        "refunding",
        "refunded",
        "refund_failed",
    }
