"""Finance's pages (财务): find orders and refunds, read an order's whole story, follow the
daily reconciliation with each provider and mark its differences handled, and export both
as CSV or XLSX for Excel.

Staff sign in as on every floor page (the staff cookie); the finance role is required
(administrators hold every role). Forms carry the CSRF token. Thin: each route parses, calls
one payments function and renders; a refusal is a sentence on the page and changes nothing.
No full phone or ID number is ever shown: the search matches a phone by its blind index and
the pages show the masked number."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.frontdesk.pages import StaffDep
from yuyue.frontdesk.web import FloorVisitor, form_of, redirect, render
from yuyue.kit import i18n
from yuyue.kit.errors import ValidationFailed, YuyueError
from yuyue.kit.localtime import local_instant
from yuyue.payments import export, reconciliation
from yuyue.payments import service as payments
from yuyue.payments.gateway import Provider
from yuyue.payments.models import ReconciliationItem, ReconciliationRun, Refund
from yuyue.payments.states import OrderState
from yuyue.portal import formatting
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor
from yuyue.web.pagekit import parse_date, uuid_or_none

router = APIRouter(include_in_schema=False)
FINANCE_ROLES = (Role.FINANCE,)
ONLINE_PROVIDERS = (Provider.WECHATPAY, Provider.ALIPAY)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

i18n.register(
    {
        "finance.area": ("财务", "Finance"),
        "finance.orders": ("订单与退款", "Orders and refunds"),
        "finance.reconciliation": ("每日对账", "Daily reconciliation"),
        "finance.search": ("查询", "Search"),
        "finance.voucher": ("预约码", "Voucher code"),
        "finance.phone": ("患者手机号", "Patient's phone"),
        "finance.reference": ("交易号 / 商户订单号", "Transaction id / out_trade_no"),
        "finance.date_from": ("开始日期", "From"),
        "finance.date_to": ("结束日期", "To"),
        "finance.provider": ("支付渠道", "Provider"),
        "finance.state": ("状态", "State"),
        "finance.any": ("全部", "Any"),
        "finance.export_csv": ("导出 CSV", "Export CSV"),
        "finance.export_xlsx": ("导出 Excel", "Export XLSX"),
        "finance.none_found": ("没有符合条件的订单。", "No order matches."),
        "finance.created": ("下单时间", "Created"),
        "finance.paid_at": ("支付时间", "Paid"),
        "finance.amount": ("金额", "Amount"),
        "finance.patient": ("患者", "Patient"),
        "finance.out_trade_no": ("商户订单号", "Out trade no"),
        "finance.transaction_id": ("渠道交易号", "Transaction id"),
        "finance.method": ("支付方式", "Method"),
        "finance.refund": ("退款", "Refund"),
        "finance.refund_no": ("退款单号", "Refund no"),
        "finance.refund_reason": ("退款原因", "Refund reason"),
        "finance.refund_error": ("最近错误", "Last error"),
        "finance.tries": ("尝试次数", "Tries"),
        "finance.order": ("订单", "Order"),
        "finance.attempts": ("渠道调用与通知", "Provider calls and notifications"),
        "finance.audit": ("操作记录", "Audit trail"),
        "finance.at": ("时间", "At"),
        "finance.kind": ("类型", "Kind"),
        "finance.outcome": ("结果", "Outcome"),
        "finance.detail": ("说明", "Detail"),
        "finance.actor": ("操作人", "By"),
        "finance.action": ("操作", "Action"),
        "finance.no_attempts": ("没有记录。", "Nothing recorded."),
        "finance.business_day": ("账单日", "Business day"),
        "finance.run_state": ("对账状态", "Status"),
        "finance.ours": ("本院", "Ours"),
        "finance.theirs": ("渠道", "Provider's"),
        "finance.payments": ("收款", "Payments"),
        "finance.refunds": ("退款", "Refunds"),
        "finance.count": ("笔数", "Lines"),
        "finance.mismatches": ("差异", "Differences"),
        "finance.no_runs": ("还没有对账记录。", "No reconciliation yet."),
        "finance.open_day": ("查看", "Open"),
        "finance.items": ("差异明细", "Differences"),
        "finance.no_items": ("当日账目一致，没有差异。", "The day balances: no difference."),
        "finance.recommended": ("建议处理", "Recommended"),
        "finance.handled": ("处理情况", "Handled"),
        "finance.note": ("处理说明", "Note"),
        "finance.mark_handled": ("标记为已处理", "Mark handled"),
        "finance.handled_ok": ("已标记为已处理。", "Marked handled."),
        "finance.handled_by": ("{by} 于 {at}", "{by} at {at}"),
        "finance.error": ("错误", "Error"),
        "finance.system": ("系统（对账）", "the system (reconciliation)"),
        "finance.line_kind.payment": ("收款", "payment"),
        "finance.line_kind.refund": ("退款", "refund"),
        "finance.item.local_only": ("本院有、渠道无", "Ours only"),
        "finance.item.provider_only": ("渠道有、本院无", "Provider only"),
        "finance.item.amount_mismatch": ("金额不一致", "Amount differs"),
        "finance.item.duplicate_line": ("渠道重复记账", "Listed twice"),
        "finance.item.no_booking": ("已收款但无预约", "Paid, no booking"),
        "finance.action.refund_automatically": ("已自动退款", "Refunded automatically"),
        "finance.action.investigate": ("请核查", "Investigate"),
        "finance.advice.local_only": (
            "向渠道查询该笔交易；确认未收款则更正本院记录。",
            "Query the trade at the provider; if no money came, correct our record.",
        ),
        "finance.advice.provider_only": (
            "渠道收款但本院无订单：系统已按原路退款，请跟进退款结果。",
            "The provider took money for no order of ours: refunded automatically; "
            "follow the refund.",
        ),
        "finance.advice.amount_mismatch": (
            "金额不一致：与渠道核对该笔交易的实收金额。",
            "Amounts differ: check the amount with the provider.",
        ),
        "finance.advice.duplicate_line": (
            "账单重复列出同一笔款项：联系渠道更正账单。",
            "The statement lists the same money twice: ask the provider to correct it.",
        ),
        "finance.advice.no_booking": (
            "已收款但预约已取消或不存在：系统已自动退款，请跟进退款结果。",
            "Paid but the appointment is cancelled or gone: refunded automatically; "
            "follow the refund.",
        ),
        "finance.run.running": ("进行中", "Running"),
        "finance.run.waiting": ("等待账单", "Waiting for the statement"),
        "finance.run.done": ("已完成", "Done"),
        "finance.run.failed": ("失败", "Failed"),
        "finance.provider.wechatpay": ("微信支付", "WeChat Pay"),
        "finance.provider.alipay": ("支付宝", "Alipay"),
        "finance.provider.insurance": ("医保", "Medical insurance"),
        "finance.provider.window": ("窗口", "Window"),
        "finance.state.created": ("待支付", "Created"),
        "finance.state.paid": ("已支付", "Paid"),
        "finance.state.refunding": ("退款中", "Refunding"),
        "finance.state.refunded": ("已退款", "Refunded"),
        "finance.state.refund_failed": ("退款失败", "Refund failed"),
        "finance.state.closed": ("已关闭", "Closed"),
        "finance.refund_state.requested": ("待退款", "Requested"),
        "finance.refund_state.processing": ("退款中", "Processing"),
        "finance.refund_state.succeeded": ("退款成功", "Succeeded"),
        "finance.refund_state.failed": ("退款失败", "Failed"),
        "finance.refund_state.at_window": ("窗口退款", "At the window"),
        "finance.bad_date": ("日期格式应为 YYYY-MM-DD。", "Dates are YYYY-MM-DD."),
    }
)


def _choice(kind: Any, value: str | None) -> Any:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise ValidationFailed(summary=kind.__name__) from None


def _day_start(day: date, tz: str) -> datetime:
    return local_instant(day, time(0), tz)


def _money(fen: int | None, locale: str) -> str:
    """Yuan with two decimals, zero included (finance reads ¥0.00, not "free")."""
    if fen is None:
        return ""
    return formatting.money(fen, locale) if fen else "¥0.00"


def who_did(audit_name: str | None, locale: str) -> str:
    """A person's name from an audit name (`staff:<name>:<id>`), or "system"."""
    if not audit_name:
        return ""
    kind, _, rest = audit_name.partition(":")
    if kind == "staff":
        return rest.rsplit(":", 1)[0] or rest
    return i18n.translate("finance.system", locale)


