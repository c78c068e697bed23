"""Paying a held appointment by medical-insurance pre-authorisation, on both databases,
against the simulated insurance platform served on a real port: the hold books, the
settlement (at booking or after the visit) records the split, a cancellation or a no-show
before settlement releases the hold, a cancellation after it reverses the settlement
through the one refund path, and the platform's notifications are verified."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import World
from tests.helpers import assert_problem, staff_auth
from tests.payments.serving import serve_asgi
from tests.payments.support import appointment, fee_session, hold, order_for, refunds, staff
from yuyue.booking import service as booking_service
from yuyue.kit.clock import FixedClock
from yuyue.payments import insurance_service
from yuyue.payments.insurance import HEADER_SIGNATURE
from yuyue.payments.models import InsuranceHold, PaymentAttempt
from yuyue.payments.providers.insurance import HttpInsuranceGateway
from yuyue.payments.simulators.insurance import (
    InsuranceSimulator,
    InsuredPerson,
    Scheme,
    build_insurance_simulator,
    insurance_simulator_of,
)
from yuyue.staff.enums import Role
from yuyue.web.context import AppContext

ORG = "H11010500001"
EMPLOYEE = "E12345678"  # 70% pool, 10 yuan in the personal account
RESIDENT = "R87654321"  # a 10-yuan deductible, then 50% pool, empty account
FEE = 8000


@dataclass
class Platform:
    sim: InsuranceSimulator
    gateway: HttpInsuranceGateway


@pytest_asyncio.fixture
async def platform(ctx: AppContext, clock: FixedClock) -> AsyncIterator[Platform]:
    key = secrets.token_hex(32).encode()
    app = build_insurance_simulator(
        org_code=ORG,
        key=key,
        clock=clock,
        schemes={
            "employee": Scheme(deductible_fen=0, pool_ratio_bp=7000),
            "resident": Scheme(deductible_fen=1000, pool_ratio_bp=5000),
        },
        insured={
            EMPLOYEE: InsuredPerson(scheme="employee", account_balance_fen=1000),
            RESIDENT: InsuredPerson(scheme="resident", account_balance_fen=0),
        },
    )
    with serve_asgi(app) as url:
        gateway = HttpInsuranceGateway(base_url=url, org_code=ORG, key=key, clock=clock)
        ctx.insurance = gateway
        try:
            yield Platform(insurance_simulator_of(app), gateway)
        finally:
            ctx.insurance = None
            await gateway.aclose()


async def pay(
    client: httpx.AsyncClient, world: World, held: uuid.UUID, insurance_id: str = EMPLOYEE
) -> httpx.Response:
    return await client.post(
        f"/api/v1/appointments/{held}/payments",
        json={"provider": "insurance", "method": "insurance_mobile", "insurance_id": insurance_id},
        headers=world.auth,
    )


async def settle_at_booking(client: httpx.AsyncClient, ctx: AppContext, world: World) -> None:
    admin = await staff_auth(client, ctx, world, Role.ADMIN)
    answer = await client.put(
        "/api/v1/payment-settings", json={"insurance_settlement": "booking"}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"insurance_settlement": "booking"}


async def change(ctx: AppContext, world: World, held: uuid.UUID, *actions: str) -> None:
    async def work(session: AsyncSession) -> None:
        for action in actions:
            found = await booking_service.lock_appointment(
                session, hospital_id=world.hospital.id, appointment_id=held
            )
            await booking_service.change_status(
                session,
                actor=staff(world, Role.NURSE),
                appointment=found,
                action=action,  # type: ignore[arg-type]
                now=ctx.clock.now(),
            )

    await ctx.db.transact(work)


async def run_pass(ctx: AppContext, platform: Platform) -> insurance_service.InsurancePass:
    return await insurance_service.run_insurance_pass(
        db=ctx.db, insurance=platform.gateway, cipher=ctx.cipher, clock=ctx.clock
    )


async def insurance_hold(ctx: AppContext, order_id: uuid.UUID) -> InsuranceHold:
    async with ctx.db.read() as s:
        found = await s.scalar(select(InsuranceHold).where(InsuranceHold.order_id == order_id))
    assert found is not None
    return found


def sim_hold(platform: Platform, out_trade_no: str) -> object:
    return platform.sim.holds[platform.sim.holds_by_trade[out_trade_no]]


class TestPreauthorisation:
    async def test_the_hold_books_and_the_number_is_kept_encrypted_and_masked(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, platform: Platform
    ) -> None:
        held = await hold(ctx, world, await fee_session(ctx, world))

        answer = await pay(client, world, held)

        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["method"] == "insurance_mobile"
        assert body["order_state"] == "authorized" and body["split"] is None
        shown = (await client.get(f"/api/v1/appointments/{held}", headers=world.auth)).json()
        assert shown["status"] == "booked"
        assert shown["payment"] == {
            "state": "paid",
            "amount_fen": FEE,
            "provider": "insurance",
            "split": None,
        }
        order = await order_for(ctx, held)
        assert order.state == "authorized"
        stored = await insurance_hold(ctx, order.id)
        assert EMPLOYEE not in stored.insured_cipher
        assert ctx.cipher.decrypt(stored.insured_cipher) == EMPLOYEE
        assert stored.insured_masked == "E1*****78"
        platform_hold = platform.sim.holds[stored.auth_no or ""]
        assert platform_hold.held_fen == FEE and platform_hold.settlement_no is None
        # Nothing is settled before the visit (the default setting).
        assert await run_pass(ctx, platform) == insurance_service.InsurancePass(0, 0, [])
        assert platform.sim.settlements == {}

    async def test_a_refused_preauthorisation_keeps_the_hold_and_takes_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, platform: Platform
    ) -> None:
        held = await hold(ctx, world, await fee_session(ctx, world))

        answer = await pay(client, world, held, insurance_id="X0000000")

        problem = assert_problem(answer, 422, "insurance_refused")
        assert "INSURED_NOT_FOUND" in problem["detail"]
        assert (await appointment(ctx, held)).status == "held"
        assert (await order_for(ctx, held)).state == "closed"
        assert await run_pass(ctx, platform) == insurance_service.InsurancePass(0, 0, [])

    async def test_the_number_is_required_and_checked(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, platform: Platform
    ) -> None:
        held = await hold(ctx, world, await fee_session(ctx, world))
        url = f"/api/v1/appointments/{held}/payments"
        missing = await client.post(
            url, json={"provider": "insurance", "method": "insurance_mobile"}, headers=world.auth
        )
        assert_problem(missing, 422, "insurance_id_required")
        assert_problem(await pay(client, world, held, "12?"), 422, "invalid_insurance_id")
        assert platform.sim.holds == {}


class TestSettlement:
    async def test_after_the_visit_completes_the_split_is_recorded_and_the_rest_released(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, platform: Platform
    ) -> None:
        held = await hold(ctx, world, await fee_session(ctx, world))
        assert (await pay(client, world, held)).status_code == 200
        await change(ctx, world, held, "check_in")
        assert (await run_pass(ctx, platform)).worked == 0

        await change(ctx, world, held, "complete")
        report = await run_pass(ctx, platform)

        assert report.worked == 1
        order = await order_for(ctx, held)
        # 70% of 80 yuan from the pool, the 10 yuan in the account, the rest the patient's.
        assert (order.state, order.pool_fen, order.account_fen, order.self_pay_fen) == (
            "paid",
            5600,
            1000,
            1400,
        )
        assert order.transaction_id in platform.sim.settlements
        platform_hold = sim_hold(platform, order.out_trade_no)
        assert platform_hold.released_fen == 0  # type: ignore[attr-defined]
        shown = (await client.get(f"/api/v1/appointments/{held}", headers=world.auth)).json()
        assert shown["status"] == "completed"
        assert shown["payment"]["split"] == {
            "pool_fen": 5600,
            "account_fen": 1000,
            "self_pay_fen": 1400,
        }
        # Done once: the next pass has nothing to do.
        assert (await run_pass(ctx, platform)).worked == 0
        assert len(platform.sim.settlements) == 1

    async def test_at_booking_when_the_hospital_settles_then(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, platform: Platform
    ) -> None:
        await settle_at_booking(client, ctx, world)
        held = await hold(ctx, world, await fee_session(ctx, world))

        answer = await pay(client, world, held, RESIDENT)

        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["order_state"] == "paid"
        # A 10-yuan deductible, half of the other 70 yuan from the pool, an empty account.
        assert body["split"] == {"pool_fen": 3500, "account_fen": 0, "self_pay_fen": 4500}
        assert sum(body["split"].values()) == FEE
        order = await order_for(ctx, held)
        assert sim_hold(platform, order.out_trade_no).released_fen == 0  # type: ignore[attr-defined]
        assert (await insurance_hold(ctx, order.id)).released_at is not None

    async def test_the_split_adds_up_to_the_fee_for_every_scheme(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, platform: Platform
    ) -> None:
        await settle_at_booking(client, ctx, world)
        clinic = await fee_session(ctx, world)
        for patient, number in ((world.patient, EMPLOYEE), (world.other_patient, RESIDENT)):
            held = await hold(ctx, world, clinic, patient_id=patient.id)
            assert (await pay(client, world, held, number)).status_code == 200
            order = await order_for(ctx, held)
            assert order.pool_fen is not None and order.account_fen is not None
            assert order.self_pay_fen is not None
            assert order.pool_fen + order.account_fen + order.self_pay_fen == order.amount_fen
            settled = platform.sim.settlements[order.transaction_id or ""]
            assert (settled.pool_fen, settled.account_fen, settled.self_pay_fen) == (
                order.pool_fen,
                order.account_fen,
                order.self_pay_fen,
            )

    async def test_the_receipt_shows_the_split(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, platform: Platform
    ) -> None:
        await settle_at_booking(client, ctx, world)
        held = await hold(ctx, world, await fee_session(ctx, world))
        assert_problem(
            await client.get(f"/api/v1/appointments/{held}/receipt", headers=world.auth),
            409,
            "no_receipt",
        )
        await pay(client, world, held)

        receipt = await client.get(f"/api/v1/appointments/{held}/receipt", headers=world.auth)

        assert receipt.status_code == 200, receipt.text
        order = await order_for(ctx, held)
        assert receipt.json() == {
            "appointment_id": str(held),
            "fee_fen": FEE,
            "state": "paid",
            "provider": "insurance",
            "method": "insurance_mobile",
            "paid_at": "2026-11-20T02:00:00Z",
            "receipt_no": order.transaction_id,
            "split": {"pool_fen": 5600, "account_fen": 1000, "self_pay_fen": 1400},
            "insured": "E1*****78",
        }


class TestReleaseAndRefund:
    async def test_a_cancellation_before_settlement_releases_the_hold(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, platform: Platform
    ) -> None:
        held = await hold(ctx, world, await fee_session(ctx, world))
        await pay(client, world, held)

        cancelled = await client.post(f"/api/v1/appointments/{held}/cancel", headers=world.auth)

        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["refund"] is None  # nothing was taken
        order = await order_for(ctx, held)
        assert order.state == "released"
        assert sim_hold(platform, order.out_trade_no).released_fen is None  # type: ignore[attr-defined]
        assert (await run_pass(ctx, platform)).worked == 1
        assert sim_hold(platform, order.out_trade_no).released_fen == FEE  # type: ignore[attr-defined]
        assert platform.sim.settlements == {}
        assert await refunds(ctx) == []
        assert (await run_pass(ctx, platform)).worked == 0

    async def test_a_no_show_releases_the_hold(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, platform: Platform
    ) -> None:
        held = await hold(ctx, world, await fee_session(ctx, world))
        await pay(client, world, held)

        await change(ctx, world, held, "mark_no_show")
        await run_pass(ctx, platform)

        order = await order_for(ctx, held)
        assert order.state == "released" and order.pool_fen is None
        assert sim_hold(platform, order.out_trade_no).released_fen == FEE  # type: ignore[attr-defined]
        assert platform.sim.settlements == {} and await refunds(ctx) == []

    async def test_a_cancellation_after_settlement_refunds_the_settlement(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, platform: Platform
    ) -> None:
        await settle_at_booking(client, ctx, world)
        held = await hold(ctx, world, await fee_session(ctx, world))
        await pay(client, world, held)
        assert platform.sim.insured[EMPLOYEE].account_balance_fen == 0

        cancelled = await client.post(f"/api/v1/appointments/{held}/cancel", headers=world.auth)

        assert cancelled.json()["refund"] == {"state": "pending"}
        [refund] = await refunds(ctx)
        assert (refund.state, refund.amount_fen, refund.reason) == ("requested", FEE, "patient")
        report = await run_pass(ctx, platform)
        assert report.refunds_sent == 1
        order = await order_for(ctx, held)
        settled = platform.sim.settlements[order.transaction_id or ""]
        assert settled.refund is not None
        [refund] = await refunds(ctx)
        assert refund.state == "succeeded" and refund.provider_refund_id == settled.refund.refund_no
        assert order.state == "refunded"
        assert (await appointment(ctx, held)).refund_state == "refunded"
        # The platform gave the personal account its 10 yuan back.
        assert platform.sim.insured[EMPLOYEE].account_balance_fen == 1000
        assert (await run_pass(ctx, platform)).refunds_sent == 0


class TestNotifications:
    async def test_a_bad_signature_changes_nothing_and_the_genuine_one_settles_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, platform: Platform
    ) -> None:
        held = await hold(ctx, world, await fee_session(ctx, world))
        await pay(client, world, held)
        order = await order_for(ctx, held)
        auth_no = (await insurance_hold(ctx, order.id)).auth_no or ""
        # The platform settles (a call whose answer we lost) and notifies.
        await platform.gateway.settle(auth_no=auth_no, total_fen=FEE)
        [sent] = platform.sim.notifications
        url = "/api/v1/payments/insurance/notify"

        forged = dict(sent.headers)
        forged[HEADER_SIGNATURE] = "A" * 44
        refused = await client.post(url, content=sent.body, headers=forged)
        altered = await client.post(
            url, content=sent.body.replace(b"5600", b"7000"), headers=sent.headers
        )

        assert refused.status_code == 500 and altered.status_code == 500
        assert (await order_for(ctx, held)).state == "authorized"
        async with ctx.db.read() as s:
            outcomes = (
                await s.scalars(
                    select(PaymentAttempt.outcome).where(PaymentAttempt.kind == "notification")
                )
            ).all()
        assert outcomes == ["rejected", "rejected"]

        accepted = await client.post(url, content=sent.body, headers=sent.headers)
        again = await client.post(url, content=sent.body, headers=sent.headers)

        assert accepted.status_code == 200 and again.status_code == 200
        assert accepted.json() == {"code": "SUCCESS"}
        order = await order_for(ctx, held)
        assert (order.state, order.pool_fen, order.account_fen, order.self_pay_fen) == (
            "paid",
            5600,
            1000,
            1400,
        )
        shown = (await client.get(f"/api/v1/appointments/{held}", headers=world.auth)).json()
        assert shown["payment"]["split"]["pool_fen"] == 5600
        # The rest of the hold is released by the pass; no second settlement is asked for.
        await run_pass(ctx, platform)
        assert len(platform.sim.settlements) == 1
        assert sim_hold(platform, order.out_trade_no).released_fen == 0  # type: ignore[attr-defined]
