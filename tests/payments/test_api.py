"""Payments over HTTP: the checkout, the providers' notify routes, the appointment's
payment and refund, the window and finance routes, and every refusal as problem+json."""

from __future__ import annotations

import httpx

from tests.conftest import World
from tests.helpers import assert_problem, row_counts, staff_auth
from tests.payments.support import fee_session, hold, install_double, order_for
from yuyue.jobs import send_refunds_once
from yuyue.staff.enums import Role
from yuyue.web.context import AppContext


async def paid_over_http(
    client: httpx.AsyncClient, ctx: AppContext, world: World
) -> tuple[str, str]:
    double = install_double(ctx)
    held = await hold(ctx, world, await fee_session(ctx, world))
    started = await client.post(
        f"/api/v1/appointments/{held}/payments",
        json={"provider": "wechatpay", "method": "h5"},
        headers=world.auth,
    )
    assert started.status_code == 200, started.text
    assert started.json()["redirect_url"].startswith("https://cashier.test/")
    order = await order_for(ctx, held)
    headers, body = double.pay(order.out_trade_no)
    answer = await client.post("/api/v1/payments/wechatpay/notify", content=body, headers=headers)
    assert answer.status_code == 204, answer.text
    return str(held), order.transaction_id or ""


class TestPayingOverHttp:
    async def test_pay_then_cancel_shows_payment_and_refund_on_the_appointment(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        held, _ = await paid_over_http(client, ctx, world)

        shown = (await client.get(f"/api/v1/appointments/{held}", headers=world.auth)).json()
        assert shown["status"] == "booked"
        assert shown["payment"] == {
            "state": "paid",
            "amount_fen": 8000,
            "provider": "wechatpay",
            "split": None,
        }
        assert shown["refund"] is None

        cancelled = await client.post(f"/api/v1/appointments/{held}/cancel", headers=world.auth)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["refund"] == {"state": "pending"}
        assert cancelled.json()["payment"]["state"] == "refunding"

        await send_refunds_once(ctx)

        shown = (await client.get(f"/api/v1/appointments/{held}", headers=world.auth)).json()
        assert shown["refund"] == {"state": "refunded"}
        assert shown["payment"]["state"] == "refunded"

    async def test_a_forged_notification_is_answered_as_failed_and_changes_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        await client.post(
            f"/api/v1/appointments/{held}/payments",
            json={"provider": "wechatpay", "method": "native"},
            headers=world.auth,
        )
        order = await order_for(ctx, held)
        _, body = double.pay(order.out_trade_no)

        answer = await client.post(
            "/api/v1/payments/wechatpay/notify",
            content=body,
            headers={"X-Double-Signature": "0" * 64},
        )

        assert answer.status_code == 500
        shown = (await client.get(f"/api/v1/appointments/{held}", headers=world.auth)).json()
        assert shown["status"] == "held" and shown["payment"] is None


class TestRefusals:
    async def test_bad_payment_requests_are_refused_with_stable_codes(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        free = await hold(ctx, world, world.session, patient_id=world.other_patient.id)
        url = f"/api/v1/appointments/{held}/payments"
        before = await row_counts(ctx.db)

        assert_problem(
            await client.post(
                url, json={"provider": "wechatpay", "method": "wap"}, headers=world.auth
            ),
            422,
            "method_not_allowed",
        )
        assert_problem(
            await client.post(
                url, json={"provider": "alipay", "method": "wap"}, headers=world.auth
            ),
            422,
            "provider_unavailable",
        )
        assert_problem(
            await client.post(url, json={"provider": "paypal", "method": "h5"}, headers=world.auth),
            422,
            "validation_error",
        )
        assert_problem(
            await client.post(
                f"/api/v1/appointments/{free}/payments",
                json={"provider": "wechatpay", "method": "h5"},
                headers=world.auth,
            ),
            409,
            "no_fee",
        )
        assert_problem(
            await client.post(url, json={"provider": "wechatpay", "method": "h5"}),
            401,
            "unauthorized",
        )
        assert_problem(
            await client.post("/api/v1/payments/alipay/notify", content=b"x"),
            422,
            "provider_unavailable",
        )
        assert await row_counts(ctx.db) == before

    async def test_a_booked_appointment_is_not_held(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        held, _ = await paid_over_http(client, ctx, world)
        assert_problem(
            await client.post(
                f"/api/v1/appointments/{held}/payments",
                json={"provider": "wechatpay", "method": "h5"},
                headers=world.auth,
            ),
            409,
            "not_held",
        )


class TestWindowAndFinance:
    async def test_the_window_takes_money_only_from_a_registrar(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        held = await hold(ctx, world, await fee_session(ctx, world))
        url = f"/api/v1/appointments/{held}/window-payments"
        body = {"method": "cash", "receipt_no": "SF-1"}
        doctor = await staff_auth(client, ctx, world, Role.DOCTOR)
        assert_problem(await client.post(url, json=body, headers=doctor), 403, "forbidden")
        assert_problem(await client.post(url, json=body, headers=world.auth), 403, "forbidden")
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        assert_problem(
            await client.post(url, json={"method": "h5", "receipt_no": "x"}, headers=registrar),
            422,
            "method_not_allowed",
        )

        paid = await client.post(url, json=body, headers=registrar)

        assert paid.status_code == 201, paid.text
        assert (paid.json()["state"], paid.json()["provider"]) == ("paid", "window")
        invoice = await client.post(
            f"/api/v1/payment-orders/{paid.json()['id']}/invoice", headers=registrar
        )
        assert invoice.status_code == 200 and invoice.json()["invoice_printed_at"]
        cancelled = await client.post(f"/api/v1/appointments/{held}/cancel", headers=registrar)
        assert cancelled.json()["refund"] == {"state": "at_window"}

        finance = await staff_auth(client, ctx, world, Role.FINANCE)
        [order] = (
            await client.get(
                "/api/v1/payment-orders",
                params={"transaction_id": paid.json()["out_trade_no"]},
                headers=finance,
            )
        ).json()
        refund_id = order["refund"]["id"]
        assert order["refund"]["state"] == "at_window"
        assert_problem(
            await client.post(f"/api/v1/refunds/{refund_id}/window", headers=finance),
            403,
            "forbidden",
        )
        done = await client.post(
            f"/api/v1/refunds/{refund_id}/window", json={"receipt_no": "TK-1"}, headers=registrar
        )
        assert done.status_code == 200 and done.json()["state"] == "succeeded"
        assert_problem(
            await client.post(f"/api/v1/refunds/{refund_id}/window", headers=registrar),
            409,
            "refund_not_at_window",
        )

    async def test_finance_finds_orders_by_voucher_and_transaction_id_and_others_cannot(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        held, transaction_id = await paid_over_http(client, ctx, world)
        voucher = (await client.get(f"/api/v1/appointments/{held}", headers=world.auth)).json()[
            "voucher"
        ]["code"]
        finance = await staff_auth(client, ctx, world, Role.FINANCE)

        by_tx = await client.get(
            "/api/v1/payment-orders", params={"transaction_id": transaction_id}, headers=finance
        )
        by_voucher = await client.get(
            "/api/v1/payment-orders", params={"voucher": voucher}, headers=finance
        )

        assert [o["appointment_id"] for o in by_tx.json()] == [held]
        assert [o["appointment_id"] for o in by_voucher.json()] == [held]
        assert_problem(
            await client.get("/api/v1/payment-orders", headers=world.auth), 403, "forbidden"
        )
