"""Finance's pages over HTTP: only finance (and administrators) open them; the orders search
finds by voucher, phone, transaction and filters, shows no full phone, exports CSV and XLSX;
the reconciliation day lists its differences and marks one handled through a CSRF-checked,
audited form; refusals change nothing. The JSON routes answer the same, as problem+json."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from openpyxl import load_workbook  # type: ignore[import-untyped]
from sqlalchemy import select

from tests.conftest import NOW, World
from tests.frontdesk.test_pages import sign_in_form
from tests.helpers import assert_problem, row_counts
from tests.payments.support import FEE, fee_session, hold, install_double, pay_online
from tests.portal.conftest import Browser
from yuyue.jobs import reconcile_once
from yuyue.payments.gateway import Provider, Statement, StatementKind, StatementLine
from yuyue.payments.models import PaymentOrder, ReconciliationItem
from yuyue.payments.reconcile import business_day
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext


class StatementDouble:
    """The provider's statement for one day, as given (reconciliation reads nothing else)."""

    def __init__(self, statement: Statement) -> None:
        self.provider = statement.provider
        self.statement = statement

    async def download_statement(self, bill_date: object) -> Statement:
        from yuyue.payments.gateway import StatementNotReady

        if bill_date != self.statement.bill_date:
            raise StatementNotReady("no bill")
        return self.statement


@dataclass
class Books:
    paid: PaymentOrder
    lost: PaymentOrder
    run_id: str
    phone: str
    voucher: str


@pytest_asyncio.fixture
async def books(ctx: AppContext, world: World) -> Books:
    """Two paid orders; the provider's statement lists one at another amount and not the
    other: an amount mismatch and a local-only difference, both for finance."""
    ctx.settings.hospital_code = world.hospital.code
    double = install_double(ctx)
    clinic = await fee_session(ctx, world)
    paid = await pay_online(ctx, world, await hold(ctx, world, clinic), double)
    lost = await pay_online(
        ctx, world, await hold(ctx, world, clinic, patient_id=world.other_patient.id), double
    )
    assert paid.paid_at is not None
    day = business_day(paid.paid_at)
    line = StatementLine(
        StatementKind.PAYMENT, paid.out_trade_no, paid.transaction_id, FEE - 1, paid.paid_at
    )
    ctx.gateways[Provider.WECHATPAY] = StatementDouble(  # type: ignore[assignment]
        Statement(Provider.WECHATPAY, day, (line,))
    )
    [report] = await reconcile_once(ctx, provider=Provider.WECHATPAY, business_day=day)
    async with ctx.db.session_scope() as s:
        for username, roles in (
            ("fin", [Role.FINANCE]),
            ("adm", [Role.ADMIN]),
            ("reg", [Role.REGISTRAR]),
        ):
            await staff_service.create_staff(
                s,
                hospital_id=world.hospital.id,
                username=username,
                display_name=username,
                password="secret-pass",
                roles=roles,
                now=NOW,
            )
        from yuyue.booking.models import Appointment

        voucher = await s.scalar(
            select(Appointment.voucher_code).where(Appointment.id == paid.appointment_id)
        )
    assert voucher is not None
    phone = ctx.cipher.decrypt(world.patient.phone_cipher)
    return Books(paid, lost, str(report.run_id), phone, voucher)


