"""The guidance page and the department search over HTTP."""

from __future__ import annotations

import re
from datetime import date

from tests import factories as f
from tests.guidance.conftest import Departments
from tests.portal.conftest import Browser
from yuyue.guidance.throttle import LIMIT


class TestGuidancePage:
    async def test_the_home_page_offers_guidance(self, portal: Browser) -> None:
        home = await portal.page("/")
        assert 'href="/guidance"' in home.text
        assert "不知道挂哪个科？智能导诊" in home.text

    async def test_suggestions_link_to_the_departments_to_book(
        self, portal: Browser, departments: Departments
    ) -> None:
        page = await portal.page("/guidance")
        assert page.status_code == 200 and 'name="text"' in page.text
        answer = await portal.submit("/guidance", {"text": "最近老是头疼", "age": "40"})
        assert answer.status_code == 200
        links = re.findall(
            r'data-testid="suggestion"><a class="row stretch" href="([^"]+)"', answer.text
        )
        assert links[0] == f"/departments/{departments.neurology.id}"
        assert "您提到“头疼”" in answer.text
        assert "<script>" not in answer.text.split("</head>")[1]  # no inline script (CSP)

    async def test_a_red_flag_shows_120_and_no_booking(
        self, portal: Browser, departments: Departments
    ) -> None:
        answer = await portal.submit("/guidance", {"text": "孩子发烧39度还抽搐了"})
        assert 'data-testid="emergency"' in answer.text and 'role="alert"' in answer.text
        assert 'href="tel:120"' in answer.text
        assert 'data-testid="suggestion"' not in answer.text

    async def test_the_chosen_family_patient_gives_age_and_sex(
        self, signed_in: Browser, departments: Departments
    ) -> None:
        await signed_in.page("/patients/new")
        added = await signed_in.submit(
            "/patients",
            {
                "name": "王小明",
                "id_type": "resident_id",
                "id_number": f.resident_id(birth=date(2020, 3, 7), sex="M"),
            },
        )
        assert added.status_code == 303, added.text
        page = await signed_in.page("/guidance")
        patient_id = re.search(r'<option value="([0-9a-f-]{36})"[^>]*>王小明', page.text)
        assert patient_id is not None
        answer = await signed_in.submit(
            "/guidance", {"text": "咳嗽发烧", "patient": patient_id.group(1)}
        )
        # Born 2020: a child on 2026-11-20, so paediatrics first.
        first = re.search(
            r'data-testid="suggestion"><a class="row stretch" href="([^"]+)"', answer.text
        )
        assert first is not None and first.group(1) == f"/departments/{departments.paediatrics.id}"

    async def test_the_page_is_limited_like_the_api(
        self, portal: Browser, departments: Departments
    ) -> None:
        for _ in range(LIMIT):
            assert (await portal.submit("/guidance", {"text": "头疼"})).status_code == 200
        refused = await portal.submit("/guidance", {"text": "头疼"})
        assert refused.status_code == 429 and "retry-after" in refused.headers
        assert "请求过于频繁" in refused.text


class TestDepartmentSearch:
    async def test_full_pinyin_finds_the_department(
        self, portal: Browser, departments: Departments
    ) -> None:
        found = await portal.page("/departments", params={"q": "xinxueguan"})
        assert f"/departments/{departments.cardiology.id}" in found.text
        assert f"/departments/{departments.neurology.id}" not in found.text

    async def test_symptom_words_find_the_departments_guidance_suggests(
        self, portal: Browser, departments: Departments
    ) -> None:
        found = await portal.page("/departments", params={"q": "头疼"})
        assert "按您描述的症状推荐" in found.text
        assert f"/departments/{departments.neurology.id}" in found.text
        assert f"/departments/{departments.gynaecology.id}" not in found.text