def _download(data: bytes, *, name: str, fmt: str) -> Response:
    media = XLSX if fmt == "xlsx" else "text/csv; charset=utf-8"
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


# --- orders and refunds ---------------------------------------------------------------------

ORDER_COLUMNS = (
    export.Column("created_at", "下单时间", "Created", export.ColumnKind.INSTANT),
    export.Column("paid_at", "支付时间", "Paid", export.ColumnKind.INSTANT),
    export.Column("provider", "支付渠道", "Provider"),
    export.Column("method", "支付方式", "Method"),
    export.Column("state", "状态", "State"),
    export.Column("amount_fen", "金额（元）", "Amount (yuan)", export.ColumnKind.FEN),
    export.Column("out_trade_no", "商户订单号", "Out trade no"),
    export.Column("transaction_id", "渠道交易号", "Transaction id"),
    export.Column("voucher_code", "预约码", "Voucher code"),
    export.Column("patient", "患者", "Patient"),
    export.Column("phone", "手机号（脱敏）", "Phone (masked)"),
    export.Column("refund_no", "退款单号", "Refund no"),
    export.Column("refund_state", "退款状态", "Refund state"),
    export.Column("refund_fen", "退款金额（元）", "Refunded (yuan)", export.ColumnKind.FEN),
    export.Column("refund_finished_at", "退款完成", "Refund done", export.ColumnKind.INSTANT),
)


