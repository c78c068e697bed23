"""Medical-insurance pre-authorisation: the adapter against the simulated platform on a real
port, signatures both ways, and the platform's split, holds, releases and refunds."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request, Response

from tests.payments.serving import serve_asgi
from yuyue.config import Settings
from yuyue.kit.clock import FixedClock
from yuyue.payments.gateway import (
    GatewayError,
    InvalidNotification,
    NotificationKind,
    Provider,
    StatementKind,
    StatementNotReady,
    TradeState,
)
from yuyue.payments.insurance import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    InsuranceEvent,
    InsuranceGateway,
    operation_path,
    signed_headers,
)
from yuyue.payments.providers.insurance import HttpInsuranceGateway, insurance_from_settings
from yuyue.payments.reconcile import LocalCharge, LocalRefund, reconcile
from yuyue.payments.simulators.insurance import (
    InsuranceSimulator,
    InsuredPerson,
    Scheme,
    build_insurance_simulator,
    insurance_simulator_of,
)

ORG = "H11010500001"
# 10:00 in Shanghai on Friday 2026-11-20.
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
DAY = date(2026, 11, 20)
SCHEMES = {
    "employee": Scheme(deductible_fen=0, pool_ratio_bp=7000),
    "resident": Scheme(deductible_fen=1000, pool_ratio_bp=5000),
}


def people() -> dict[str, InsuredPerson]:
    return {
        "tok-employee": InsuredPerson(scheme="employee", account_balance_fen=1000),
        "tok-resident": InsuredPerson(scheme="resident", account_balance_fen=0),
        "tok-rich": InsuredPerson(scheme="employee", account_balance_fen=1_000_000),
    }


@dataclass
class Platform:
    url: str
    key: bytes
    clock: FixedClock
    sim: InsuranceSimulator


@pytest.fixture
def platform() -> Iterator[Platform]:
    key = secrets.token_hex(32).encode()
    clock = FixedClock(NOW)
    app = build_insurance_simulator(
        org_code=ORG, key=key, clock=clock, schemes=SCHEMES, insured=people()
    )
    with serve_asgi(app) as url:
        yield Platform(url, key, clock, insurance_simulator_of(app))


def adapter_for(
    url: str, key: bytes, clock: FixedClock, org_code: str = ORG
) -> HttpInsuranceGateway:
    return HttpInsuranceGateway(base_url=url, org_code=org_code, key=key, clock=clock)


@pytest_asyncio.fixture
async def gateway(platform: Platform) -> AsyncIterator[HttpInsuranceGateway]:
    adapter = adapter_for(platform.url, platform.key, platform.clock)
    yield adapter
    await adapter.aclose()


async def raw_call(
    url: str,
    operation: str,
    payload: dict[str, object],
    *,
    key: bytes,
    at: datetime,
    nonce: str | None = None,
    body: bytes | None = None,
) -> httpx.Response:
    """A request signed by hand, to show what the platform refuses."""
    signed_body = json.dumps(payload).encode()
    headers = signed_headers(
        key,
        first_line=f"POST {operation_path(operation)}",
        org_code=ORG,
        now=at,
        nonce=nonce or secrets.token_hex(16),
        body=signed_body,
    )
    async with httpx.AsyncClient() as client:
        return await client.post(
            url + operation_path(operation),
            content=signed_body if body is None else body,
            headers=headers,
        )


def test_the_adapter_is_an_insurance_gateway() -> None:
    adapter: InsuranceGateway = HttpInsuranceGateway(
        base_url="http://127.0.0.1:9", org_code=ORG, key=b"k" * 32
    )
    assert adapter.provider is Provider.INSURANCE
    assert "k" * 32 not in repr(adapter)


class TestSettlement:
    @pytest.mark.parametrize(
        ("token", "fee", "split"),
        [
            # 70% from the pool, the account pays 1000 of the 1500 left, the patient 500.
            ("tok-employee", 5000, (3500, 1000, 500)),
            # 10.00 under the deductible, half of the remaining 40.00 from the pool.
            ("tok-resident", 5000, (2000, 0, 3000)),
            # all under the deductible: the pool pays nothing.
            ("tok-resident", 800, (0, 0, 800)),
            # 70% of 3.33 is 2.331: the pool pays 2.33, the account the rest.
            ("tok-rich", 333, (233, 100, 0)),
            ("tok-rich", 1, (0, 1, 0)),
        ],
    )
    async def test_the_parts_add_up_to_the_fee_exactly(
        self, gateway: HttpInsuranceGateway, token: str, fee: int, split: tuple[int, int, int]
    ) -> None:
        auth = await gateway.preauthorize(out_trade_no="YY0001", insured_token=token, total_fen=fee)
        assert (auth.out_trade_no, auth.held_fen) == ("YY0001", fee)
        settlement = await gateway.settle(auth_no=auth.auth_no, total_fen=fee)
        assert (settlement.pool_fen, settlement.account_fen, settlement.self_pay_fen) == split
        assert settlement.total_fen == fee
        assert settlement.insurer_fen == split[0] + split[1]
        assert settlement.auth_no == auth.auth_no
        assert settlement.out_trade_no == "YY0001"
        assert settlement.settled_at == NOW

    async def test_the_deductible_and_the_account_are_used_up_across_visits(
        self, platform: Platform, gateway: HttpInsuranceGateway
    ) -> None:
        first = await gateway.preauthorize(
            out_trade_no="YY0001", insured_token="tok-resident", total_fen=600
        )
        assert (await gateway.settle(auth_no=first.auth_no, total_fen=600)).pool_fen == 0
        second = await gateway.preauthorize(
            out_trade_no="YY0002", insured_token="tok-resident", total_fen=5000
        )
        settled = await gateway.settle(auth_no=second.auth_no, total_fen=5000)
        # 4.00 of deductible left, then half of 46.00.
        assert (settled.pool_fen, settled.self_pay_fen) == (2300, 2700)
        assert platform.sim.insured["tok-resident"].deductible_left_fen == 0

    async def test_settling_less_than_held_then_releasing_frees_the_rest(
        self, platform: Platform, gateway: HttpInsuranceGateway
    ) -> None:
        auth = await gateway.preauthorize(
            out_trade_no="YY0001", insured_token="tok-employee", total_fen=5000
        )
        settled = await gateway.settle(auth_no=auth.auth_no, total_fen=3000)
        assert settled.total_fen == 3000
        await gateway.release(auth.auth_no)
        hold = platform.sim.holds[auth.auth_no]
        assert (hold.held_fen, hold.settled_fen, hold.released_fen) == (5000, 3000, 2000)

    async def test_release_is_idempotent(
        self, platform: Platform, gateway: HttpInsuranceGateway
    ) -> None:
        auth = await gateway.preauthorize(
            out_trade_no="YY0001", insured_token="tok-employee", total_fen=5000
        )
        await gateway.release(auth.auth_no)
        await gateway.release(auth.auth_no)
        assert platform.sim.holds[auth.auth_no].released_fen == 5000
        with pytest.raises(GatewayError) as refused:
            await gateway.settle(auth_no=auth.auth_no, total_fen=5000)
        assert (refused.value.code, refused.value.retryable) == ("AUTH_RELEASED", False)

    async def test_release_after_settling_the_whole_hold_frees_nothing(
        self, platform: Platform, gateway: HttpInsuranceGateway
    ) -> None:
        auth = await gateway.preauthorize(
            out_trade_no="YY0001", insured_token="tok-employee", total_fen=5000
        )
        await gateway.settle(auth_no=auth.auth_no, total_fen=5000)
        await gateway.release(auth.auth_no)
        await gateway.release(auth.auth_no)
        assert platform.sim.holds[auth.auth_no].released_fen == 0

    async def test_repeating_a_call_answers_as_the_first_time_and_charges_once(
        self, platform: Platform, gateway: HttpInsuranceGateway
    ) -> None:
        args = {"out_trade_no": "YY0001", "insured_token": "tok-employee", "total_fen": 5000}
        auth = await gateway.preauthorize(**args)  # type: ignore[arg-type]
        assert (await gateway.preauthorize(**args)).auth_no == auth.auth_no  # type: ignore[arg-type]
        first = await gateway.settle(auth_no=auth.auth_no, total_fen=5000)
        again = await gateway.settle(auth_no=auth.auth_no, total_fen=5000)
        assert again == first
        assert platform.sim.insured["tok-employee"].account_balance_fen == 0
        assert len(platform.sim.settlements) == 1

    @pytest.mark.parametrize(
        ("step", "code"),
        [
            ("another amount for the same order", "DUPLICATE_TRADE"),
            ("more than held", "EXCEEDS_HOLD"),
            ("settled again for another amount", "ALREADY_SETTLED"),
            ("unknown insured person", "INSURED_NOT_FOUND"),
            ("unknown hold", "AUTH_NOT_FOUND"),
            ("unknown settlement", "SETTLEMENT_NOT_FOUND"),
        ],
    )
    async def test_refusals_are_final_and_named(
        self, gateway: HttpInsuranceGateway, step: str, code: str
    ) -> None:
        auth = await gateway.preauthorize(
            out_trade_no="YY0001", insured_token="tok-employee", total_fen=5000
        )

        async def attempt() -> None:
            if step == "another amount for the same order":
                await gateway.preauthorize(
                    out_trade_no="YY0001", insured_token="tok-employee", total_fen=4000
                )
            elif step == "more than held":
                await gateway.settle(auth_no=auth.auth_no, total_fen=5001)
            elif step == "settled again for another amount":
                await gateway.settle(auth_no=auth.auth_no, total_fen=4000)
            elif step == "unknown insured person":
                await gateway.preauthorize(
                    out_trade_no="YY0002", insured_token="tok-nobody", total_fen=5000
                )
            elif step == "unknown hold":
                await gateway.release("PA-none")
            else:
                await gateway.refund_settlement(settlement_no="ST-none", reason="x")

        if step == "settled again for another amount":
            await gateway.settle(auth_no=auth.auth_no, total_fen=5000)
        with pytest.raises(GatewayError) as refused:
            await attempt()
        assert refused.value.code == code
        assert refused.value.retryable is False


class TestRefund:
    async def test_a_refund_reverses_the_settlement_whole_once(
        self, platform: Platform, gateway: HttpInsuranceGateway
    ) -> None:
        auth = await gateway.preauthorize(
            out_trade_no="YY0001", insured_token="tok-resident", total_fen=5000
        )
        settled = await gateway.settle(auth_no=auth.auth_no, total_fen=5000)
        platform.clock.advance(timedelta(minutes=3))
        refund = await gateway.refund_settlement(
            settlement_no=settled.settlement_no, reason="appointment cancelled"
        )
        assert refund.settlement_no == settled.settlement_no
        assert refund.out_trade_no == "YY0001"
        assert (refund.pool_fen, refund.account_fen, refund.self_pay_fen) == (2000, 0, 3000)
        assert refund.total_fen == 5000
        assert refund.refunded_at == NOW + timedelta(minutes=3)
        again = await gateway.refund_settlement(settlement_no=settled.settlement_no, reason="x")
        assert again == refund
        assert platform.sim.insured["tok-resident"].deductible_left_fen == 1000

    async def test_a_refund_gives_the_personal_account_back(
        self, platform: Platform, gateway: HttpInsuranceGateway
    ) -> None:
        auth = await gateway.preauthorize(
            out_trade_no="YY0001", insured_token="tok-employee", total_fen=5000
        )
        settled = await gateway.settle(auth_no=auth.auth_no, total_fen=5000)
        assert platform.sim.insured["tok-employee"].account_balance_fen == 0
        await gateway.refund_settlement(settlement_no=settled.settlement_no, reason="x")
        assert platform.sim.insured["tok-employee"].account_balance_fen == 1000


class TestRequestSignatures:
    async def test_a_request_signed_with_another_key_is_refused(self, platform: Platform) -> None:
        answer = await raw_call(
            platform.url,
            "preauth",
            {"out_trade_no": "YY0001", "insured_token": "tok-employee", "total_fen": 5000},
            key=b"not-the-hospital-key-0123456789",
            at=NOW,
        )
        assert answer.status_code == 401
        assert answer.json()["code"] == "SIGNATURE_INVALID"
        assert platform.sim.holds == {}

    async def test_a_body_changed_after_signing_is_refused(self, platform: Platform) -> None:
        payload = {"out_trade_no": "YY0001", "insured_token": "tok-employee", "total_fen": 5000}
        tampered = json.dumps({**payload, "total_fen": 1}).encode()
        answer = await raw_call(
            platform.url, "preauth", payload, key=platform.key, at=NOW, body=tampered
        )
        assert (answer.status_code, answer.json()["code"]) == (401, "SIGNATURE_INVALID")
        assert platform.sim.holds == {}

    async def test_a_signature_for_another_operation_is_refused(self, platform: Platform) -> None:
        payload = {"auth_no": "PA1"}
        headers = signed_headers(
            platform.key,
            first_line="POST /v1/release",
            org_code=ORG,
            now=NOW,
            nonce=secrets.token_hex(16),
            body=json.dumps(payload).encode(),
        )
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                platform.url + "/v1/settle", content=json.dumps(payload), headers=headers
            )
        assert (answer.status_code, answer.json()["code"]) == (401, "SIGNATURE_INVALID")

    @pytest.mark.parametrize(
        ("skew", "code"),
        [
            (timedelta(minutes=5, seconds=1), "TIMESTAMP_EXPIRED"),
            (-timedelta(minutes=5, seconds=1), "TIMESTAMP_EXPIRED"),
            (timedelta(minutes=4, seconds=59), "SUCCESS"),
            (-timedelta(minutes=4, seconds=59), "SUCCESS"),
        ],
    )
    async def test_timestamps_more_than_five_minutes_off_are_refused(
        self, platform: Platform, skew: timedelta, code: str
    ) -> None:
        answer = await raw_call(
            platform.url,
            "preauth",
            {"out_trade_no": "YY0001", "insured_token": "tok-employee", "total_fen": 5000},
            key=platform.key,
            at=NOW + skew,
        )
        assert answer.json()["code"] == code
        assert len(platform.sim.holds) == (1 if code == "SUCCESS" else 0)

    async def test_a_replayed_request_is_refused(self, platform: Platform) -> None:
        payload: dict[str, object] = {"out_trade_no": "YY0001", "insured_token": "tok-employee"}
        payload["total_fen"] = 5000
        nonce = secrets.token_hex(16)
        first = await raw_call(
            platform.url, "preauth", payload, key=platform.key, at=NOW, nonce=nonce
        )
        replay = await raw_call(
            platform.url, "preauth", payload, key=platform.key, at=NOW, nonce=nonce
        )
        assert first.json()["code"] == "SUCCESS"
        assert (replay.status_code, replay.json()["code"]) == (401, "NONCE_REUSED")

    async def test_the_adapter_with_a_wrong_key_changes_nothing(self, platform: Platform) -> None:
        adapter = adapter_for(platform.url, secrets.token_hex(32).encode(), platform.clock)
        try:
            with pytest.raises(GatewayError):
                await adapter.preauthorize(
                    out_trade_no="YY0001", insured_token="tok-employee", total_fen=5000
                )
        finally:
            await adapter.aclose()
        assert platform.sim.holds == {}

    async def test_the_adapter_with_a_slow_clock_changes_nothing(self, platform: Platform) -> None:
        adapter = adapter_for(platform.url, platform.key, FixedClock(NOW - timedelta(minutes=6)))
        try:
            with pytest.raises(GatewayError):
                await adapter.preauthorize(
                    out_trade_no="YY0001", insured_token="tok-employee", total_fen=5000
                )
        finally:
            await adapter.aclose()
        assert platform.sim.holds == {}


def forged_platform(key: bytes, *, forge: str) -> FastAPI:
    """Answers preauth like the platform would, except for one forged detail."""
    app = FastAPI()

    @app.post("/v1/preauth")
    async def preauth(request: Request) -> Response:
        document = {"code": "SUCCESS", "auth_no": "PA1", "out_trade_no": "YY0001", "held_fen": 5000}
        body = json.dumps(document).encode()
        nonce = request.headers[HEADER_NONCE]
        signing_key, status, at = key, 200, NOW
        if forge == "key":
            signing_key = b"someone-else-0123456789abcdef"
        elif forge == "nonce":
            nonce = secrets.token_hex(16)
        elif forge == "stale":
            at = NOW - timedelta(minutes=6)
        elif forge == "status":
            status = 201
        headers = signed_headers(
            signing_key,
            first_line=f"{status} /v1/preauth",
            org_code=ORG,
            now=at,
            nonce=nonce,
            body=body,
        )
        if forge == "body":
            body = body.replace(b"5000", b"500")
        if forge == "unsigned":
            del headers[HEADER_SIGNATURE]
        return Response(body, 200, headers=headers, media_type="application/json")

    return app


class TestAnswerSignatures:
    @pytest.mark.parametrize(
        "forge", ["key", "body", "nonce", "stale", "status", "unsigned", "none"]
    )
    async def test_a_forged_answer_is_refused(self, forge: str) -> None:
        key = secrets.token_hex(32).encode()
        with serve_asgi(forged_platform(key, forge=forge)) as url:
            adapter = adapter_for(url, key, FixedClock(NOW))
            try:
                if forge == "none":  # the control: the same answer, signed right, is believed
                    auth = await adapter.preauthorize(
                        out_trade_no="YY0001", insured_token="t", total_fen=5000
                    )
                    assert (auth.auth_no, auth.held_fen) == ("PA1", 5000)
                    return
                with pytest.raises(GatewayError) as refused:
                    await adapter.preauthorize(
                        out_trade_no="YY0001", insured_token="t", total_fen=5000
                    )
            finally:
                await adapter.aclose()
        assert refused.value.code == "ANSWER_SIGNATURE_INVALID"
        assert refused.value.retryable is True


class TestNotifications:
    async def test_settlement_and_refund_notifications_verify(
        self, platform: Platform, gateway: HttpInsuranceGateway
    ) -> None:
        auth = await gateway.preauthorize(
            out_trade_no="YY0001", insured_token="tok-employee", total_fen=5000
        )
        settled = await gateway.settle(auth_no=auth.auth_no, total_fen=5000)
        refund = await gateway.refund_settlement(settlement_no=settled.settlement_no, reason="x")
        sent_settled, sent_refunded = platform.sim.notifications

        first = await gateway.verify_notification(sent_settled.headers, sent_settled.body)
        assert first.event is InsuranceEvent.SETTLED
        assert first.settlement == settled
        common = first.as_notification()
        assert common.kind is NotificationKind.PAYMENT
        assert common.trade is not None
        assert (common.trade.state, common.trade.amount_fen) == (TradeState.PAID, 4500)
        assert common.trade.transaction_id == settled.settlement_no

        second = await gateway.verify_notification(sent_refunded.headers, sent_refunded.body)
        assert (second.event, second.refund) == (InsuranceEvent.REFUNDED, refund)
        as_refund = second.as_notification()
        assert as_refund.kind is NotificationKind.REFUND
        assert as_refund.refund is not None and as_refund.refund.refund_fen == 4500
        assert as_refund.out_trade_no == "YY0001"

    async def test_a_tampered_or_stale_notification_is_refused(
        self, platform: Platform, gateway: HttpInsuranceGateway
    ) -> None:
        auth = await gateway.preauthorize(
            out_trade_no="YY0001", insured_token="tok-employee", total_fen=5000
        )
        await gateway.settle(auth_no=auth.auth_no, total_fen=5000)
        (sent,) = platform.sim.notifications
        with pytest.raises(InvalidNotification, match="SIGNATURE_INVALID"):
            await gateway.verify_notification(sent.headers, sent.body.replace(b"3500", b"4500"))
        with pytest.raises(InvalidNotification, match="SIGNATURE_INVALID"):
            await gateway.verify_notification({**sent.headers, HEADER_TIMESTAMP: "1"}, sent.body)
        platform.clock.advance(timedelta(minutes=6))
        with pytest.raises(InvalidNotification, match="TIMESTAMP_EXPIRED"):
            await gateway.verify_notification(sent.headers, sent.body)


class TestStatement:
    async def test_not_ready_until_the_day_is_over(self, gateway: HttpInsuranceGateway) -> None:
        with pytest.raises(StatementNotReady):
            await gateway.download_statement(DAY)

    async def test_the_day_s_settlements_and_refunds_at_the_insurer_s_share(
        self, platform: Platform, gateway: HttpInsuranceGateway
    ) -> None:
        kept = await gateway.preauthorize(
            out_trade_no="YY0001", insured_token="tok-employee", total_fen=5000
        )
        kept_settled = await gateway.settle(auth_no=kept.auth_no, total_fen=5000)
        gone = await gateway.preauthorize(
            out_trade_no="YY0002", insured_token="tok-resident", total_fen=5000
        )
        gone_settled = await gateway.settle(auth_no=gone.auth_no, total_fen=5000)
        platform.clock.advance(timedelta(hours=1))
        refund = await gateway.refund_settlement(
            settlement_no=gone_settled.settlement_no, reason="cancelled"
        )
        # 23:59:59 in Shanghai still belongs to the day; 00:00:00 to the next.
        platform.clock.set(datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC))
        late = await gateway.preauthorize(
            out_trade_no="YY0003", insured_token="tok-rich", total_fen=700
        )
        late_settled = await gateway.settle(auth_no=late.auth_no, total_fen=700)
        platform.clock.set(datetime(2026, 11, 20, 16, 0, tzinfo=UTC))
        after = await gateway.preauthorize(
            out_trade_no="YY0004", insured_token="tok-rich", total_fen=700
        )
        await gateway.settle(auth_no=after.auth_no, total_fen=700)

        statement = await gateway.download_statement(DAY)

        assert (statement.provider, statement.bill_date) == (Provider.INSURANCE, DAY)
        summary = [
            (line.kind, line.out_trade_no, line.amount_fen, line.refund_id)
            for line in statement.lines
        ]
        assert summary == [
            (StatementKind.PAYMENT, "YY0001", 4500, None),
            (StatementKind.PAYMENT, "YY0002", 2000, None),
            (StatementKind.REFUND, "YY0002", 2000, refund.refund_no),
            (StatementKind.PAYMENT, "YY0003", 700, None),
        ]
        first = statement.lines[0]
        assert first.transaction_id == kept_settled.settlement_no
        assert first.at == NOW
        assert {key: first.raw[key] for key in ("pool_fen", "account_fen", "self_pay_fen")} == {
            "pool_fen": "3500",
            "account_fen": "1000",
            "self_pay_fen": "500",
        }

        # The statement reconciles with what the hospital recorded of the insurer's share.
        result = reconcile(
            statement=statement,
            charges=[
                LocalCharge(
                    out_trade_no=s.out_trade_no,
                    transaction_id=s.settlement_no,
                    amount_fen=s.insurer_fen,
                    paid_at=s.settled_at,
                    appointment_id=uuid.uuid4(),
                    booked=s.out_trade_no != "YY0002",
                    refunded_fen=refund.pool_fen if s.out_trade_no == "YY0002" else 0,
                )
                for s in (kept_settled, gone_settled, late_settled)
            ],
            refunds=[
                LocalRefund(
                    out_refund_no=refund.refund_no,
                    out_trade_no="YY0002",
                    refund_id=refund.refund_no,
                    amount_fen=refund.pool_fen + refund.account_fen,
                    succeeded_at=refund.refunded_at,
                )
            ],
        )
        assert result.balanced, result.discrepancies
        assert result.theirs.net_fen == result.ours.net_fen == 5200


class TestSettings:
    def test_no_settings_no_gateway(self) -> None:
        assert insurance_from_settings(Settings()) is None

    def test_half_configured_names_what_is_missing(self) -> None:
        with pytest.raises(ValueError, match="insurance_key_file") as refused:
            insurance_from_settings(
                Settings(insurance_gateway_url="http://x", insurance_org_code=ORG)
            )
        assert "http://x" not in str(refused.value)

    async def test_built_from_settings_it_talks_to_the_platform(
        self, platform: Platform, tmp_path: Path
    ) -> None:
        key_file = tmp_path / "insurance.key"
        key_file.write_bytes(platform.key + b"\n")
        adapter = insurance_from_settings(
            Settings(
                insurance_gateway_url=platform.url + "/",
                insurance_org_code=ORG,
                insurance_key_file=key_file,
            ),
            clock=platform.clock,
        )
        assert adapter is not None
        try:
            auth = await adapter.preauthorize(
                out_trade_no="YY0001", insured_token="tok-employee", total_fen=100
            )
        finally:
            await adapter.aclose()
        assert platform.sim.holds[auth.auth_no].held_fen == 100

    def test_a_short_key_is_refused(self, tmp_path: Path) -> None:
        key_file = tmp_path / "insurance.key"
        key_file.write_bytes(b"short\n")
        with pytest.raises(ValueError, match="16 bytes"):
            insurance_from_settings(
                Settings(
                    insurance_gateway_url="http://x",
                    insurance_org_code=ORG,
                    insurance_key_file=key_file,
                )
            )
