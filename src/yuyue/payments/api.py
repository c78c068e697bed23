"""Payment routes: a patient starts paying a held appointment; the providers notify us
(no auth: verified by signature, answered the way each provider expects); registrars take
and refund money at the window; finance searches orders."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.jobs import payment_notify_urls, request_delivery, request_refunds
from yuyue.payments import insurance_service, reconciliation, service
from yuyue.payments.gateway import Checkout, PayMethod, Provider
from yuyue.payments.models import PaymentOrder, ReconciliationItem, ReconciliationRun, Refund
from yuyue.payments.rules import InsuranceSettlement
from yuyue.payments.schemas import (
    CheckoutRead,
    InsuranceSplit,
    ItemHandled,
    PaymentCreate,
    PaymentOrderRead,
    PaymentSettingsRead,
    PaymentSettingsUpdate,
    ReceiptRead,
    ReconciliationItemRead,
    ReconciliationRunRead,
    RefundRead,
    WindowPaymentCreate,
    WindowRefund,
)
from yuyue.staff.rules import Actor
from yuyue.web.context import AppContext
from yuyue.web.deps import ActorDep, CtxDep

router = APIRouter(prefix="/api/v1", tags=["payments"])

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown API key / token (`unauthorized`)"},
    403: {"description": "`forbidden` (the role does not take or refund money)"},
    404: {"description": "`not_found`"},
    409: {"description": "`not_held`, `no_fee`, `invalid_state`, `refund_not_at_window`"},
    422: {"description": "`validation_error`, `method_not_allowed`, `provider_unavailable`"},
    502: {"description": "`payment_gateway_error`: the provider could not take the order"},
}


def _checkout(checkout: Checkout) -> CheckoutRead:
    return CheckoutRead(
        method=checkout.method,
        redirect_url=checkout.redirect_url,
        qr_content=checkout.qr_content,
        jsapi_params=dict(checkout.jsapi_params) if checkout.jsapi_params else None,
    )


def _refund(refund: Refund) -> RefundRead:
    return RefundRead(
        id=refund.id,
        state=str(refund.state),
        amount_fen=refund.amount_fen,
        reason=refund.reason,
        out_refund_no=refund.out_refund_no,
        tries=refund.tries,
        last_error=refund.last_error,
        finished_at=refund.finished_at,
    )


def _order(order: PaymentOrder, refund: Refund | None = None) -> PaymentOrderRead:
    return PaymentOrderRead(
        id=order.id,
        appointment_id=order.appointment_id,
        state=str(order.state),
        amount_fen=order.amount_fen,
        currency=order.currency,
        provider=order.provider,
        method=order.method,
        out_trade_no=order.out_trade_no,
        transaction_id=order.transaction_id,
        receipt_no=order.receipt_no,
        paid_at=order.paid_at,
        invoice_printed_at=order.invoice_printed_at,
        created_at=order.created_at,
        refund=_refund(refund) if refund is not None else None,
    )


@router.post(
    "/appointments/{appointment_id}/payments",
    response_model=CheckoutRead,
    responses=_REFUSALS,
    summary="Start paying a held appointment: what the client needs to open the cashier",
)
async def start_payment(
    appointment_id: uuid.UUID, body: PaymentCreate, request: Request, ctx: CtxDep, actor: ActorDep
) -> CheckoutRead:
    if body.provider is Provider.INSURANCE:
        return await _start_insurance(appointment_id, body, ctx, actor)
    checkout = await service.start_payment(
        db=ctx.db,
        gateways=ctx.gateways,
        actor=actor,
        appointment_id=appointment_id,
        provider=body.provider,
        method=body.method,
        notify_url=payment_notify_urls(ctx)[body.provider],
        return_url=body.return_url,
        payer_openid=body.payer_openid,
        client_ip=request.client.host if request.client else None,
        clock=ctx.clock,
    )
    return _checkout(checkout)


async def _notify(provider: Provider, request: Request, ctx: Any) -> Response:
    handled = await service.handle_notification(
        db=ctx.db,
        gateways=ctx.gateways,
        provider=provider,
        headers=dict(request.headers),
        body=await request.body(),
        clock=ctx.clock,
    )
    if handled.result in (service.PAID, service.REFUND_UPDATED):
        request_delivery(ctx)
    if handled.refunds:
        request_refunds(ctx)
    reply = handled.reply
    return Response(reply.body, status_code=reply.status_code, media_type=reply.content_type)


@router.post(
    "/payments/wechatpay/notify",
    summary="WeChat Pay API v3 notifications (payments and refunds), verified and idempotent",
    response_class=Response,
)
async def wechatpay_notify(request: Request, ctx: CtxDep) -> Response:
    return await _notify(Provider.WECHATPAY, request, ctx)


@router.post(
    "/payments/alipay/notify",
    summary="Alipay asynchronous notifications, verified and idempotent",
    response_class=Response,
)
async def alipay_notify(request: Request, ctx: CtxDep) -> Response:
    return await _notify(Provider.ALIPAY, request, ctx)


@router.post(
    "/payments/insurance/notify",
    summary="Medical insurance platform notifications, verified and idempotent",
    response_class=Response,
)
async def insurance_notify(request: Request, ctx: CtxDep) -> Response:
    handled = await insurance_service.handle_insurance_notification(
        db=ctx.db,
        insurance=ctx.insurance,
        headers=dict(request.headers),
        body=await request.body(),
        clock=ctx.clock,
    )
    if handled.result in (service.PAID, service.REFUND_UPDATED):
        request_delivery(ctx)
    if handled.refunds:
        request_refunds(ctx)
    reply = handled.reply
    return Response(reply.body, status_code=reply.status_code, media_type=reply.content_type)


@router.post(
    "/appointments/{appointment_id}/window-payments",
    status_code=201,
    response_model=PaymentOrderRead,
    responses=_REFUSALS,
    summary="A registrar takes the fee at the window (cash, bank card, insurance card)",
)
async def pay_at_window(
    appointment_id: uuid.UUID, body: WindowPaymentCreate, ctx: CtxDep, actor: ActorDep
) -> PaymentOrderRead:
    async def work(session: AsyncSession) -> PaymentOrderRead:
        order = await service.pay_at_window(
            session,
            actor=actor,
            appointment_id=appointment_id,
            method=body.method,
            receipt_no=body.receipt_no,
            now=ctx.clock.now(),
        )
        return _order(order)

    result = await ctx.db.transact(work)
    request_delivery(ctx)
    return result


@router.post(
    "/payment-orders/{order_id}/invoice",
    response_model=PaymentOrderRead,
    responses=_REFUSALS,
    summary="Record that a paper invoice was printed (a refund then happens at the window)",
)
async def print_invoice(order_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> PaymentOrderRead:
    async def work(session: AsyncSession) -> PaymentOrderRead:
        order = await service.mark_invoice_printed(
            session, actor=actor, order_id=order_id, now=ctx.clock.now()
        )
        return _order(order)

    return await ctx.db.transact(work)


@router.post(
    "/refunds/{refund_id}/window",
    response_model=RefundRead,
    responses=_REFUSALS,
    summary="A registrar hands the money back at the window",
)
async def refund_at_window(
    refund_id: uuid.UUID, ctx: CtxDep, actor: ActorDep, body: WindowRefund | None = None
) -> RefundRead:
    async def work(session: AsyncSession) -> RefundRead:
        refund = await service.refund_at_window(
            session,
            actor=actor,
            refund_id=refund_id,
            receipt_no=body.receipt_no if body else None,
            now=ctx.clock.now(),
        )
        return _refund(refund)

    result = await ctx.db.transact(work)
    request_delivery(ctx)
    return result


@router.get(
    "/payment-orders",
    response_model=list[PaymentOrderRead],
    responses=_REFUSALS,
    summary="Finance: orders and their refunds by voucher code, phone or transaction id",
)
async def list_orders(
    ctx: CtxDep,
    actor: ActorDep,
    voucher: Annotated[str | None, Query(max_length=40)] = None,
    phone: Annotated[str | None, Query(max_length=20)] = None,
    transaction_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[PaymentOrderRead]:
    async with ctx.db.read() as session:
        rows = await service.find_orders(
            session,
            actor=actor,
            cipher=ctx.cipher,
            voucher=voucher,
            phone=phone,
            transaction_id=transaction_id,
        )
    return [_order(order, refund) for order, refund in rows]


async def _start_insurance(
    appointment_id: uuid.UUID, body: PaymentCreate, ctx: AppContext, actor: Actor
) -> CheckoutRead:
    """Medical insurance pre-authorises at once: no cashier to open."""
    paid = await insurance_service.start_insurance_payment(
        db=ctx.db,
        insurance=ctx.insurance,
        cipher=ctx.cipher,
        actor=actor,
        appointment_id=appointment_id,
        insured_number=body.insurance_id,
        clock=ctx.clock,
    )
    request_delivery(ctx)
    split = paid.split
    return CheckoutRead(
        method=PayMethod.INSURANCE_MOBILE,
        redirect_url=None,
        qr_content=None,
        jsapi_params=None,
        order_state=paid.state.value,
        split=InsuranceSplit(
            pool_fen=split.pool_fen, account_fen=split.account_fen, self_pay_fen=split.self_pay_fen
        )
        if split is not None
        else None,
    )


# --- receipts and the hospital's payment settings -------------------------------------------

_RECEIPT_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown API key / token (`unauthorized`)"},
    403: {"description": "`forbidden`"},
    404: {"description": "`not_found`"},
    409: {"description": "`no_receipt`: nothing was paid for this appointment"},
    422: {"description": "`validation_error`"},
}


@router.get(
    "/appointments/{appointment_id}/receipt",
    response_model=ReceiptRead,
    responses=_RECEIPT_REFUSALS,
    summary="The appointment's receipt: fee, provider, paid time, receipt number and the "
    "medical-insurance split (pool, personal account, own share)",
)
async def receipt(appointment_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> ReceiptRead:
    async with ctx.db.read() as session:
        found = await insurance_service.receipt_of(
            session, actor=actor, appointment_id=appointment_id
        )
    split = found.split
    return ReceiptRead(
        appointment_id=found.appointment_id,
        fee_fen=found.fee_fen,
        state=found.state,
        provider=found.provider,
        method=found.method,
        paid_at=found.paid_at,
        receipt_no=found.receipt_no,
        split=InsuranceSplit(
            pool_fen=split.pool_fen, account_fen=split.account_fen, self_pay_fen=split.self_pay_fen
        )
        if split is not None
        else None,
        insured=found.insured_masked,
    )


@router.get(
    "/payment-settings",
    response_model=PaymentSettingsRead,
    responses=_RECEIPT_REFUSALS,
    summary="The hospital's payment settings",
)
async def payment_settings(ctx: CtxDep, actor: ActorDep) -> PaymentSettingsRead:
    async with ctx.db.read() as session:
        settlement = await insurance_service.settlement_of(session, hospital_id=actor.hospital_id)
    return PaymentSettingsRead(insurance_settlement=settlement.value)


@router.put(
    "/payment-settings",
    response_model=PaymentSettingsRead,
    responses=_RECEIPT_REFUSALS,
    summary="Administrators: settle medical insurance at booking or after the visit",
)
async def update_payment_settings(
    body: PaymentSettingsUpdate, ctx: CtxDep, actor: ActorDep
) -> PaymentSettingsRead:
    async def work(session: AsyncSession) -> PaymentSettingsRead:
        settlement = await insurance_service.set_settlement(
            session,
            actor=actor,
            settlement=InsuranceSettlement(body.insurance_settlement),
            now=ctx.clock.now(),
        )
        return PaymentSettingsRead(insurance_settlement=settlement.value)

    return await ctx.db.transact(work)


# --- reconciliation (finance) ----------------------------------------------------------------

_FINANCE_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown token (`unauthorized`)"},
    403: {"description": "`forbidden`: finance (or an administrator) only"},
    404: {"description": "`not_found`"},
    409: {"description": "`already_handled`"},
    422: {"description": "`validation_error`, `note_required`"},
}


def _run(run: ReconciliationRun) -> ReconciliationRunRead:
    return ReconciliationRunRead.model_validate(run, from_attributes=True)


def _item(item: ReconciliationItem) -> ReconciliationItemRead:
    return ReconciliationItemRead.model_validate(item, from_attributes=True)


@router.get(
    "/reconciliation",
    response_model=list[ReconciliationRunRead],
    responses=_FINANCE_REFUSALS,
    summary="Finance: the T+1 reconciliation runs, of one business day and/or provider",
)
async def list_reconciliation_runs(
    ctx: CtxDep,
    actor: ActorDep,
    day: Annotated[date | None, Query(alias="date", description="business day")] = None,
    provider: Provider | None = None,
) -> list[ReconciliationRunRead]:
    async with ctx.db.read() as session:
        runs = await reconciliation.list_runs(
            session, actor=actor, date_from=day, date_to=day, provider=provider
        )
    return [_run(run) for run in runs]


@router.get(
    "/reconciliation/{run_id}/items",
    response_model=list[ReconciliationItemRead],
    responses=_FINANCE_REFUSALS,
    summary="Finance: what one run found, with the recommended action and who handled it",
)
async def list_reconciliation_items(
    run_id: uuid.UUID, ctx: CtxDep, actor: ActorDep
) -> list[ReconciliationItemRead]:
    async with ctx.db.read() as session:
        items = await reconciliation.run_items(session, actor=actor, run_id=run_id)
    return [_item(item) for item in items]


@router.post(
    "/reconciliation/items/{item_id}/handled",
    response_model=ReconciliationItemRead,
    responses=_FINANCE_REFUSALS,
    summary="Finance: mark a difference handled, with a note (audited; kept across reruns)",
)
async def mark_reconciliation_item_handled(
    item_id: uuid.UUID, body: ItemHandled, ctx: CtxDep, actor: ActorDep
) -> ReconciliationItemRead:
    async def work(session: AsyncSession) -> ReconciliationItemRead:
        item = await reconciliation.mark_handled(
            session, actor=actor, item_id=item_id, note=body.note, now=ctx.clock.now()
        )
        return _item(item)

    return await ctx.db.transact(work)
