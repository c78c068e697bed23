"""Channel API keys from the console over HTTP: an administrator makes a key (shown once,
working at once, audited), sees the hospital's keys without the keys themselves, and revokes
one, which stops working at once. Refusals are sentences and change nothing; a scheduler and
a nurse are refused."""

from __future__ import annotations

import re

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from tests.conftest import NOW
from tests.frontdesk.test_pages import Floor, floor, http, staff  # noqa: F401  (fixtures)
from tests.helpers import row_counts
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role
from yuyue.staff.models import ApiKey, AuditEntry

PAGE = "/scheduling/api-keys"
KEY = re.compile(r'data-testid="new-key-value"[^>]*>([^<]+)<')


@pytest_asyncio.fixture
async def admin_floor(floor: Floor) -> Floor:  # noqa: F811
    async with floor.ctx.db.session_scope() as s:
        await staff_service.create_staff(
            s,
            hospital_id=floor.world.hospital.id,
            username="admin",
            display_name="信息科",
            password="secret-pass",
            roles=[Role.ADMIN],
            now=NOW,
        )
    return floor


async def actions(floor: Floor) -> list[str]:  # noqa: F811
    async with floor.ctx.db.read() as s:
        rows = await s.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "api_key"))
        return list(rows.all())


async def key_named(floor: Floor, name: str) -> ApiKey:  # noqa: F811
    async with floor.ctx.db.read() as s:
        found = await s.scalar(select(ApiKey).where(ApiKey.name == name))
    assert found is not None
    return found


class TestChannelKeys:
    async def test_a_key_is_made_shown_once_works_and_is_revoked(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        admin_floor: Floor,
    ) -> None:
        admin = await staff(http, "admin")
        listed = await admin.page(PAGE)
        assert listed.status_code == 200
        assert listed.headers["cache-control"] == "no-store"
        made = await admin.submit(PAGE, {"channel": "phone", "name": "电话预约中心"})
        assert made.status_code == 201, made.text
        assert made.headers["cache-control"] == "no-store"
        found = KEY.search(made.text)
        assert found is not None, made.text
        key = found.group(1)
        row = await key_named(admin_floor, "电话预约中心")
        assert (row.channel, row.revoked_at) == ("phone", None)
        # The key works as the phone channel's.
        auth = {"Authorization": f"Bearer {key}"}
        assert (await http.get("/api/v1/departments", headers=auth)).status_code == 200

        # Listed later without the key itself, only its first characters.
        again = await admin.page(PAGE)
        assert key not in again.text and row.prefix in again.text
        assert 'data-name="电话预约中心"' in again.text

        revoked = await admin.submit(f"{PAGE}/{row.id}/revoke")
        assert revoked.status_code == 303
        assert (await key_named(admin_floor, "电话预约中心")).revoked_at is not None
        assert (await http.get("/api/v1/departments", headers=auth)).status_code == 401
        assert await actions(admin_floor) == ["api_key.created", "api_key.revoked"]
        # Nothing of the key is in the audit trail.
        async with admin_floor.ctx.db.read() as s:
            trail = (await s.scalars(select(AuditEntry))).all()
        assert all(key not in str(e.after) for e in trail)

    @pytest.mark.parametrize(
        ("form", "sentence"),
        [
            ({"channel": "phone", "name": ""}, "请填写名称"),
            ({"channel": "phone", "name": "x" * 101}, "请填写名称"),
            ({"channel": "window", "name": "窗口"}, "请选择渠道"),
            ({"channel": "fax", "name": "传真"}, "请选择渠道"),
        ],
    )
    async def test_bad_input_is_a_sentence_and_makes_no_key(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        admin_floor: Floor,
        form: dict[str, str],
        sentence: str,
    ) -> None:
        admin = await staff(http, "admin")
        await admin.page(PAGE)
        before = await row_counts(admin_floor.ctx.db)
        refused = await admin.submit(PAGE, form)
        assert refused.status_code == 422
        assert sentence in refused.text
        assert await row_counts(admin_floor.ctx.db) == before

    async def test_an_unknown_key_is_not_found_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        admin_floor: Floor,
    ) -> None:
        admin = await staff(http, "admin")
        await admin.page(PAGE)
        before = await row_counts(admin_floor.ctx.db)
        refused = await admin.submit(f"{PAGE}/00000000-0000-0000-0000-000000000000/revoke")
        assert refused.status_code == 404
        assert await row_counts(admin_floor.ctx.db) == before

    @pytest.mark.parametrize("username", ["scheduler", "nurse"])
    async def test_only_administrators_open_or_change_keys(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        admin_floor: Floor,
        username: str,
    ) -> None:
        other = await staff(http, username)
        assert (await other.page(PAGE)).status_code == 403
        await other.page("/staff")
        before = await row_counts(admin_floor.ctx.db)
        made = await other.submit(PAGE, {"channel": "phone", "name": "偷偷"})
        assert made.status_code == 403
        async with admin_floor.ctx.db.read() as s:
            some_key = await s.scalar(select(ApiKey.id).limit(1))
        revoked = await other.submit(f"{PAGE}/{some_key}/revoke")
        assert revoked.status_code == 403
        assert await row_counts(admin_floor.ctx.db) == before