def _order_row(found: payments.FoundOrder) -> dict[str, object]:
    order, refund = found.order, found.refund
    return {
        "created_at": order.created_at,
        "paid_at": order.paid_at,
        "provider": order.provider,
        "method": order.method,
        "state": str(order.state),
        "amount_fen": order.amount_fen,
        "out_trade_no": order.out_trade_no,
        "transaction_id": order.transaction_id,
        "voucher_code": found.voucher_code,
        "patient": found.patient_name,
        "phone": found.phone_masked,
        "refund_no": refund.out_refund_no if refund else None,
        "refund_state": str(refund.state) if refund else None,
        "refund_fen": refund.amount_fen if refund else None,
        "refund_finished_at": refund.finished_at if refund else None,
    }


async def _search(
    who: FloorVisitor, actor: Actor, params: dict[str, str]
) -> list[payments.FoundOrder]:
    tz = who.hospital.timezone
    day_from = parse_date(params.get("date_from"))
    day_to = parse_date(params.get("date_to"))
    search = payments.OrderSearch(
        voucher=params.get("voucher") or None,
        phone=params.get("phone") or None,
        reference=params.get("reference") or None,
        date_from=_day_start(day_from, tz) if day_from else None,
        date_to=_day_start(day_to + timedelta(days=1), tz) if day_to else None,
        provider=_choice(Provider, params.get("provider")),
        state=_choice(OrderState, params.get("state")),
    )
    async with who.ctx.db.read() as session:
        return await payments.search_orders(
            session, actor=actor, cipher=who.ctx.cipher, search=search
        )


