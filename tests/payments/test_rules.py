"""The pure payment rules, table by table: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from yuyue.booking.states import AppointmentStatus, CancelReason, RefundShown
from yuyue.kit import i18n
from yuyue.payments import rules
from yuyue.payments.gateway import PayMethod, Provider
from yuyue.payments.states import OrderState, RefundReason, RefundState

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
O = OrderState  # noqa: E741
R = RefundState
S = AppointmentStatus


@pytest.mark.parametrize(
    ("provider", "method", "allowed"),
    [
        (Provider.WECHATPAY, PayMethod.JSAPI, True),
        (Provider.WECHATPAY, PayMethod.H5, True),
        (Provider.WECHATPAY, PayMethod.NATIVE, True),
        (Provider.WECHATPAY, PayMethod.WAP, False),
        (Provider.ALIPAY, PayMethod.WAP, True),
        (Provider.ALIPAY, PayMethod.PAGE, True),
        (Provider.ALIPAY, PayMethod.H5, False),
        (Provider.INSURANCE, PayMethod.INSURANCE_MOBILE, True),
        (Provider.WINDOW, PayMethod.CASH, False),  # the window is not paid online
        (Provider.WECHATPAY, PayMethod.CASH, False),
    ],
)
def test_each_provider_takes_its_own_online_methods(
    provider: Provider, method: PayMethod, allowed: bool
) -> None:
    if allowed:
        rules.check_online_method(provider, method)
    else:
        with pytest.raises(rules.MethodNotAllowed):
            rules.check_online_method(provider, method)


@pytest.mark.parametrize(
    ("method", "provider"),
    [
        (PayMethod.CASH, Provider.WINDOW),
        (PayMethod.BANK_CARD, Provider.WINDOW),
        (PayMethod.INSURANCE_CARD, Provider.INSURANCE),
        (PayMethod.H5, None),
        (PayMethod.INSURANCE_MOBILE, None),
    ],
)
def test_the_window_takes_cash_cards_and_the_insurance_card(
    method: PayMethod, provider: Provider | None
) -> None:
    if provider is None:
        with pytest.raises(rules.MethodNotAllowed):
            rules.window_provider(method)
    else:
        assert rules.window_provider(method) is provider


@pytest.mark.parametrize(
    ("status", "fee", "refusal"),
    [
        (S.HELD, 8000, None),
        (S.HELD, 0, rules.NoFee),
        (S.BOOKED, 8000, rules.NotPayable),
        (S.EXPIRED, 8000, rules.NotPayable),
        (S.CANCELLED, 8000, rules.NotPayable),
        (S.BOOKED, 0, rules.NoFee),
    ],
)
def test_only_a_held_appointment_with_a_fee_is_paid(
    status: AppointmentStatus, fee: int, refusal: type[Exception] | None
) -> None:
    if refusal is None:
        rules.check_payable(status, fee_fen=fee)
    else:
        with pytest.raises(refusal):
            rules.check_payable(status, fee_fen=fee)


HOLD_END = NOW + timedelta(minutes=15)


@pytest.mark.parametrize(
    ("state", "expires_at", "hold_ends", "now", "expected"),
    [
        (O.CREATED, HOLD_END, HOLD_END, NOW, True),
        (O.CREATED, HOLD_END, HOLD_END, HOLD_END, False),  # past its end
        (O.CREATED, HOLD_END, HOLD_END + timedelta(minutes=10), NOW, False),  # hold extended
        (O.CREATED, None, HOLD_END, NOW, False),
        (O.CLOSED, HOLD_END, HOLD_END, NOW, False),
        (O.PAID, HOLD_END, HOLD_END, NOW, False),
    ],
)
def test_an_open_order_is_shown_again_only_while_it_covers_the_hold(
    state: OrderState,
    expires_at: datetime | None,
    hold_ends: datetime,
    now: datetime,
    expected: bool,
) -> None:
    assert rules.reusable(state, expires_at=expires_at, hold_ends=hold_ends, now=now) is expected


ORDER_ACTIONS = ["pay", "close", "refund", "refunded", "refund_failed"]


@pytest.mark.parametrize("state", list(O))
@pytest.mark.parametrize("action", ORDER_ACTIONS)
def test_the_order_state_machine_allows_exactly_its_table(state: OrderState, action: str) -> None:
    expected = rules.ORDER_TRANSITIONS.get((state, action))
    if expected is None:
        with pytest.raises(rules.OrderTransitionRefused):
            rules.order_transition(state, action)
    else:
        assert rules.order_transition(state, action) is expected


def test_the_order_table_is_the_documented_one() -> None:
    assert dict(rules.ORDER_TRANSITIONS) == {
        (O.CREATED, "pay"): O.PAID,
        (O.CREATED, "close"): O.CLOSED,
        (O.CLOSED, "pay"): O.PAID,
        (O.PAID, "refund"): O.REFUNDING,
        (O.REFUNDING, "refunded"): O.REFUNDED,
        (O.REFUNDING, "refund_failed"): O.REFUND_FAILED,
        (O.REFUND_FAILED, "refunded"): O.REFUNDED,
        # Medical insurance's pre-authorisation (payments/insurance_service.py).
        (O.CREATED, "authorize"): O.AUTHORIZED,
        (O.CLOSED, "authorize"): O.AUTHORIZED,
        (O.AUTHORIZED, "settle"): O.PAID,
        (O.AUTHORIZED, "release"): O.RELEASED,
        (O.RELEASED, "settle"): O.PAID,
    }


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        (R.REQUESTED, "send", R.PROCESSING),
        (R.PROCESSING, "send", R.PROCESSING),
        (R.PROCESSING, "succeed", R.SUCCEEDED),
        (R.PROCESSING, "fail", R.FAILED),
        (R.AT_WINDOW, "refund_at_window", R.SUCCEEDED),
        (R.FAILED, "refund_at_window", R.SUCCEEDED),
        (R.SUCCEEDED, "refund_at_window", rules.RefundNotAtWindow),
        (R.REQUESTED, "refund_at_window", rules.RefundNotAtWindow),
        (R.SUCCEEDED, "send", rules.OrderTransitionRefused),
        (R.AT_WINDOW, "send", rules.OrderTransitionRefused),
    ],
)
def test_refund_transitions(state: RefundState, action: str, expected: object) -> None:
    if isinstance(expected, type):
        with pytest.raises(expected):
            rules.refund_transition(state, action)
    else:
        assert rules.refund_transition(state, action) is expected


@pytest.mark.parametrize(
    ("method", "invoice", "route"),
    [
        (PayMethod.JSAPI, False, rules.RefundRoute.ONLINE),
        (PayMethod.WAP, False, rules.RefundRoute.ONLINE),
        (PayMethod.INSURANCE_MOBILE, False, rules.RefundRoute.ONLINE),
        (PayMethod.H5, True, rules.RefundRoute.WINDOW),  # the printed invoice comes back first
        (PayMethod.CASH, False, rules.RefundRoute.WINDOW),
        (PayMethod.BANK_CARD, False, rules.RefundRoute.WINDOW),
        (PayMethod.INSURANCE_CARD, False, rules.RefundRoute.WINDOW),
    ],
)
def test_only_an_online_payment_without_an_invoice_is_refunded_online(
    method: PayMethod, invoice: bool, route: rules.RefundRoute
) -> None:
    assert rules.refund_route(method, invoice_printed=invoice) is route


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        (R.REQUESTED, RefundShown.PENDING),
        (R.PROCESSING, RefundShown.PENDING),
        (R.SUCCEEDED, RefundShown.REFUNDED),
        (R.FAILED, RefundShown.FAILED),
        (R.AT_WINDOW, RefundShown.AT_WINDOW),
    ],
)
def test_what_the_patient_sees_of_a_refund(state: RefundState, shown: RefundShown) -> None:
    assert rules.shown_state(state) is shown


@pytest.mark.parametrize("reason", list(CancelReason))
def test_every_cancellation_has_a_refund_reason(reason: CancelReason) -> None:
    assert rules.refund_reason(reason) is RefundReason(reason.value)


@pytest.mark.parametrize(
    ("tries", "wait"),
    [
        (1, timedelta(minutes=1)),
        (2, timedelta(minutes=5)),
        (3, timedelta(minutes=30)),
        (4, timedelta(hours=2)),
        (5, timedelta(hours=6)),
        (40, timedelta(hours=6)),  # capped: tried until the provider confirms
    ],
)
def test_refund_retries_back_off_and_are_capped(tries: int, wait: timedelta) -> None:
    assert rules.next_try(tries, now=NOW) == NOW + wait


@pytest.mark.parametrize(
    "error",
    [
        rules.ProviderUnavailable(provider="alipay"),
        rules.MethodNotAllowed(provider="wechatpay", method="wap", allowed="h5"),
        rules.NotPayable(state="booked"),
        rules.NoFee(),
        rules.RefundNotAtWindow(state="succeeded"),
        rules.InvoiceNotAllowed(state="created"),
        rules.GatewayUnavailable(reason="SYSTEM_ERROR"),
    ],
)
def test_every_refusal_reads_in_both_languages(error: rules.YuyueError) -> None:
    for locale in i18n.LOCALES:
        sentence = error.detail(locale)
        assert sentence and "{" not in sentence and not sentence.startswith("error.")