@pytest_asyncio.fixture
async def http(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def signed_in(http: httpx.AsyncClient, username: str) -> Browser:
    signed = await sign_in_form(
        http, {"username": username, "password": "secret-pass", "next": "/"}
    )
    assert signed.status_code == 303, signed.text
    return Browser(http)


async def items(ctx: AppContext) -> list[ReconciliationItem]:
    async with ctx.db.read() as s:
        return list((await s.scalars(select(ReconciliationItem))).all())


class TestWhoMayOpenThem:
    @pytest.mark.parametrize("path", ["/finance/orders", "/finance/reconciliation"])
    async def test_nobody_signed_in_is_sent_to_sign_in(
        self, http: httpx.AsyncClient, books: Books, path: str
    ) -> None:
        response = await http.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/staff/signin?next={path}"

    async def test_a_registrar_is_refused_and_changes_nothing(
        self, http: httpx.AsyncClient, ctx: AppContext, books: Books
    ) -> None:
        browser = await signed_in(http, "reg")
        assert (await browser.page("/finance/orders")).status_code == 403
        assert (await browser.page(f"/finance/reconciliation/{books.run_id}")).status_code == 403
        before = await row_counts(ctx.db)
        item = (await items(ctx))[0]
        await browser.page("/desk")
        refused = await browser.submit(
            f"/finance/reconciliation/items/{item.id}/handled",
            {"note": "not mine", "run_id": books.run_id},
        )
        assert refused.status_code == 403
        assert await row_counts(ctx.db) == before

    async def test_finance_lands_on_reconciliation_and_an_administrator_reads_too(
        self, http: httpx.AsyncClient, books: Books
    ) -> None:
        signed = await sign_in_form(
            http, {"username": "fin", "password": "secret-pass", "next": "/"}
        )
        assert signed.headers["location"] == "/finance/reconciliation"
        http.cookies.clear()
        admin = await signed_in(http, "adm")
        assert (await admin.page(f"/finance/reconciliation/{books.run_id}")).status_code == 200


class TestOrders:
    async def test_search_by_each_key_and_no_full_phone_is_shown(
        self, http: httpx.AsyncClient, books: Books
    ) -> None:
        browser = await signed_in(http, "fin")
        for query in (
            {"voucher": books.voucher},
            {"phone": books.phone},
            {"reference": books.paid.transaction_id or ""},
            {"reference": books.paid.out_trade_no},
        ):
            page = await browser.page("/finance/orders", params=query)
            assert page.status_code == 200
            assert page.text.count('data-testid="order"') == 1, query
            results = page.text.split('data-testid="orders"')[1]
            assert books.paid.out_trade_no in results
            # The patient's phone shows masked; only the searcher's own input holds it.
            assert books.phone not in results and books.phone[-4:] in results
        day = business_day(NOW).isoformat()
        both = await browser.page(
            "/finance/orders",
            params={"date_from": day, "date_to": day, "provider": "wechatpay", "state": "paid"},
        )
        assert both.text.count('data-testid="order"') == 2
        none = await browser.page("/finance/orders", params={"state": "refunded"})
        assert 'data-testid="none-found"' in none.text
        bad = await browser.page("/finance/orders", params={"date_from": "yesterday"})
        assert bad.status_code == 422

    async def test_an_order_shows_its_calls_notifications_and_audit_trail(
        self, http: httpx.AsyncClient, books: Books
    ) -> None:
        browser = await signed_in(http, "fin")
        page = await browser.page(f"/finance/orders/{books.paid.id}")
        assert page.status_code == 200
        assert page.text.count('data-testid="attempt"') == 2  # the create and the notification
        assert "notification" in page.text and 'data-testid="audit-entry"' in page.text
        assert books.phone not in page.text

    async def test_exports_in_csv_and_xlsx(self, http: httpx.AsyncClient, books: Books) -> None:
        browser = await signed_in(http, "fin")
        day = business_day(NOW).isoformat()
        csv_answer = await browser.page(
            "/finance/orders", params={"date_from": day, "format": "csv"}
        )
        assert csv_answer.headers["content-type"].startswith("text/csv")
        text = csv_answer.content.decode("utf-8-sig")
        assert text.splitlines()[0].startswith("下单时间,支付时间")
        assert books.paid.out_trade_no in text and "80.00" in text
        assert books.phone not in text
        xlsx_answer = await browser.page(
            "/finance/orders", params={"date_from": day, "format": "xlsx"}
        )
        sheet = load_workbook(io.BytesIO(xlsx_answer.content)).active
        assert sheet.max_row == 3 and sheet.cell(1, 6).value == "金额（元）"


class TestReconciliationPages:
    async def test_the_day_lists_differences_and_one_is_marked_handled(
        self, http: httpx.AsyncClient, ctx: AppContext, books: Books
    ) -> None:
        browser = await signed_in(http, "fin")
        listing = await browser.page("/finance/reconciliation")
        assert listing.text.count('data-testid="run"') == 1
        day = await browser.page(f"/finance/reconciliation/{books.run_id}")
        assert day.text.count('data-testid="item"') == 2
        assert "金额不一致" in day.text and "本院有、渠道无" in day.text
        mismatch = next(i for i in await items(ctx) if i.kind == "amount_mismatch")

        done = await browser.submit(
            f"/finance/reconciliation/items/{mismatch.id}/handled",
            {"note": "渠道少结 0.01 元，已申请补款", "run_id": books.run_id},
        )

        assert done.status_code == 303
        after = await browser.page(done.headers["location"])
        assert "已标记为已处理" in after.text and "渠道少结 0.01 元" in after.text
        assert after.text.count('data-testid="handle-form"') == 1
        async with ctx.db.read() as s:
            entry = await s.scalar(
                select(AuditEntry).where(AuditEntry.entity_type == "reconciliation_item")
            )
        assert entry is not None and entry.entity_id == mismatch.id

    async def test_a_missing_note_or_csrf_changes_nothing(
        self, http: httpx.AsyncClient, ctx: AppContext, books: Books
    ) -> None:
        browser = await signed_in(http, "fin")
        await browser.page(f"/finance/reconciliation/{books.run_id}")
        item = (await items(ctx))[0]
        before = await row_counts(ctx.db)
        empty = await browser.submit(
            f"/finance/reconciliation/items/{item.id}/handled",
            {"note": " ", "run_id": books.run_id},
        )
        assert empty.status_code == 422 and "请说明如何处理" in empty.text
        forged = await http.post(
            f"/finance/reconciliation/items/{item.id}/handled",
            data={"note": "x", "csrf": "forged", "run_id": books.run_id},
        )
        assert forged.status_code == 403
        assert await row_counts(ctx.db) == before
        assert all(i.handled_at is None for i in await items(ctx))

    async def test_a_day_exports_in_csv_and_xlsx(
        self, http: httpx.AsyncClient, books: Books
    ) -> None:
        browser = await signed_in(http, "fin")
        csv_answer = await browser.page(
            f"/finance/reconciliation/{books.run_id}", params={"format": "csv"}
        )
        lines = csv_answer.content.decode("utf-8-sig").splitlines()
        assert len(lines) == 3 and lines[0].startswith("账单日,支付渠道,差异类型")
        assert any("金额不一致" in line and "79.99" in line for line in lines)
        xlsx_answer = await browser.page(
            f"/finance/reconciliation/{books.run_id}", params={"format": "xlsx"}
        )
        sheet = load_workbook(io.BytesIO(xlsx_answer.content)).active
        assert sheet.max_row == 3


class TestReconciliationApi:
    async def _token(self, http: httpx.AsyncClient, world: World, username: str) -> dict[str, str]:
        answer = await http.post(
            "/api/v1/auth/token",
            json={"hospital": world.hospital.code, "username": username, "password": "secret-pass"},
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    async def test_runs_items_and_marking_handled(
        self, http: httpx.AsyncClient, world: World, books: Books
    ) -> None:
        auth = await self._token(http, world, "fin")
        day = business_day(NOW).isoformat()
        runs = await http.get(
            "/api/v1/reconciliation", params={"date": day, "provider": "wechatpay"}, headers=auth
        )
        assert runs.status_code == 200
        [run] = runs.json()
        assert (run["id"], run["state"], run["mismatches"]) == (books.run_id, "done", 2)
        assert (run["local_total_fen"], run["provider_total_fen"]) == (2 * FEE, FEE - 1)
        found = await http.get(f"/api/v1/reconciliation/{books.run_id}/items", headers=auth)
        kinds = sorted(item["kind"] for item in found.json())
        assert kinds == ["amount_mismatch", "local_only"]
        item_id = found.json()[0]["id"]

        handled = await http.post(
            f"/api/v1/reconciliation/items/{item_id}/handled",
            json={"note": "已核实"},
            headers=auth,
        )

        assert handled.status_code == 200, handled.text
        assert handled.json()["note"] == "已核实" and handled.json()["handled_at"]
        again = await http.post(
            f"/api/v1/reconciliation/items/{item_id}/handled", json={"note": "x"}, headers=auth
        )
        assert_problem(again, 409, "already_handled")

    async def test_refusals_are_problems_and_change_nothing(
        self, http: httpx.AsyncClient, ctx: AppContext, world: World, books: Books
    ) -> None:
        registrar = await self._token(http, world, "reg")
        finance = await self._token(http, world, "fin")
        item = (await items(ctx))[0]
        before = await row_counts(ctx.db)
        url = f"/api/v1/reconciliation/items/{item.id}/handled"
        assert_problem(await http.get("/api/v1/reconciliation"), 401, "unauthorized")
        assert_problem(
            await http.get("/api/v1/reconciliation", headers=registrar), 403, "forbidden"
        )
        assert_problem(
            await http.post(url, json={"note": "x"}, headers=registrar), 403, "forbidden"
        )
        assert_problem(
            await http.post(url, json={"note": " "}, headers=finance), 422, "note_required"
        )
        assert_problem(await http.post(url, json={}, headers=finance), 422, "validation_error")
        missing = "/api/v1/reconciliation/items/00000000-0000-0000-0000-000000000000/handled"
        assert_problem(
            await http.post(missing, json={"note": "x"}, headers=finance), 404, "not_found"
        )
        assert_problem(
            await http.get("/api/v1/reconciliation", params={"date": "x"}, headers=finance),
            422,
            "validation_error",
        )
        assert await row_counts(ctx.db) == before