@router.get("/finance", response_class=HTMLResponse)
@router.get("/finance/orders", response_class=HTMLResponse)
async def orders(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *FINANCE_ROLES)
    params = {k: v.strip()[:64] for k, v in request.query_params.items()}
    searched = any(params.get(k) for k in ("voucher", "phone", "reference", "date_from"))
    error: str | None = None
    found: list[payments.FoundOrder] = []
    status = 200
    try:
        if searched or params.get("date_to") or params.get("provider") or params.get("state"):
            found = await _search(who, actor, params)
        else:
            # Today's orders by default: the page opens on something useful.
            found = await _search(who, actor, {"date_from": who.today.isoformat()})
    except YuyueError as refusal:
        error, status = who.t("finance.bad_date"), refusal.status
    fmt = params.get("format")
    if fmt in ("csv", "xlsx") and error is None:
        rows = [_order_row(item) for item in found]
        tz = who.hospital.timezone
        data = (
            export.to_csv(rows, ORDER_COLUMNS, locale=who.locale, tz=tz)
            if fmt == "csv"
            else export.to_xlsx(rows, ORDER_COLUMNS, "orders", locale=who.locale, tz=tz)
        )
        return _download(data, name=f"orders-{who.today.isoformat()}", fmt=fmt)
    query = "&".join(f"{k}={v}" for k, v in params.items() if v and k != "format")
    return render(
        request,
        who,
        "finance_orders.html",
        status=status,
        found=found,
        params=params,
        query=query,
        error=error,
        providers=list(Provider),
        states=list(OrderState),
        money=lambda fen: _money(fen, who.locale),
    )


@router.get("/finance/orders/{order_id}", response_class=HTMLResponse)
async def order_page(request: Request, who: StaffDep, order_id: uuid.UUID) -> Response:
    actor = who.require(request, *FINANCE_ROLES)
    async with who.ctx.db.read() as session:
        detail = await payments.order_detail(session, actor=actor, order_id=order_id)
        entities: list[tuple[str, uuid.UUID]] = [("payment_order", detail.found.order.id)]
        if detail.found.refund is not None:
            entities.append(("refund", detail.found.refund.id))
        trail = await staff_service.audit_trail(
            session, hospital_id=actor.hospital_id, entities=entities
        )
    return render(
        request,
        who,
        "finance_order.html",
        d=detail,
        trail=trail,
        money=lambda fen: _money(fen, who.locale),
        who_did=lambda name: who_did(name, who.locale),
    )


# --- reconciliation -------------------------------------------------------------------------

ITEM_COLUMNS = (
    export.Column("business_day", "账单日", "Business day", export.ColumnKind.DATE),
    export.Column("provider", "支付渠道", "Provider"),
    export.Column("kind", "差异类型", "Difference"),
    export.Column("line_kind", "收款/退款", "Payment / refund"),
    export.Column("out_trade_no", "商户订单号", "Out trade no"),
    export.Column("out_refund_no", "退款单号", "Refund no"),
    export.Column("transaction_id", "渠道交易号", "Provider id"),
    export.Column("local_fen", "本院金额（元）", "Ours (yuan)", export.ColumnKind.FEN),
    export.Column("provider_fen", "渠道金额（元）", "Provider's (yuan)", export.ColumnKind.FEN),
    export.Column("at", "时间", "At", export.ColumnKind.INSTANT),
    export.Column("action", "建议处理", "Recommended"),
    export.Column("refund_fen", "自动退款（元）", "Refunded (yuan)", export.ColumnKind.FEN),
    export.Column("handled_by", "处理人", "Handled by"),
    export.Column("handled_at", "处理时间", "Handled at", export.ColumnKind.INSTANT),
    export.Column("note", "处理说明", "Note"),
)


