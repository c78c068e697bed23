"""A banned patient on the patient pages: the blocked notice, why and until when, the
appeal form with its refusals, and the decision once staff make it."""

from __future__ import annotations

import uuid
from datetime import date

import httpx

from tests.attendance.conftest import sweep, visit
from tests.conftest import World
from tests.helpers import row_counts, staff_auth
from tests.portal.conftest import Browser
from tests.portal.test_pages import account_patient, add_father, first_slot
from yuyue.patients.models import Patient
from yuyue.staff.enums import Role
from yuyue.web.context import AppContext

MISSED = (date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16))


async def banned_father(browser: Browser, ctx: AppContext, world: World) -> Patient:
    await add_father(browser)
    father = await account_patient(ctx, "王建国")
    for day in MISSED:
        await visit(ctx, world, day=day, patient=father)
    assert len((await sweep(ctx, world)).bans) == 1
    return father


def ban_id(page: httpx.Response) -> str:
    marker = "/ban/"
    start = page.text.index(marker) + len(marker)
    return page.text[start : start + 36]


class TestTheBanPage:
    async def test_patients_page_shows_who_is_blocked_and_until_when(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        father = await banned_father(signed_in, ctx, world)
        listing = await signed_in.page("/patients")
        assert 'data-testid="blocked"' in listing.text
        assert f"/patients/{father.id}/ban" in listing.text
        assert "2027-05-19" in listing.text

        page = await signed_in.page(f"/patients/{father.id}/ban")
        assert page.status_code == 200
        assert "2027-05-19" in page.text
        assert "2026-11-02、2026-11-09、2026-11-16" in page.text
        assert "窗口" in page.text  # on-site registration stays open
        assert 'data-testid="appeal-form"' in page.text

        signed_in.http.cookies.set("yuyue_lang", "en")
        english = await signed_in.page(f"/patients/{father.id}/ban")
        assert "3 missed visits within 365 days (2026-11-02, 2026-11-09, 2026-11-16)" in (
            english.text
        )

    async def test_booking_online_is_refused_with_the_until_date(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        father = await banned_father(signed_in, ctx, world)
        slot = await first_slot(ctx, world)
        await signed_in.page(f"/sessions/{world.session.id}")
        before = await row_counts(ctx.db)
        refused = await signed_in.submit(
            f"/sessions/{world.session.id}/book", {"slot": str(slot), "patient": str(father.id)}
        )
        assert refused.status_code == 403
        assert "2027年5月19日" in refused.text and "窗口" in refused.text
        assert await row_counts(ctx.db) == before

    async def test_someone_elses_patient_is_not_found(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        assert (await signed_in.page(f"/patients/{world.patient.id}/ban")).status_code == 404
        assert (await signed_in.page(f"/patients/{uuid.uuid4()}/ban")).status_code == 404

    async def test_a_patient_without_a_ban(self, signed_in: Browser, ctx: AppContext) -> None:
        await add_father(signed_in)
        father = await account_patient(ctx, "王建国")
        page = await signed_in.page(f"/patients/{father.id}/ban")
        assert page.status_code == 200 and 'data-testid="ban"' not in page.text
        assert 'data-testid="blocked"' not in (await signed_in.page("/patients")).text


class TestAppealing:
    async def test_bad_appeals_are_explained_and_change_nothing(
        self, signed_in: Browser, ctx: AppContext, world: World
    ) -> None:
        father = await banned_father(signed_in, ctx, world)
        page = await signed_in.page(f"/patients/{father.id}/ban")
        path = f"/patients/{father.id}/ban/{ban_id(page)}/appeal"
        before = await row_counts(ctx.db)
        for text in ("短", "x" * 1001, "bad\x00text here"):
            refused = await signed_in.submit(path, {"text": text})
            assert refused.status_code == 422
            assert "5–1000" in refused.text and 'role="alert"' in refused.text
        forged = await signed_in.http.post(path, data={"csrf": "nope", "text": "有正当理由的申诉"})
        assert forged.status_code == 403
        assert await row_counts(ctx.db) == before

    async def test_appeal_wait_and_see_the_decision(
        self, signed_in: Browser, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        father = await banned_father(signed_in, ctx, world)
        page = await signed_in.page(f"/patients/{father.id}/ban")
        path = f"/patients/{father.id}/ban/{ban_id(page)}/appeal"

        sent = await signed_in.submit(path, {"text": "那几天母亲住院，在医院陪护。"})
        assert sent.status_code == 303
        waiting = await signed_in.page(sent.headers["location"])
        assert 'data-status="submitted"' in waiting.text
        assert "那几天母亲住院" in waiting.text
        assert 'data-testid="appeal-form"' not in waiting.text

        before = await row_counts(ctx.db)
        again = await signed_in.submit(path, {"text": "再提交一次申诉内容。"})
        assert again.status_code == 409 and "正在处理" in again.text
        assert await row_counts(ctx.db) == before

        staff = await staff_auth(client, ctx, world, Role.REGISTRAR)
        [item] = (await client.get("/api/v1/appeals", headers=staff)).json()
        decided = await client.post(
            f"/api/v1/appeals/{item['id']}/decide",
            json={"decision": "accept", "note": "已核实陪护证明"},
            headers=staff,
        )
        assert decided.status_code == 200

        after = await signed_in.page(f"/patients/{father.id}/ban")
        assert 'data-status="accepted"' in after.text
        assert "已核实陪护证明" in after.text
        assert 'data-lifted="yes"' in after.text
        assert 'data-testid="blocked"' not in (await signed_in.page("/patients")).text


class TestTheRulesPage:
    async def test_states_the_hospitals_numbers(
        self, portal: Browser, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        page = await portal.page("/rules")
        assert "365 天内爽约 3 次，暂停网上等自助渠道预约 180 天" in page.text
        assert "360 天" in page.text

        admin = await staff_auth(client, ctx, world, Role.ADMIN)
        changed = await client.put(
            "/api/v1/no-show-policy",
            json={"threshold": 2, "window_days": 90, "ban_days": [30]},
            headers=admin,
        )
        assert changed.status_code == 200
        page = await portal.page("/rules")
        assert "90 天内爽约 2 次，暂停网上等自助渠道预约 30 天；" in page.text
