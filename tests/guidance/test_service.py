"""Guidance against a hospital's real departments (database on SQLite and PostgreSQL)."""

from __future__ import annotations

from tests.conftest import World
from tests.guidance.conftest import Departments
from yuyue.guidance import service
from yuyue.guidance.rules import Action
from yuyue.web.context import AppContext


async def ask(
    ctx: AppContext,
    world: World,
    text: str,
    *,
    age: int | None = None,
    sex: str | None = None,
    locale: str = "zh-CN",
) -> service.Answer:
    async with ctx.db.read() as session:
        return await service.suggest(
            session, hospital_id=world.hospital.id, text=text, age=age, sex=sex, locale=locale
        )


class TestSuggest:
    async def test_kinds_become_the_hospitals_own_departments(
        self, ctx: AppContext, world: World, departments: Departments
    ) -> None:
        answer = await ask(ctx, world, "最近老是头疼，有时候心慌")
        assert not answer.emergency
        ids = [s.department_id for s in answer.departments]
        assert set(ids[:2]) == {departments.neurology.id, departments.cardiology.id}
        first = answer.departments[0]
        assert first.name in ("神经内科", "心血管内科")
        assert "您提到“" in first.reason

    async def test_a_kind_the_hospital_lacks_is_not_suggested(
        self, ctx: AppContext, world: World, departments: Departments
    ) -> None:
        # ENT would come first; this hospital has none, so internal medicine leads.
        answer = await ask(ctx, world, "嗓子疼")
        assert [s.department_id for s in answer.departments] == [departments.internal.id]
        assert all(s.kind != "ent" for s in answer.departments)

    async def test_nothing_suitable_says_so(
        self, ctx: AppContext, world: World, departments: Departments
    ) -> None:
        answer = await ask(ctx, world, "牙疼")
        assert answer.departments == ()
        assert "暂无适合的科室" in answer.advice

    async def test_departments_that_refuse_the_patients_age_or_sex_are_left_out(
        self, ctx: AppContext, world: World, departments: Departments
    ) -> None:
        child = await ask(ctx, world, "咳嗽发烧", age=5)
        assert child.departments[0].department_id == departments.paediatrics.id
        adult = await ask(ctx, world, "咳嗽发烧", age=35)
        assert departments.paediatrics.id not in [s.department_id for s in adult.departments]
        boy = await ask(ctx, world, "早泄", age=16, sex="M")
        assert departments.andrology.id not in [s.department_id for s in boy.departments]
        man = await ask(ctx, world, "早泄", age=30, sex="M")
        assert man.departments[0].department_id == departments.andrology.id
        woman = await ask(ctx, world, "月经不调", sex="F")
        assert woman.departments[0].department_id == departments.gynaecology.id
        nobody = await ask(ctx, world, "月经不调", sex="M")
        assert departments.gynaecology.id not in [s.department_id for s in nobody.departments]

    async def test_a_red_flag_sends_to_the_emergency_department(
        self, ctx: AppContext, world: World, departments: Departments
    ) -> None:
        answer = await ask(ctx, world, "胸口疼还出冷汗")
        assert answer.emergency and answer.action is Action.CALL_120
        assert answer.departments[0].department_id == departments.emergency.id
        assert "120" in answer.advice

    async def test_a_department_named_in_the_text_comes_first(
        self, ctx: AppContext, world: World, departments: Departments
    ) -> None:
        answer = await ask(ctx, world, "想挂心血管内科，头疼")
        assert answer.departments[0].department_id == departments.cardiology.id
        assert answer.departments[0].reason == "您提到了心血管内科"

    async def test_nothing_recognised_starts_at_internal_medicine(
        self, ctx: AppContext, world: World, departments: Departments
    ) -> None:
        answer = await ask(ctx, world, "说不上来哪里不对劲")
        assert [s.department_id for s in answer.departments] == [departments.internal.id]
        assert "没有从描述中识别出具体症状" in answer.advice

    async def test_english(self, ctx: AppContext, world: World, departments: Departments) -> None:
        answer = await ask(ctx, world, "bad headache", locale="en")
        assert answer.departments[0].department_id == departments.neurology.id
        assert answer.departments[0].reason.startswith("You mentioned “headache”")


def test_the_search_finds_departments_for_symptom_words_only() -> None:
    assert service.departments_for_search([], text="xxgnk") == []
