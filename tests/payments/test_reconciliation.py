"""The T+1 reconciliation on SQLite and PostgreSQL, against the WeChat Pay and Alipay
simulators' real statements (WeChat's CSV trade bill, Alipay's zipped GBK bill): every kind
of difference is listed, a charge with no booking is refunded once however often the day
is run, handled items keep their notes, and a statement not ready yet is waited for."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import World
from tests.helpers import row_counts
from tests.payments.reconciliation_support import Providers, simulated_providers
from tests.payments.support import FEE, staff
from yuyue.jobs import reconcile_once, retry_reconciliations_once, send_refunds_once
from yuyue.kit.errors import Forbidden, NotFound
from yuyue.payments import reconciliation
from yuyue.payments.gateway import Provider, Statement, StatementKind, StatementLine
from yuyue.payments.models import PaymentOrder, ReconciliationItem, ReconciliationRun, Refund
from yuyue.payments.reconcile import business_day
from yuyue.payments.simulators.alipay import AlipaySimulatorKeys
from yuyue.payments.simulators.wechatpay import WechatPaySimulatorKeys
from yuyue.payments.states import OrderState, RefundState
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext

PROVIDERS = [Provider.WECHATPAY, Provider.ALIPAY]


@pytest.fixture(scope="module")
def wechat_keys() -> WechatPaySimulatorKeys:
    return WechatPaySimulatorKeys.generate()


@pytest.fixture(scope="module")
def alipay_keys() -> AlipaySimulatorKeys:
    return AlipaySimulatorKeys.generate()


@pytest.fixture
def sims(
    ctx: AppContext,
    world: World,
    wechat_keys: WechatPaySimulatorKeys,
    alipay_keys: AlipaySimulatorKeys,
) -> Iterator[Providers]:
    with simulated_providers(ctx, world, wechat_keys, alipay_keys) as providers:
        yield providers


async def items_of(ctx: AppContext, run_id: object) -> list[ReconciliationItem]:
    async with ctx.db.read() as s:
        return list(
            (
                await s.scalars(
                    select(ReconciliationItem)
                    .where(ReconciliationItem.run_id == run_id)
                    .order_by(ReconciliationItem.kind)
                )
            ).all()
        )


async def all_refunds(ctx: AppContext) -> list[Refund]:
    async with ctx.db.read() as s:
        return list((await s.scalars(select(Refund).order_by(Refund.created_at))).all())


async def order(ctx: AppContext, out_trade_no: str) -> PaymentOrder:
    async with ctx.db.read() as s:
        found = await s.scalar(
            select(PaymentOrder).where(PaymentOrder.out_trade_no == out_trade_no)
        )
    assert found is not None
    return found


class Day:
    """A business day on the simulator with one of each kind of difference."""

    def __init__(self, day: date, matched: str, tampered: str, gone: str, lost: str, stray: str):
        self.day, self.matched, self.tampered = day, matched, tampered
        self.gone, self.lost, self.stray = gone, lost, stray


async def troubled_day(sims: Providers, provider: Provider) -> Day:
    day = business_day(sims.clock.now())
    matched = await sims.pay(provider)
    tampered = await sims.pay(provider)
    gone = await sims.pay(provider)
    lost = await sims.pay(provider)
    sims.tamper(provider, tampered.out_trade_no, FEE - 100)
    await sims.forget_booking(gone)
    sims.lose(provider, lost.out_trade_no)
    stray = sims.provider_only(provider, 990)
    sims.clock.advance(timedelta(days=1))  # the statement is published the next morning
    return Day(day, matched.out_trade_no, tampered.out_trade_no, gone.out_trade_no,
               lost.out_trade_no, stray)  # fmt: skip


@pytest.mark.parametrize("provider", PROVIDERS)
class TestADayWithEveryDifference:
    async def test_each_difference_is_listed_and_charges_with_no_booking_are_refunded(
        self, ctx: AppContext, sims: Providers, provider: Provider
    ) -> None:
        day = await troubled_day(sims, provider)

        [report] = await reconcile_once(ctx, provider=provider, business_day=day.day)

        assert report.state is reconciliation.RunState.DONE
        items = await items_of(ctx, report.run_id)
        found = {(i.kind, i.out_trade_no): i for i in items}
        assert set(found) == {
            ("amount_mismatch", day.tampered),
            ("no_booking", day.gone),
            ("local_only", day.lost),
            ("provider_only", day.stray),
        }
        mismatch = found[("amount_mismatch", day.tampered)]
        assert (mismatch.local_fen, mismatch.provider_fen) == (FEE, FEE - 100)
        assert mismatch.action == "investigate" and mismatch.handled_at is None
        assert found[("local_only", day.lost)].provider_fen is None

        # The two charges with no booking went back through the refund rows and the job
        # (WeChat Pay answers "processing" first: the job's next pass reads the outcome).
        assert len(report.refunds_started) == 2
        sims.clock.advance(timedelta(minutes=6))
        await send_refunds_once(ctx)
        refunds = {r.out_refund_no: r for r in await all_refunds(ctx)}
        stray_item = found[("provider_only", day.stray)]
        gone_item = found[("no_booking", day.gone)]
        for item in (stray_item, gone_item):
            assert item.action == "refund_automatically"
            assert item.refund_id is not None and item.handled_at is not None
        stray_refund = next(r for r in refunds.values() if r.id == stray_item.refund_id)
        gone_refund = next(r for r in refunds.values() if r.id == gone_item.refund_id)
        assert stray_refund.order_id is None and stray_refund.out_trade_no == day.stray
        assert (stray_refund.amount_fen, stray_refund.state) == (990, RefundState.SUCCEEDED)
        assert gone_refund.order_id == (await order(ctx, day.gone)).id
        assert (gone_refund.amount_fen, gone_refund.state) == (FEE, RefundState.SUCCEEDED)
        assert (await order(ctx, day.gone)).state == OrderState.REFUNDED
        assert sims.refunds_at(provider) == {
            stray_refund.out_refund_no: 990,
            gone_refund.out_refund_no: FEE,
        }

        async with ctx.db.read() as s:
            run = await s.get(ReconciliationRun, report.run_id)
            assert run is not None
            assert (run.state, run.mismatches) == ("done", 4)
            # Ours: four paid that day; theirs: three of ours (one lost) and the stray one.
            assert (run.local_count, run.local_total_fen) == (4, 4 * FEE)
            assert (run.provider_count, run.provider_total_fen) == (4, 3 * FEE - 100 + 990)
            audited = await s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.entity_type == "refund", AuditEntry.action == "request_refund")
            )
            assert audited == 2

    async def test_running_the_day_again_refunds_nothing_twice_and_keeps_handled_notes(
        self, ctx: AppContext, sims: Providers, provider: Provider, world: World
    ) -> None:
        day = await troubled_day(sims, provider)
        [first] = await reconcile_once(ctx, provider=provider, business_day=day.day)
        mismatch = next(i for i in await items_of(ctx, first.run_id) if i.kind == "amount_mismatch")
        finance = staff(world, Role.FINANCE)
        await ctx.db.transact(
            lambda s: reconciliation.mark_handled(
                s, actor=finance, item_id=mismatch.id, note="渠道确认少结 1 元", now=ctx.clock.now()
            )
        )
        refunds_before = [(r.out_refund_no, r.state) for r in await all_refunds(ctx)]
        provider_refunds = sims.refunds_at(provider)

        [again] = await reconcile_once(ctx, provider=provider, business_day=day.day)

        assert again.run_id == first.run_id and again.refunds_started == []
        assert [(r.out_refund_no, r.state) for r in await all_refunds(ctx)] == refunds_before
        assert sims.refunds_at(provider) == provider_refunds
        items = await items_of(ctx, again.run_id)
        assert sorted(i.kind for i in items) == [
            "amount_mismatch",
            "local_only",
            "no_booking",
            "provider_only",
        ]
        kept = next(i for i in items if i.kind == "amount_mismatch")
        assert kept.id == mismatch.id
        assert (kept.note, kept.handled_by) == ("渠道确认少结 1 元", "staff:staff:staff")
        # The unhandled one was replaced by the rerun's.
        lost = next(i for i in items if i.kind == "local_only")
        assert lost.handled_at is None
        async with ctx.db.read() as s:
            runs = await s.scalar(select(func.count()).select_from(ReconciliationRun))
        assert runs == 1


class TestStatementNotReady:
    async def test_today_waits_and_the_retry_reconciles_once_it_is_published(
        self, ctx: AppContext, sims: Providers
    ) -> None:
        today = business_day(sims.clock.now())
        paid = await sims.pay(Provider.WECHATPAY)

        [waiting] = await reconcile_once(ctx, provider=Provider.WECHATPAY, business_day=today)

        assert waiting.state is reconciliation.RunState.WAITING
        async with ctx.db.read() as s:
            run = await s.get(ReconciliationRun, waiting.run_id)
            assert run is not None and run.state == "waiting" and run.next_try_at is not None
        assert await retry_reconciliations_once(ctx) == []  # not time yet

        sims.clock.advance(timedelta(days=1))
        [done] = await retry_reconciliations_once(ctx)

        assert (done.run_id, done.state, done.mismatches) == (
            waiting.run_id,
            reconciliation.RunState.DONE,
            0,
        )
        async with ctx.db.read() as s:
            run = await s.get(ReconciliationRun, waiting.run_id)
            assert run is not None
            assert (run.state, run.local_total_fen, run.provider_total_fen) == ("done", FEE, FEE)
            assert run.next_try_at is None
        assert (await order(ctx, paid.out_trade_no)).state == OrderState.PAID

    async def test_yesterday_is_the_default_and_every_configured_provider_runs(
        self, ctx: AppContext, sims: Providers
    ) -> None:
        await sims.pay(Provider.ALIPAY)
        sims.clock.advance(timedelta(days=1))

        reports = await reconcile_once(ctx)

        yesterday = business_day(sims.clock.now()) - timedelta(days=1)
        assert {(r.provider, r.business_day) for r in reports} == {
            (Provider.WECHATPAY, yesterday),
            (Provider.ALIPAY, yesterday),
        }
        states = {r.provider: r.state for r in reports}
        # WeChat Pay had no trade that day: no bill, the run waits (and gives up in a week).
        assert states == {
            Provider.WECHATPAY: reconciliation.RunState.WAITING,
            Provider.ALIPAY: reconciliation.RunState.DONE,
        }


class _StatementDouble:
    """A provider answering a given statement: duplicate lines cannot be made on the
    simulators, whose bills list each trade once."""

    def __init__(self, statement: Statement) -> None:
        self.provider = statement.provider
        self.statement = statement

    async def download_statement(self, bill_date: date) -> Statement:
        if bill_date != self.statement.bill_date:
            from yuyue.payments.gateway import StatementNotReady

            raise StatementNotReady("no bill")
        return self.statement


class TestDuplicateLines:
    async def test_a_line_listed_twice_is_for_finance_and_refunds_nothing(
        self, ctx: AppContext, sims: Providers
    ) -> None:
        paid = await sims.pay(Provider.WECHATPAY)
        assert paid.paid_at is not None
        line = StatementLine(
            StatementKind.PAYMENT, paid.out_trade_no, paid.transaction_id, FEE, paid.paid_at
        )
        day = business_day(paid.paid_at)
        ctx.gateways[Provider.WECHATPAY] = _StatementDouble(  # type: ignore[assignment]
            Statement(Provider.WECHATPAY, day, (line, line))
        )

        [report] = await reconcile_once(ctx, provider=Provider.WECHATPAY, business_day=day)

        [item] = await items_of(ctx, report.run_id)
        assert (item.kind, item.action, item.provider_fen) == ("duplicate_line", "investigate", FEE)
        assert await all_refunds(ctx) == []


class TestMarkingHandled:
    async def _item(self, ctx: AppContext, sims: Providers) -> ReconciliationItem:
        paid = await sims.pay(Provider.WECHATPAY)
        sims.tamper(Provider.WECHATPAY, paid.out_trade_no, FEE - 1)
        day = business_day(sims.clock.now())
        sims.clock.advance(timedelta(days=1))
        [report] = await reconcile_once(ctx, provider=Provider.WECHATPAY, business_day=day)
        [item] = await items_of(ctx, report.run_id)
        return item

    async def test_a_note_is_kept_and_audited(
        self, ctx: AppContext, sims: Providers, world: World
    ) -> None:
        item = await self._item(ctx, sims)
        admin = staff(world, Role.ADMIN)

        done = await ctx.db.transact(
            lambda s: reconciliation.mark_handled(
                s, actor=admin, item_id=item.id, note=" 已联系渠道 ", now=ctx.clock.now()
            )
        )

        assert (done.note, done.handled_by) == ("已联系渠道", "staff:staff:staff")
        async with ctx.db.read() as s:
            entry = await s.scalar(
                select(AuditEntry).where(AuditEntry.entity_type == "reconciliation_item")
            )
        assert entry is not None and entry.action == "reconciliation_handled"

    async def test_refusals_change_nothing(
        self, ctx: AppContext, sims: Providers, world: World
    ) -> None:
        item = await self._item(ctx, sims)
        before = await row_counts(ctx.db)
        finance = staff(world, Role.FINANCE)
        cases = [
            (staff(world, Role.REGISTRAR), item.id, "x", Forbidden),
            (finance, item.id, "   ", reconciliation.NoteRequired),
            (finance, item.id, "x" * 501, reconciliation.NoteRequired),
            (finance, uuid.uuid4(), "x", NotFound),
        ]
        for actor, item_id, note, error in cases:
            with pytest.raises(error):
                await ctx.db.transact(
                    lambda s, actor=actor, item_id=item_id, note=note: reconciliation.mark_handled(
                        s, actor=actor, item_id=item_id, note=note, now=ctx.clock.now()
                    )
                )
        assert await row_counts(ctx.db) == before
        async with ctx.db.read() as s:
            still = await s.get(ReconciliationItem, item.id)
        assert still is not None and still.handled_at is None

        await ctx.db.transact(
            lambda s: reconciliation.mark_handled(
                s, actor=finance, item_id=item.id, note="ok", now=ctx.clock.now()
            )
        )
        with pytest.raises(reconciliation.AlreadyHandled):
            await ctx.db.transact(
                lambda s: reconciliation.mark_handled(
                    s, actor=finance, item_id=item.id, note="again", now=ctx.clock.now()
                )
            )


def test_the_default_day_is_yesterday_in_shanghai() -> None:
    # 00:30 on 8 December in Shanghai is still 7 December in UTC.
    assert reconciliation.default_day(datetime(2026, 12, 7, 16, 30, tzinfo=UTC)) == date(
        2026, 12, 7
    )
    assert reconciliation.default_day(datetime(2026, 12, 7, 15, 30, tzinfo=UTC)) == date(
        2026, 12, 6
    )
