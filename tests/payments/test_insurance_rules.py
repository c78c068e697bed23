"""The pure rules of medical-insurance payments: when a hold is settled or released, the
split's check, the insurance number's form and its mask. No database."""

from __future__ import annotations

import pytest

from yuyue.payments import rules
from yuyue.payments.rules import (
    AppointmentMoment,
    InsuranceSettlement,
    InsuranceStep,
    Split,
)
from yuyue.payments.states import OrderState

M = AppointmentMoment
AT_BOOKING = InsuranceSettlement.AT_BOOKING
AFTER_VISIT = InsuranceSettlement.AFTER_VISIT


@pytest.mark.parametrize(
    ("moment", "settlement", "step"),
    [
        (M.BOOKED, AT_BOOKING, InsuranceStep.SETTLE),
        (M.BOOKED, AFTER_VISIT, InsuranceStep.NOTHING),
        (M.COMPLETED, AFTER_VISIT, InsuranceStep.SETTLE),
        (M.COMPLETED, AT_BOOKING, InsuranceStep.SETTLE),  # a settlement still owed
        (M.CANCELLED, AFTER_VISIT, InsuranceStep.RELEASE),
        (M.CANCELLED, AT_BOOKING, InsuranceStep.RELEASE),  # settling had not happened yet
        (M.NO_SHOW, AFTER_VISIT, InsuranceStep.RELEASE),
    ],
)
def test_an_unsettled_hold_moves_with_its_appointment(
    moment: AppointmentMoment, settlement: InsuranceSettlement, step: InsuranceStep
) -> None:
    assert rules.insurance_step(OrderState.AUTHORIZED, moment, settlement=settlement) is step


@pytest.mark.parametrize("state", [s for s in OrderState if s is not OrderState.AUTHORIZED])
@pytest.mark.parametrize("moment", list(AppointmentMoment))
def test_only_an_unsettled_hold_moves(state: OrderState, moment: AppointmentMoment) -> None:
    # A settled order's cancellation is a refund, which the common refund path makes.
    assert rules.insurance_step(state, moment, settlement=AFTER_VISIT) is InsuranceStep.NOTHING


def test_the_order_states_of_a_pre_authorisation() -> None:
    t = rules.order_transition
    assert t(OrderState.CREATED, "authorize") is OrderState.AUTHORIZED
    assert t(OrderState.AUTHORIZED, "settle") is OrderState.PAID
    assert t(OrderState.AUTHORIZED, "release") is OrderState.RELEASED
    assert t(OrderState.RELEASED, "settle") is OrderState.PAID  # crossed a release: refunded
    with pytest.raises(rules.OrderTransitionRefused):
        t(OrderState.PAID, "release")
    with pytest.raises(rules.OrderTransitionRefused):
        t(OrderState.RELEASED, "authorize")


def test_a_split_must_add_up_to_the_fee_exactly() -> None:
    split = Split(pool_fen=5600, account_fen=1000, self_pay_fen=1400)
    assert rules.check_split(split, fee_fen=8000) is split
    assert split.insurer_fen == 6600
    with pytest.raises(rules.SplitMismatch):
        rules.check_split(split, fee_fen=8001)
    with pytest.raises(rules.SplitMismatch):
        rules.check_split(Split(9000, 0, -1000), fee_fen=8000)


def test_the_insurance_number_is_cleaned_checked_and_masked() -> None:
    assert rules.insurance_id(" e1234-5678 ") == "E12345678"
    with pytest.raises(rules.InsuranceIdRequired):
        rules.insurance_id("  ")
    with pytest.raises(rules.InvalidInsuranceId):
        rules.insurance_id("E1?345678")
    with pytest.raises(rules.InvalidInsuranceId):
        rules.insurance_id("E123")
    assert rules.mask_insurance_id("E12345678") == "E1*****78"
    assert rules.mask_insurance_id("11010519491231002X") == "1101**********002X"
