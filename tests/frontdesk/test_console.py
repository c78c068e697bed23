"""The staff console over HTTP: the home's menu for every role (each entry it lists opens,
each it leaves out is refused), the staff accounts page (create, disable, re-enable, reset
the password or the second factor, roles), the audit viewer's filters, pages and CSV; and
every refusal — another role, nobody signed in, bad input, a forged form — changing nothing."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import NOW, World
from tests.frontdesk.test_pages import sign_in_form
from tests.helpers import row_counts
from tests.portal.conftest import Browser
from yuyue.frontdesk import rules
from yuyue.kit.clock import FixedClock
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry, StaffUser
from yuyue.staff.rules import system_actor
from yuyue.web.context import AppContext

PASSWORD = "secret-pass"
# Every role signs in as its own user; "adm" is the administrator who changes accounts.
USERS: dict[str, list[Role]] = {
    "adm": [Role.ADMIN],
    "sched": [Role.SCHEDULER],
    "reg": [Role.REGISTRAR],
    "nurse": [Role.NURSE],
    "doc": [Role.DOCTOR],
    "fin": [Role.FINANCE],
    "aud": [Role.AUDITOR],
}
ADMIN_NAME = "王管理员"


@pytest_asyncio.fixture
async def staffed(ctx: AppContext, world: World) -> World:
    ctx.settings.hospital_code = world.hospital.code
    async with ctx.db.session_scope() as s:
        for username, roles in USERS.items():
            await staff_service.create_staff(
                s,
                hospital_id=world.hospital.id,
                username=username,
                display_name=ADMIN_NAME if username == "adm" else username,
                password=PASSWORD,
                roles=roles,
                doctor_id=world.doctor.id if Role.DOCTOR in roles else None,
                now=NOW,
            )
    return world


Opener = Callable[[str | None], Awaitable[Browser]]


@pytest_asyncio.fixture
async def open_browser(app: FastAPI, staffed: World) -> AsyncIterator[Opener]:
    """Fresh browsers, each signed in as the given user (or nobody, for None)."""
    clients: list[httpx.AsyncClient] = []

    async def opened(username: str | None) -> Browser:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.20", 50000))
        http = httpx.AsyncClient(transport=transport, base_url="http://test")
        clients.append(http)
        if username is not None:
            signed = await sign_in_form(
                http, {"username": username, "password": PASSWORD, "next": "/"}
            )
            assert signed.status_code == 303, signed.text
        return Browser(http)

    yield opened
    for http in clients:
        await http.aclose()


async def user(ctx: AppContext, username: str) -> StaffUser:
    async with ctx.db.read() as s:
        found = await s.scalar(select(StaffUser).where(StaffUser.username == username))
    assert found is not None
    return found


async def audit(ctx: AppContext, action: str) -> list[AuditEntry]:
    async with ctx.db.read() as s:
        return list(
            (
                await s.scalars(
                    select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.at)
                )
            ).all()
        )


def menu_keys(html: str) -> list[str]:
    return re.findall(r'data-testid="menu-entry" data-key="([a-z_]+)"', html)


def hidden_keys(html: str) -> list[str]:
    return re.findall(r' hidden data-testid="menu-entry" data-key="([a-z_]+)"', html)


class TestHome:
    @pytest.mark.parametrize("username", list(USERS))
    async def test_the_menu_lists_the_roles_pages_each_opens_and_the_rest_are_refused(
        self, open_browser: Opener, username: str
    ) -> None:
        browser = await open_browser(username)
        home = await browser.page("/staff")
        assert home.status_code == 200
        listed = menu_keys(home.text)
        assert listed == [entry.key for entry in rules.menu_for(USERS[username])]
        assert "password" in listed
        for entry in rules.CONSOLE:
            opened = await browser.page(entry.path)
            if entry.key in listed:
                assert opened.status_code == 200, (username, entry.path)
            else:
                assert opened.status_code == 403, (username, entry.path)

    async def test_nobody_signed_in_is_sent_to_sign_in(self, open_browser: Opener) -> None:
        browser = await open_browser(None)
        for path in ("/staff", "/staff/accounts", "/staff/audit"):
            answer = await browser.page(path)
            assert answer.status_code == 303
            assert answer.headers["location"] == f"/staff/signin?next={path}"

    @pytest.mark.parametrize("query", ["对账", "reconciliation"])
    async def test_a_search_without_script_hides_what_does_not_match(
        self, open_browser: Opener, query: str
    ) -> None:
        browser = await open_browser("fin")
        found = await browser.page("/staff", params={"q": query})
        assert menu_keys(found.text) == [
            "reports",
            "quota_advice",
            "finance_orders",
            "finance_reconciliation",
            "password",
            "sessions",
        ]
        assert hidden_keys(found.text) == [
            "reports",
            "quota_advice",
            "finance_orders",
            "password",
            "sessions",
        ]
        assert 'data-testid="menu-none" hidden' in found.text
        nothing = await browser.page("/staff", params={"q": "排班"})
        assert set(hidden_keys(nothing.text)) == set(menu_keys(nothing.text))
        assert 'data-testid="menu-none" hidden' not in nothing.text

    async def test_english_labels_and_no_inline_script(self, open_browser: Opener) -> None:
        browser = await open_browser("adm")
        page = await browser.page("/staff", headers={"Accept-Language": "en"})
        assert "Staff accounts" in page.text and "Audit trail" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert scripts and all("src=" in tag for tag in scripts)
        assert '<script src="/static/console.js" defer>' in page.text

    @pytest.mark.parametrize(("username", "home"), [("adm", "/staff"), ("sched", "/staff")])
    async def test_administrators_and_schedulers_land_on_the_console(
        self, app: FastAPI, staffed: World, username: str, home: str
    ) -> None:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.21", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            signed = await sign_in_form(http, {"username": username, "password": PASSWORD})
        assert signed.headers["location"] == home


def temporary_password(html: str) -> str:
    found = re.search(r'data-testid="temporary-password">([^<]+)<', html)
    assert found is not None, html
    return found.group(1)


class TestAccounts:
    async def test_an_administrator_adds_a_nurse_who_must_change_the_password(
        self, open_browser: Opener, ctx: AppContext, staffed: World, app: FastAPI
    ) -> None:
        admin = await open_browser("adm")
        listing = await admin.page("/staff/accounts")
        assert listing.status_code == 200
        assert listing.text.count('data-testid="account"') == len(USERS)
        created = await admin.submit(
            "/staff/accounts",
            {
                "username": "zhang.hs",
                "display_name": "张护士",
                "roles": "nurse",
                "department_id": str(staffed.department.id),
            },
        )
        assert created.status_code == 200, created.text
        assert created.headers["cache-control"] == "no-store"
        password = temporary_password(created.text)
        nurse = await user(ctx, "zhang.hs")
        assert nurse.roles == ["nurse"] and nurse.department_id == staffed.department.id
        assert nurse.password_must_change and nurse.active
        [entry] = await audit(ctx, "staff.created")
        assert entry.entity_id == nurse.id and ADMIN_NAME in entry.actor
        assert entry.after is not None and entry.after["roles"] == ["nurse"]
        assert password not in str(entry.after)
        listing = await admin.page("/staff/accounts")
        assert 'data-username="zhang.hs" data-state="active"' in listing.text

        # The nurse signs in with it and may only change it first.
        transport = httpx.ASGITransport(app=app, client=("203.0.113.23", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            signed = await sign_in_form(http, {"username": "zhang.hs", "password": password})
            assert signed.headers["location"] == "/staff/password"

    async def test_a_chosen_first_password_must_meet_the_policy(
        self, open_browser: Opener, ctx: AppContext
    ) -> None:
        admin = await open_browser("adm")
        await admin.page("/staff/accounts")
        before = await row_counts(ctx.db)
        weak = await admin.submit(
            "/staff/accounts",
            {"username": "li", "display_name": "李", "roles": "nurse", "password": "12345678901"},
        )
        assert weak.status_code == 422
        assert "新密码不符合要求" in weak.text and "不能只有数字" in weak.text
        assert 'value="li"' in weak.text and "12345678901" not in weak.text
        assert await row_counts(ctx.db) == before
        chosen = await admin.submit(
            "/staff/accounts",
            {
                "username": "li",
                "display_name": "李",
                "roles": "nurse",
                "password": "Lantern-42-moss",
            },
        )
        assert temporary_password(chosen.text) == "Lantern-42-moss"
        assert (await user(ctx, "li")).password_must_change

    @pytest.mark.parametrize(
        ("form", "status", "sentence"),
        [
            ({"username": "nurse", "display_name": "x", "roles": "nurse"}, 409, "已被使用"),
            ({"username": "has space", "display_name": "x", "roles": "nurse"}, 422, "用户名"),
            ({"username": "ok", "display_name": "", "roles": "nurse"}, 422, "姓名"),
            ({"username": "ok", "display_name": "x"}, 422, "至少选择一个角色"),
            ({"username": "ok", "display_name": "x", "roles": "surgeon"}, 422, "至少选择一个角色"),
            (
                {"username": "ok", "display_name": "x", "roles": "nurse", "department_id": "x"},
                422,
                "科室",
            ),
            (
                {
                    "username": "ok",
                    "display_name": "x",
                    "roles": "doctor",
                    "doctor_id": str(uuid.uuid4()),
                },
                422,
                "关联医生",
            ),
        ],
    )
    async def test_bad_input_is_explained_and_changes_nothing(
        self,
        open_browser: Opener,
        ctx: AppContext,
        form: dict[str, str],
        status: int,
        sentence: str,
    ) -> None:
        admin = await open_browser("adm")
        await admin.page("/staff/accounts")
        before = await row_counts(ctx.db)
        refused = await admin.submit("/staff/accounts", form)
        assert refused.status_code == status, refused.text
        assert 'role="alert"' in refused.text and sentence in refused.text
        assert await row_counts(ctx.db) == before

    async def test_a_forged_form_changes_nothing(
        self, open_browser: Opener, ctx: AppContext
    ) -> None:
        admin = await open_browser("adm")
        nurse = await user(ctx, "nurse")
        before = await row_counts(ctx.db)
        forged = await admin.http.post(
            "/staff/accounts", data={"username": "x", "display_name": "x", "roles": "admin"}
        )
        assert forged.status_code == 403
        forged = await admin.http.post(
            f"/staff/accounts/{nurse.id}/disable", data={"csrf": "0" * 32}
        )
        assert forged.status_code == 403
        assert await row_counts(ctx.db) == before
        assert (await user(ctx, "nurse")).active

    async def test_disable_ends_the_sessions_and_re_enable_lets_them_back(
        self, open_browser: Opener, ctx: AppContext
    ) -> None:
        nurse_browser = await open_browser("nurse")
        assert (await nurse_browser.page("/desk")).status_code == 200
        admin = await open_browser("adm")
        nurse = await user(ctx, "nurse")
        page = await admin.page(f"/staff/accounts/{nurse.id}")
        assert 'data-testid="disable-account"' in page.text
        disabled = await admin.submit(f"/staff/accounts/{nurse.id}/disable")
        assert disabled.status_code == 303
        assert disabled.headers["location"] == f"/staff/accounts/{nurse.id}?done=disabled"
        shown = await admin.page(disabled.headers["location"])
        assert "账号已停用" in shown.text and 'data-testid="enable-account"' in shown.text
        assert not (await user(ctx, "nurse")).active
        assert (await nurse_browser.page("/desk")).status_code == 303
        [entry] = await audit(ctx, "staff.disabled")
        assert entry.before == {**(entry.after or {}), "active": True}

        enabled = await admin.submit(f"/staff/accounts/{nurse.id}/enable")
        assert enabled.status_code == 303
        assert (await user(ctx, "nurse")).active
        assert len(await audit(ctx, "staff.enabled")) == 1
        again = await open_browser("nurse")
        assert (await again.page("/desk")).status_code == 200

    async def test_an_administrator_cannot_disable_themself(
        self, open_browser: Opener, ctx: AppContext
    ) -> None:
        admin = await open_browser("adm")
        me = await user(ctx, "adm")
        await admin.page(f"/staff/accounts/{me.id}")
        before = await row_counts(ctx.db)
        refused = await admin.submit(f"/staff/accounts/{me.id}/disable")
        assert refused.status_code == 409
        assert "管理员不能停用自己的账号" in refused.text
        refused = await admin.submit(
            f"/staff/accounts/{me.id}", {"display_name": ADMIN_NAME, "roles": "nurse"}
        )
        assert refused.status_code == 409
        assert await row_counts(ctx.db) == before
        assert (await user(ctx, "adm")).roles == ["admin"]

    async def test_reset_password_shows_a_temporary_one_once_and_ends_the_sessions(
        self, open_browser: Opener, ctx: AppContext, app: FastAPI
    ) -> None:
        nurse_browser = await open_browser("nurse")
        admin = await open_browser("adm")
        nurse = await user(ctx, "nurse")
        await admin.page(f"/staff/accounts/{nurse.id}")
        reset = await admin.submit(f"/staff/accounts/{nurse.id}/password-reset")
        assert reset.status_code == 200 and reset.headers["cache-control"] == "no-store"
        password = temporary_password(reset.text)
        assert password not in str(reset.url)
        assert (await user(ctx, "nurse")).password_must_change
        assert (await nurse_browser.page("/desk")).status_code == 303
        [entry] = await audit(ctx, "staff.password_reset")
        assert entry.entity_id == nurse.id and password not in str(entry.after)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.22", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            old = await sign_in_form(http, {"username": "nurse", "password": PASSWORD})
            assert old.status_code == 401
            new = await sign_in_form(http, {"username": "nurse", "password": password})
            assert new.headers["location"] == "/staff/password"

    async def test_reset_second_factor_removes_it(
        self, open_browser: Opener, ctx: AppContext
    ) -> None:
        async with ctx.db.session_scope() as s:
            nurse = await s.scalar(select(StaffUser).where(StaffUser.username == "nurse"))
            assert nurse is not None
            nurse.totp_secret = ctx.cipher.encrypt(pyotp.random_base32())
            nurse.totp_confirmed_at = NOW
        admin = await open_browser("adm")
        listing = await admin.page("/staff/accounts")
        row = re.search(r'data-username="nurse".*?</tr>', listing.text, re.S)
        assert row is not None and "已设置" in row.group(0)
        reset = await admin.submit(f"/staff/accounts/{nurse.id}/second-factor-reset")
        assert reset.headers["location"] == f"/staff/accounts/{nurse.id}?done=second_factor_reset"
        assert not (await user(ctx, "nurse")).has_second_factor
        [entry] = await audit(ctx, "staff.second_factor_reset")
        assert entry.before == {"second_factor": True} and entry.after == {"second_factor": False}

    async def test_roles_department_and_doctor_are_assigned(
        self, open_browser: Opener, ctx: AppContext, staffed: World
    ) -> None:
        admin = await open_browser("adm")
        nurse = await user(ctx, "nurse")
        await admin.page(f"/staff/accounts/{nurse.id}")
        changed = await admin.http.post(
            f"/staff/accounts/{nurse.id}",
            data={
                "csrf": admin.csrf,
                "display_name": "护士长",
                "roles": ["nurse", "registrar"],
                "department_id": str(staffed.department.id),
                "doctor_id": "",
            },
        )
        assert changed.status_code == 303, changed.text
        after = await user(ctx, "nurse")
        assert after.roles == ["nurse", "registrar"] and after.display_name == "护士长"
        assert after.department_id == staffed.department.id
        [entry] = await audit(ctx, "staff.changed")
        assert entry.before is not None and entry.before["roles"] == ["nurse"]
        assert entry.after is not None and entry.after["roles"] == ["nurse", "registrar"]
        # The new role's page opens for them at once.
        assert (await (await open_browser("nurse")).page("/desk/appeals")).status_code == 200

    @pytest.mark.parametrize("username", ["nurse", "fin", "sched", "doc", "reg", "aud"])
    async def test_other_roles_are_refused_and_change_nothing(
        self, open_browser: Opener, ctx: AppContext, username: str
    ) -> None:
        browser = await open_browser(username)
        nurse = await user(ctx, "nurse")
        home = await browser.page("/staff")
        assert browser.csrf
        assert "/staff/accounts" not in home.text
        assert (await browser.page("/staff/accounts")).status_code == 403
        assert (await browser.page(f"/staff/accounts/{nurse.id}")).status_code == 403
        before = await row_counts(ctx.db)
        attempts = [
            ("/staff/accounts", {"username": "x", "display_name": "x", "roles": "admin"}),
            (f"/staff/accounts/{nurse.id}", {"display_name": "x", "roles": "admin"}),
            (f"/staff/accounts/{nurse.id}/disable", {}),
            (f"/staff/accounts/{nurse.id}/password-reset", {}),
            (f"/staff/accounts/{nurse.id}/second-factor-reset", {}),
        ]
        for path, form in attempts:
            assert (await browser.submit(path, form)).status_code == 403, path
        assert await row_counts(ctx.db) == before

    async def test_nobody_signed_in_changes_nothing(
        self, open_browser: Opener, ctx: AppContext
    ) -> None:
        browser = await open_browser(None)
        nurse = await user(ctx, "nurse")
        before = await row_counts(ctx.db)
        for path in ("/staff/accounts", f"/staff/accounts/{nurse.id}/disable"):
            answer = await browser.submit(path, {"username": "x", "roles": "admin"})
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/staff/signin")
        assert await row_counts(ctx.db) == before

    async def test_an_unknown_account_is_not_found(
        self, open_browser: Opener, ctx: AppContext
    ) -> None:
        admin = await open_browser("adm")
        await admin.page("/staff/accounts")
        before = await row_counts(ctx.db)
        assert (await admin.page(f"/staff/accounts/{uuid.uuid4()}")).status_code == 404
        assert (await admin.submit(f"/staff/accounts/{uuid.uuid4()}/disable")).status_code == 404
        assert (
            await admin.submit(f"/staff/accounts/{uuid.uuid4()}/password-reset")
        ).status_code == 404
        assert await row_counts(ctx.db) == before


async def add_entries(ctx: AppContext, world: World, count: int, *, start: datetime) -> None:
    """`count` entries by the system, one a minute from `start`, on one appointment id."""
    actor = system_actor(world.hospital.id, "sweep")
    async with ctx.db.session_scope() as s:
        for n in range(count):
            staff_service.record_audit(
                s,
                actor=actor,
                action="no_show",
                entity_type="appointment",
                entity_id=uuid.UUID(int=n + 1),
                before={"status": "booked"},
                after={"status": "no_show", "n": n},
                now=start + timedelta(minutes=n),
            )


class TestAuditViewer:
    async def test_filters_by_person_action_record_and_time(
        self, open_browser: Opener, ctx: AppContext, staffed: World, clock: FixedClock
    ) -> None:
        admin = await open_browser("adm")
        await admin.page("/staff/accounts")
        await admin.submit(
            "/staff/accounts", {"username": "zhao", "display_name": "赵", "roles": "nurse"}
        )
        zhao = await user(ctx, "zhao")
        await add_entries(ctx, staffed, 3, start=datetime(2026, 11, 10, 2, 0, tzinfo=UTC))

        everything = await admin.page("/staff/audit")
        assert everything.status_code == 200
        assert everything.text.count('data-testid="audit-entry"') == 4
        # Newest first: the account made "now" (20 November) before the 10 November sweep.
        actions = re.findall(r'data-testid="audit-entry" data-action="([a-z_.]+)"', everything.text)
        assert actions == ["staff.created", "no_show", "no_show", "no_show"]

        by_person = await admin.page("/staff/audit", params={"person": "王管理"})
        assert re.findall(r'data-action="([a-z_.]+)"', by_person.text) == ["staff.created"]
        assert "赵" in by_person.text
        by_prefix = await admin.page("/staff/audit", params={"action": "staff."})
        assert by_prefix.text.count('data-testid="audit-entry"') == 1
        by_record = await admin.page(
            "/staff/audit", params={"entity_type": "staff_user", "entity_id": str(zhao.id)}
        )
        assert re.findall(r'data-action="([a-z_.]+)"', by_record.text) == ["staff.created"]
        one_day = await admin.page(
            "/staff/audit", params={"date_from": "2026-11-10", "date_to": "2026-11-10"}
        )
        assert re.findall(r'data-action="([a-z_.]+)"', one_day.text) == ["no_show"] * 3
        later = await admin.page("/staff/audit", params={"date_from": "2026-11-11"})
        assert re.findall(r'data-action="([a-z_.]+)"', later.text) == ["staff.created"]
        none = await admin.page("/staff/audit", params={"person": "nobody-at-all"})
        assert 'data-testid="audit-none"' in none.text

    async def test_pages_of_fifty_newest_first(
        self, open_browser: Opener, ctx: AppContext, staffed: World
    ) -> None:
        await add_entries(ctx, staffed, 60, start=datetime(2026, 11, 1, 0, 0, tzinfo=UTC))
        admin = await open_browser("adm")
        first = await admin.page("/staff/audit", params={"action": "no_show"})
        numbers = [int(n) for n in re.findall(r"n:</span> (\d+)<", first.text)]
        assert numbers == list(range(59, 9, -1))
        assert 'data-testid="audit-older"' in first.text
        assert 'data-testid="audit-newer"' not in first.text
        second = await admin.page("/staff/audit", params={"action": "no_show", "page": "2"})
        numbers = [int(n) for n in re.findall(r"n:</span> (\d+)<", second.text)]
        assert numbers == list(range(9, -1, -1))
        assert 'data-testid="audit-older"' not in second.text
        assert 'href="/staff/audit?action=no_show&amp;page=1"' in second.text

    async def test_identity_and_phone_numbers_are_never_shown_in_clear(
        self, open_browser: Opener, ctx: AppContext, staffed: World
    ) -> None:
        actor = system_actor(staffed.hospital.id, "import")
        async with ctx.db.session_scope() as s:
            staff_service.record_audit(
                s,
                actor=actor,
                action="patient.note",
                entity_type="patient",
                entity_id=staffed.patient.id,
                before=None,
                after={
                    "phone": "13912345678",
                    "note": "身份证 110101199003074514，电话 13800138000",
                },
                now=NOW,
            )
        admin = await open_browser("adm")
        page = await admin.page("/staff/audit")
        csv_answer = await admin.page("/staff/audit", params={"format": "csv"})
        for text in (page.text, csv_answer.content.decode("utf-8-sig")):
            for clear in ("13912345678", "110101199003074514", "13800138000"):
                assert clear not in text
            assert "139****5678" in text and "1101**********4514" in text

    async def test_reads_of_patient_data_show_filter_and_export_without_clear_numbers(
        self, open_browser: Opener, ctx: AppContext, staffed: World
    ) -> None:
        number = ctx.cipher.decrypt(staffed.patient.id_cipher)
        phone = ctx.cipher.decrypt(staffed.patient.phone_cipher)
        registrar = await open_browser("reg")
        await registrar.page("/desk/window")
        found = await registrar.submit("/desk/window/find", {"q": number})
        assert found.status_code == 303, found.text
        await registrar.page(found.headers["location"])
        shown = await registrar.submit(
            f"/desk/window/patients/{staffed.patient.id}/unmask",
            {"field": "phone", "reason": "contact", "other": ""},
        )
        assert shown.status_code == 200 and phone in shown.text
        await add_entries(ctx, staffed, 2, start=datetime(2026, 11, 10, 2, 0, tzinfo=UTC))

        admin = await open_browser("adm")
        reads = await admin.page("/staff/audit", params={"kind": "reads"})
        assert re.findall(r'data-action="([a-z_.]+)"', reads.text) == [
            "read.unmask",
            "read.record",
            "read.lookup",
        ]
        assert "查看完整号码" in reads.text and "查找患者" in reads.text
        # Who (name and roles), the route, the client address and what was read.
        assert "reg" in reads.text and "registrar" in reads.text
        assert "POST /desk/window/find" in reads.text and "203.0.113.20" in reads.text
        assert "需要联系患者" in reads.text
        unmasked = await admin.page("/staff/audit", params={"kind": "read.unmask"})
        assert re.findall(r'data-action="([a-z_.]+)"', unmasked.text) == ["read.unmask"]
        changes = await admin.page("/staff/audit", params={"kind": "changes"})
        assert set(re.findall(r'data-action="([a-z_.]+)"', changes.text)) == {"no_show"}
        by_patient = await admin.page(
            "/staff/audit",
            params={"entity_type": "patient", "entity_id": str(staffed.patient.id)},
        )
        assert by_patient.text.count('data-testid="audit-entry"') == 3

        exported = await admin.page("/staff/audit", params={"kind": "reads", "format": "csv"})
        rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
        assert [row[2] for row in rows[1:]] == ["read.unmask", "read.record", "read.lookup"]
        assert all(row[4] == str(staffed.patient.id) for row in rows[1:])
        assert '"route": "POST /desk/window/find"' in rows[3][6]
        for text in (reads.text, exported.content.decode("utf-8-sig")):
            assert number not in text and phone not in text
        async with ctx.db.read() as s:
            stored = repr(
                [(e.actor, e.before, e.after) for e in await s.scalars(select(AuditEntry))]
            )
        assert number not in stored and phone not in stored

    async def test_csv_export_has_every_match_and_is_itself_audited(
        self, open_browser: Opener, ctx: AppContext, staffed: World
    ) -> None:
        await add_entries(ctx, staffed, 60, start=datetime(2026, 11, 1, 0, 0, tzinfo=UTC))
        admin = await open_browser("adm")
        answer = await admin.page("/staff/audit", params={"action": "no_show", "format": "csv"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        assert answer.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
        assert rows[0] == ["时间", "操作人", "操作", "记录类型", "记录编号", "之前", "之后 / 详情"]
        assert len(rows) == 61
        assert rows[1][2] == "no_show" and rows[1][0] == "2026-11-01 08:59:00"
        assert '"n": 59' in rows[1][6]
        [exported] = await audit(ctx, "audit.exported")
        assert exported.after == {
            "filter": {
                "person": None,
                "entity_type": None,
                "entity_id": None,
                "action": "no_show",
                "kind": None,
                "since": None,
                "until": None,
            },
            "rows": 60,
        }
        english = await admin.page(
            "/staff/audit", params={"format": "csv"}, headers={"Accept-Language": "en"}
        )
        assert english.content.decode("utf-8-sig").startswith("When,Person,Action")

    async def test_bad_filters_are_explained(self, open_browser: Opener, ctx: AppContext) -> None:
        admin = await open_browser("adm")
        before = await row_counts(ctx.db)
        for params in (
            {"entity_id": "not-an-id"},
            {"date_from": "2026-13-01"},
            {"kind": "read.everything"},
        ):
            refused = await admin.page("/staff/audit", params=params)
            assert refused.status_code == 422
            assert 'role="alert"' in refused.text
            refused_csv = await admin.page("/staff/audit", params={**params, "format": "csv"})
            assert refused_csv.status_code == 422
        assert await row_counts(ctx.db) == before

    async def test_an_auditor_reads_and_exports_it_and_changes_nothing_else(
        self, open_browser: Opener, client: httpx.AsyncClient, ctx: AppContext, staffed: World
    ) -> None:
        await add_entries(ctx, staffed, 3, start=datetime(2026, 11, 10, 2, 0, tzinfo=UTC))
        auditor = await open_browser("aud")
        page = await auditor.page("/staff/audit", params={"action": "no_show"})
        assert page.status_code == 200
        assert page.text.count('data-testid="audit-entry"') == 3
        exported = await auditor.page("/staff/audit", params={"format": "csv"})
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        # The export is itself audited, under the auditor's name.
        [entry] = await audit(ctx, "audit.exported")
        assert ":aud:" in entry.actor
        # Nothing that changes data admits the role: pages refuse, and so does the API.
        before = await row_counts(ctx.db)
        assert (await auditor.page("/desk/window")).status_code == 403
        assert (await auditor.page("/staff/accounts")).status_code == 403
        issued = await client.post(
            "/api/v1/auth/token",
            json={"hospital": staffed.hospital.code, "username": "aud", "password": PASSWORD},
        )
        assert issued.status_code == 200, issued.text
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        registered = await client.post(
            "/api/v1/patients",
            json={"name": "赵六", "id_number": "11010519491231002X", "phone": "13912345678"},
            headers=bearer,
        )
        assert registered.status_code == 403
        assert registered.json()["code"] == "forbidden"
        booked = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(staffed.patient.id), "session_id": str(staffed.session.id)},
            headers=bearer,
        )
        assert booked.status_code == 403
        after = await row_counts(ctx.db)
        # Only the sign-in the token call made is new.
        changed = {name for name in before if before[name] != after[name]}
        assert changed <= {"staff_session", "audit_entry", "staff_user"}, changed

    @pytest.mark.parametrize("username", ["nurse", "fin", "sched", "doc", "reg"])
    async def test_other_roles_are_refused(
        self, open_browser: Opener, ctx: AppContext, username: str
    ) -> None:
        browser = await open_browser(username)
        before = await row_counts(ctx.db)
        assert (await browser.page("/staff/audit")).status_code == 403
        assert (await browser.page("/staff/audit", params={"format": "csv"})).status_code == 403
        assert await row_counts(ctx.db) == before


async def live_sessions(ctx: AppContext, username: str) -> int:
    found = await user(ctx, username)
    async with ctx.db.read() as s:
        rows = await staff_service.user_sessions(s, user_id=found.id, now=NOW + timedelta(days=3))
    return sum(1 for row, _ in rows if row.ended_at is None)


def session_ids(html: str) -> list[str]:
    return re.findall(r'action="/staff/sessions/([0-9a-f-]{36})/end"', html)


class TestSignIns:
    async def test_a_nurse_sees_their_sign_ins_and_ends_another_browsers(
        self, open_browser: Opener, ctx: AppContext
    ) -> None:
        elsewhere = await open_browser("nurse")
        here = await open_browser("nurse")
        page = await here.page("/staff/sessions")
        assert page.status_code == 200
        assert page.text.count('data-testid="session"') == 2
        assert page.text.count('data-current="yes"') == 1
        # The other browser's is the one not marked current.
        current = re.search(
            r'data-current="yes">.*?action="/staff/sessions/([0-9a-f-]{36})/end"', page.text, re.S
        )
        assert current is not None
        [other] = [sid for sid in session_ids(page.text) if sid != current.group(1)]
        ended = await here.submit(f"/staff/sessions/{other}/end")
        assert ended.status_code == 303 and ended.headers["location"].endswith("?done=ended")
        assert (await elsewhere.page("/desk")).status_code == 303  # sent to sign in
        assert (await here.page("/desk")).status_code == 200
        shown = await here.page(ended.headers["location"])
        assert "该登录已结束" in shown.text and "本人结束" in shown.text

    async def test_ending_the_one_in_use_signs_this_browser_out(
        self, open_browser: Opener, ctx: AppContext
    ) -> None:
        here = await open_browser("doc")
        page = await here.page("/staff/sessions")
        [mine] = session_ids(page.text)
        ended = await here.submit(f"/staff/sessions/{mine}/end")
        assert ended.headers["location"] == "/staff/signin"
        assert (await here.page("/doctor")).status_code == 303

    async def test_someone_elses_sign_in_cannot_be_ended_and_nothing_changes(
        self, open_browser: Opener, ctx: AppContext
    ) -> None:
        victim = await open_browser("fin")
        [theirs] = session_ids((await victim.page("/staff/sessions")).text)
        other = await open_browser("nurse")
        await other.page("/staff/sessions")
        before = await row_counts(ctx.db)
        refused = await other.submit(f"/staff/sessions/{theirs}/end")
        assert refused.status_code == 404
        forged = await other.http.post(f"/staff/sessions/{theirs}/end", data={"csrf": "x"})
        assert forged.status_code == 403
        assert await row_counts(ctx.db) == before
        assert (await victim.page("/finance")).status_code == 200

    async def test_an_administrator_ends_every_sign_in_of_a_member(
        self, open_browser: Opener, ctx: AppContext
    ) -> None:
        first, second = await open_browser("reg"), await open_browser("reg")
        admin = await open_browser("adm")
        registrar = await user(ctx, "reg")
        page = await admin.page(f"/staff/accounts/{registrar.id}")
        assert page.text.count('data-live="yes"') == 2
        ended = await admin.submit(f"/staff/accounts/{registrar.id}/end-sessions")
        assert ended.headers["location"] == f"/staff/accounts/{registrar.id}?done=sessions_ended"
        shown = await admin.page(ended.headers["location"])
        assert "其全部登录已结束" in shown.text and 'data-live="yes"' not in shown.text
        assert "管理员结束" in shown.text
        for browser in (first, second):
            assert (await browser.page("/desk/window")).status_code == 303
        [entry] = await audit(ctx, "staff.sessions_ended")
        assert entry.after == {"sessions_ended": 2}
        assert (await admin.page("/staff")).status_code == 200

    async def test_only_an_administrator_ends_a_members_sign_ins(
        self, open_browser: Opener, ctx: AppContext
    ) -> None:
        nurse_browser = await open_browser("nurse")
        scheduler = await open_browser("sched")
        nurse = await user(ctx, "nurse")
        await scheduler.page("/staff")
        before = await row_counts(ctx.db)
        refused = await scheduler.submit(f"/staff/accounts/{nurse.id}/end-sessions")
        assert refused.status_code == 403
        assert await row_counts(ctx.db) == before
        assert (await nurse_browser.page("/desk")).status_code == 200


class TestSecondFactorRoles:
    async def test_the_administrator_chooses_the_roles_and_a_nurse_must_then_set_it_up(
        self, open_browser: Opener, ctx: AppContext, staffed: World
    ) -> None:
        admin = await open_browser("adm")
        page = await admin.page("/staff/accounts")
        assert 'data-testid="second-factor-roles"' in page.text
        assert 'value="nurse" checked' not in page.text
        saved = await admin.submit("/staff/second-factor-roles", {"second_factor_roles": "nurse"})
        assert saved.status_code == 303
        shown = await admin.page(saved.headers["location"])
        assert "已保存必须使用动态验证码的角色" in shown.text
        assert re.search(r'value="nurse" checked', shown.text)
        async with ctx.db.read() as s:
            required = await staff_service.second_factor_roles(s, staffed.hospital.id)
        assert required == frozenset({Role.NURSE})
        [entry] = await audit(ctx, "staff.second_factor_roles")
        assert entry.after == {"second_factor_roles": ["nurse"]}
        # A nurse without a factor now reaches only its set-up; a doctor is not asked.
        nurse = await open_browser(None)
        signed = await sign_in_form(nurse.http, {"username": "nurse", "password": PASSWORD})
        assert signed.headers["location"] == "/staff/second-factor"
        assert (await nurse.page("/desk")).status_code == 303
        doctor = await open_browser("doc")
        assert (await doctor.page("/doctor")).status_code == 200

    async def test_an_unknown_role_or_another_role_changes_nothing(
        self, open_browser: Opener, ctx: AppContext, staffed: World
    ) -> None:
        admin = await open_browser("adm")
        await admin.page("/staff/accounts")
        scheduler = await open_browser("sched")
        await scheduler.page("/staff")
        before = await row_counts(ctx.db)
        refused = await admin.submit("/staff/second-factor-roles", {"second_factor_roles": "kiosk"})
        assert refused.status_code == 422
        other = await scheduler.submit("/staff/second-factor-roles", {"second_factor_roles": ""})
        assert other.status_code == 403
        assert await row_counts(ctx.db) == before
