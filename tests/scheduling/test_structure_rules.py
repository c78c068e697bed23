"""The rules of the hospital's structure: what makes a department or doctor valid and who
may still be scheduled. Pure, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from yuyue.scheduling import rules
from yuyue.scheduling.rules import DepartmentFacts, DoctorFacts


def department(**changes: Any) -> DepartmentFacts:
    return DepartmentFacts(**({"code": "PED", "name": "儿科"} | changes))


class TestCheckDepartment:
    def test_a_plain_department_is_tidied(self) -> None:
        checked = rules.check_department(
            department(code=" PED ", name=" 儿科 ", name_en=" Paediatrics ", sex_restriction=""),
            taken_codes=["CARD"],
        )
        assert (checked.code, checked.name, checked.name_en) == ("PED", "儿科", "Paediatrics")
        assert checked.sex_restriction is None

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"name": ""}, "name"),
            ({"name": "   "}, "name"),
            ({"name": "科" * 101}, "name"),
            ({"code": ""}, "code"),
            ({"code": "儿科"}, "code"),
            ({"code": "P E D"}, "code"),
            ({"code": "X" * 33}, "code"),
            ({"min_age_years": 15, "max_age_years": 14}, "max_age_years"),
            ({"min_age_years": -1}, "min_age_years"),
            ({"max_age_years": 151}, "max_age_years"),
            ({"sex_restriction": "X"}, "sex_restriction"),
            ({"location": "x" * 201}, "location"),
        ],
    )
    def test_bad_input_is_refused_naming_the_field(
        self, changes: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(rules.InvalidStructure) as refused:
            rules.check_department(department(**changes), taken_codes=[])
        assert refused.value.values["field"] == field
        assert refused.value.status == 422

    @pytest.mark.parametrize(
        ("min_age", "max_age"), [(None, None), (0, 14), (14, 14), (18, None), (None, 0)]
    )
    def test_sensible_age_ranges_pass(self, min_age: int | None, max_age: int | None) -> None:
        checked = rules.check_department(
            department(min_age_years=min_age, max_age_years=max_age), taken_codes=[]
        )
        assert (checked.min_age_years, checked.max_age_years) == (min_age, max_age)

    @pytest.mark.parametrize("code", ["PED", "ped", " Ped "])
    def test_a_code_in_use_is_refused_whatever_its_case(self, code: str) -> None:
        with pytest.raises(rules.CodeTaken) as refused:
            rules.check_department(department(code=code), taken_codes=["CARD", "PED"])
        assert refused.value.status == 409

    def test_the_sentence_names_field_and_problem_in_both_languages(self) -> None:
        with pytest.raises(rules.InvalidStructure) as refused:
            rules.check_department(department(min_age_years=15, max_age_years=14), taken_codes=[])
        assert refused.value.detail("zh-CN") == "最小年龄不能大于最大年龄（最大年龄）"
        assert refused.value.detail("en") == (
            "max_age_years: the youngest age must not be above the oldest"
        )


class TestCheckDoctor:
    def test_a_doctor_needs_a_name_and_a_free_code(self) -> None:
        checked = rules.check_doctor(
            DoctorFacts(code="DR9", name=" 周医生 ", title="主治医师", room=" 3诊室 "),
            taken_codes=["DR1"],
        )
        assert (checked.name, checked.room) == ("周医生", "3诊室")
        with pytest.raises(rules.InvalidStructure):
            rules.check_doctor(DoctorFacts(code="DR9", name=""), taken_codes=[])
        with pytest.raises(rules.CodeTaken):
            rules.check_doctor(DoctorFacts(code="dr1", name="周医生"), taken_codes=["DR1"])
        with pytest.raises(rules.InvalidStructure):
            rules.check_doctor(DoctorFacts(code="DR9", name="周", room="室" * 101), taken_codes=[])


class TestWhoIsScheduled:
    @pytest.mark.parametrize(
        ("department_active", "doctor_active", "error"),
        [
            (True, None, None),
            (True, True, None),
            (False, None, rules.DepartmentInactive),
            (False, True, rules.DepartmentInactive),
            (True, False, rules.DoctorInactive),
        ],
    )
    def test_new_rows_and_sessions_need_active_department_and_doctor(
        self,
        department_active: bool,
        doctor_active: bool | None,
        error: type[Exception] | None,
    ) -> None:
        assert rules.generates(
            department_active=department_active, doctor_active=doctor_active
        ) is (error is None)
        if error is None:
            rules.check_schedulable(
                department_active=department_active, doctor_active=doctor_active
            )
        else:
            with pytest.raises(error):
                rules.check_schedulable(
                    department_active=department_active, doctor_active=doctor_active
                )

    @pytest.mark.parametrize(
        ("moving", "rows", "refused"), [(False, 3, False), (True, 0, False), (True, 1, True)]
    )
    def test_a_doctor_with_timetable_rows_keeps_their_department(
        self, moving: bool, rows: int, refused: bool
    ) -> None:
        if refused:
            with pytest.raises(rules.InvalidStructure):
                rules.check_department_move(moving=moving, timetable_rows=rows)
        else:
            rules.check_department_move(moving=moving, timetable_rows=rows)