def _item_row(
    who: FloorVisitor, run: ReconciliationRun, item: ReconciliationItem
) -> dict[str, object]:
    return {
        "business_day": run.business_day,
        "provider": who.t(f"finance.provider.{run.provider}"),
        "kind": who.t(f"finance.item.{item.kind}"),
        "line_kind": who.t(f"finance.line_kind.{item.line_kind}"),
        "out_trade_no": item.out_trade_no,
        "out_refund_no": item.out_refund_no,
        "transaction_id": item.transaction_id,
        "local_fen": item.local_fen,
        "provider_fen": item.provider_fen,
        "at": item.at,
        "action": who.t(f"finance.action.{item.action or 'investigate'}"),
        "refund_fen": item.refund_fen or None,
        "handled_by": who_did(item.handled_by, who.locale),
        "handled_at": item.handled_at,
        "note": item.note,
    }


@router.get("/finance/reconciliation", response_class=HTMLResponse)
async def runs(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *FINANCE_ROLES)
    params = {k: v.strip()[:32] for k, v in request.query_params.items()}
    error: str | None = None
    status = 200
    found: Sequence[ReconciliationRun] = []
    try:
        day_from = parse_date(params.get("date_from")) or who.today - timedelta(days=30)
        day_to = parse_date(params.get("date_to"))
        provider = _choice(Provider, params.get("provider"))
        async with who.ctx.db.read() as session:
            found = await reconciliation.list_runs(
                session, actor=actor, date_from=day_from, date_to=day_to, provider=provider
            )
    except ValidationFailed as refusal:
        error, status = who.t("finance.bad_date"), refusal.status
    return render(
        request,
        who,
        "finance_runs.html",
        status=status,
        runs=found,
        params=params,
        error=error,
        providers=ONLINE_PROVIDERS,
        money=lambda fen: _money(fen, who.locale),
    )


async def _run_page(
    request: Request,
    who: FloorVisitor,
    run_id: uuid.UUID,
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    actor = who.require(request, *FINANCE_ROLES)
    async with who.ctx.db.read() as session:
        run = await reconciliation.get_run(session, actor=actor, run_id=run_id)
        items = await reconciliation.run_items(session, actor=actor, run_id=run_id)
        refunds: dict[uuid.UUID, Refund] = await reconciliation.refunds_of_items(
            session, items=items
        )
    fmt = request.query_params.get("format")
    if fmt in ("csv", "xlsx"):
        rows = [_item_row(who, run, item) for item in items]
        name = f"reconciliation-{run.provider}-{run.business_day.isoformat()}"
        tz = who.hospital.timezone
        data = (
            export.to_csv(rows, ITEM_COLUMNS, locale=who.locale, tz=tz)
            if fmt == "csv"
            else export.to_xlsx(rows, ITEM_COLUMNS, name, locale=who.locale, tz=tz)
        )
        return _download(data, name=name, fmt=fmt)
    return render(
        request,
        who,
        "finance_run.html",
        status=status,
        run=run,
        items=items,
        refunds=refunds,
        error=error,
        done=request.query_params.get("done") == "1",
        money=lambda fen: _money(fen, who.locale),
        who_did=lambda name: who_did(name, who.locale),
    )


@router.get("/finance/reconciliation/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, who: StaffDep, run_id: uuid.UUID) -> Response:
    return await _run_page(request, who, run_id)


@router.post("/finance/reconciliation/items/{item_id}/handled", response_class=HTMLResponse)
async def mark_handled(request: Request, who: StaffDep, item_id: uuid.UUID) -> Response:
    actor = who.require(request, *FINANCE_ROLES)
    form = await form_of(request, who)
    run_id = uuid_or_none(form.get("run_id"))

    async def work(session: AsyncSession) -> uuid.UUID:
        item = await reconciliation.mark_handled(
            session, actor=actor, item_id=item_id, note=form.get("note"), now=who.ctx.clock.now()
        )
        return item.run_id

    try:
        done_run = await who.ctx.db.transact(work)
    except YuyueError as refusal:
        if run_id is None:
            raise
        return await _run_page(
            request, who, run_id, status=refusal.status, error=refusal.detail(who.locale)
        )
    return redirect(f"/finance/reconciliation/{done_run}?done=1#handled")
