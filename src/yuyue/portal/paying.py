"""Paying a held appointment on the patient pages, through the hospital's real providers.

The pay page offers each configured provider with the method that suits the browser
(`offers`); pressing pay opens an order through `payments.service.start_payment` and sends
the patient to the provider's cashier (or shows WeChat Pay's QR code on a desktop). The
cashier sends the patient back to the result page, which never believes the way back: the
booking is confirmed only by the provider's verified notification or by the answer to our
own query (`payments.service.sync_order`), both through the same idempotent path. No page
here confirms a payment itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from yuyue import jobs
from yuyue.booking.schemas import AppointmentRead
from yuyue.booking.states import AppointmentStatus
from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.payments import service as payments_service
from yuyue.payments.gateway import PayMethod, Provider
from yuyue.payments.registry import Gateways
from yuyue.payments.rules import ProviderUnavailable, check_payable
from yuyue.portal import pay_texts as _pay_texts  # noqa: F401  (registers the sentences)
from yuyue.portal.pages import own_view, request_delivery
from yuyue.portal.web import Visitor, form_of, redirect, render, visitor

router = APIRouter(include_in_schema=False)
VisitorDep = Annotated[Visitor, Depends(visitor)]

# The result page refreshes itself this often, this many times, while it waits.
REFRESH_SECONDS = 3
REFRESH_TRIES = 20
# The providers a patient pays online, in the order the page offers them.
ONLINE = (Provider.WECHATPAY, Provider.ALIPAY)
_MOBILE_MARKS = ("mobile", "android", "iphone", "ipad", "ipod", "harmonyos", "windows phone")
_DONE = {AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN, AppointmentStatus.COMPLETED}


# --- which provider, which method (pure) -------------------------------------------------


@dataclass(frozen=True)
class Device:
    in_wechat: bool
    mobile: bool


def device_of(user_agent: str) -> Device:
    agent = user_agent.lower()
    in_wechat = "micromessenger" in agent
    return Device(in_wechat=in_wechat, mobile=in_wechat or any(m in agent for m in _MOBILE_MARKS))


@dataclass(frozen=True)
class Offer:
    provider: Provider
    method: PayMethod


def offers(
    configured: Gateways | set[Provider], *, user_agent: str, openid: str | None = None
) -> list[Offer]:
    """The providers to offer, each with the method that suits the browser: WeChat Pay by
    JSAPI inside WeChat (only with the payer's openid; else H5), H5 on a phone, a Native QR
    code on a desktop; Alipay's WAP cashier on a phone and its PAGE cashier on a desktop.
    WeChat's browser does not open Alipay's cashier, so inside WeChat Alipay is offered
    only when WeChat Pay is not."""
    device = device_of(user_agent)
    found: list[Offer] = []
    for provider in ONLINE:
        if provider not in configured:
            continue
        if provider is Provider.WECHATPAY:
            if device.in_wechat and openid:
                method = PayMethod.JSAPI
            elif device.mobile:
                method = PayMethod.H5
            else:
                method = PayMethod.NATIVE
        else:
            if device.in_wechat and Provider.WECHATPAY in configured:
                continue
            method = PayMethod.WAP if device.mobile else PayMethod.PAGE
        found.append(Offer(provider, method))
    return found


def deadline_words(
    hold_expires_at: datetime, *, now: datetime, timezone: str, locale: str
) -> tuple[str, int]:
    """The hold's end as a patient reads it ("10:15" today, else with the day, in the
    hospital's zone) and the whole minutes left (never negative)."""
    zone = ZoneInfo(timezone)
    local_end, local_now = hold_expires_at.astimezone(zone), now.astimezone(zone)
    text = (
        f"{local_end:%H:%M}"
        if local_end.date() == local_now.date()
        else i18n.format_wall_clock(local_end, locale)
    )
    left = max(0, int((hold_expires_at - now).total_seconds() // 60))
    return text, left


# --- the pages ---------------------------------------------------------------------------


def _return_url(who: Visitor, appointment_id: uuid.UUID) -> str:
    base = who.ctx.settings.public_base_url.rstrip("/")
    return f"{base}/appointments/{appointment_id}/paid"


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _view(who: Visitor, appointment_id: uuid.UUID) -> tuple[AppointmentRead, str]:
    async with who.ctx.db.read() as session:
        _, patient, view = await own_view(session, who, appointment_id)
    return view, patient.name


def _pay_page(
    request: Request,
    who: Visitor,
    view: AppointmentRead,
    patient_name: str,
    *,
    status: int = 200,
    error: str | None = None,
    qr: str | None = None,
) -> Response:
    deadline, minutes_left = (
        deadline_words(
            view.hold_expires_at, now=who.now, timezone=who.hospital.timezone, locale=who.locale
        )
        if view.hold_expires_at is not None
        else (None, 0)
    )
    return render(
        request,
        who,
        "pay.html",
        status=status,
        a=view,
        patient_name=patient_name,
        offers=offers(who.ctx.gateways, user_agent=request.headers.get("user-agent", "")),
        payable=view.status is AppointmentStatus.HELD and view.fee > 0,
        deadline=deadline,
        minutes_left=minutes_left,
        error=error,
        qr=qr,
    )


@router.get("/appointments/{appointment_id}/pay", response_class=HTMLResponse)
async def pay_page(request: Request, who: VisitorDep, appointment_id: uuid.UUID) -> Response:
    who.require_account(request)
    view, patient_name = await _view(who, appointment_id)
    return _pay_page(request, who, view, patient_name)


@router.post("/appointments/{appointment_id}/pay", response_class=HTMLResponse)
async def pay(request: Request, who: VisitorDep, appointment_id: uuid.UUID) -> Response:
    """Opens (or shows again) the chosen provider's cashier for the visitor's own held
    appointment: a redirect to the cashier, or WeChat Pay's QR code on a desktop."""
    who.require_account(request)
    form = await form_of(request, who)
    view, patient_name = await _view(who, appointment_id)  # someone else's: 404
    chosen = {
        offer.provider.value: offer
        for offer in offers(who.ctx.gateways, user_agent=request.headers.get("user-agent", ""))
    }.get(form.get("provider", ""))
    try:
        check_payable(view.status, fee_fen=view.fee)  # the truer refusal comes first
        if chosen is None:
            raise ProviderUnavailable(provider=form.get("provider", "")[:20])
        checkout = await payments_service.start_payment(
            db=who.ctx.db,
            gateways=who.ctx.gateways,
            actor=who.actor,
            appointment_id=appointment_id,
            provider=chosen.provider,
            method=chosen.method,
            notify_url=jobs.payment_notify_urls(who.ctx)[chosen.provider],
            return_url=_return_url(who, appointment_id),
            clock=who.ctx.clock,
            client_ip=_client_ip(request),
        )
    except YuyueError as error:
        view, patient_name = await _view(who, appointment_id)
        return _pay_page(
            request, who, view, patient_name, status=error.status, error=error.detail(who.locale)
        )
    if checkout.redirect_url:
        return redirect(checkout.redirect_url)
    if checkout.qr_content:
        qr = segno.make(checkout.qr_content, error="m").svg_inline(scale=4, border=4, dark="#111")
        return _pay_page(request, who, view, patient_name, qr=qr)
    # JSAPI needs WeChat's own page script and the payer's openid, which these pages do not
    # have (`offers` never chooses it without one).
    raise ProviderUnavailable(provider=chosen.provider.value)


@router.get("/appointments/{appointment_id}/paid", response_class=HTMLResponse)
async def paid_page(
    request: Request, who: VisitorDep, appointment_id: uuid.UUID, n: int = 0
) -> Response:
    """Where the cashier sends the patient back. Booked already (the notification came
    first): the voucher. Otherwise the provider is asked: paid in time, the voucher; paid
    after the place was gone, the refund under way; not paid yet, the page says so and
    refreshes itself a while."""
    who.require_account(request)
    view, patient_name = await _view(who, appointment_id)
    if view.status not in _DONE and view.refund is None and view.fee > 0:
        synced = await payments_service.sync_order(
            db=who.ctx.db,
            gateways=who.ctx.gateways,
            hospital_id=who.hospital.id,
            appointment_id=appointment_id,
            clock=who.ctx.clock,
        )
        if synced.result == payments_service.PAID:
            request_delivery(who)
        if synced.refunds:
            jobs.request_refunds(who.ctx)
        view, patient_name = await _view(who, appointment_id)
    if view.status in _DONE:
        return redirect(f"/appointments/{appointment_id}?paid=1")
    tries = max(0, min(n, REFRESH_TRIES))
    waiting = view.status is AppointmentStatus.HELD
    return render(
        request,
        who,
        "paid.html",
        a=view,
        patient_name=patient_name,
        waiting=waiting,
        refresh=waiting and tries < REFRESH_TRIES,
        refresh_seconds=REFRESH_SECONDS,
        next_try=tries + 1,
    )


@router.get("/appointments/{appointment_id}/payment-state")
async def payment_state(request: Request, who: VisitorDep, appointment_id: uuid.UUID) -> Response:
    """What the QR page's script polls (read only): whether the hold is still waiting."""
    who.require_account(request)
    view, _ = await _view(who, appointment_id)
    return JSONResponse({"status": view.status.value}, headers={"cache-control": "no-store"})
