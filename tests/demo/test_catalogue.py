"""Consistency checks for the demo hospital's reference data."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from itertools import pairwise
from typing import get_args

import pytest

from yuyue.demo import catalogue as c
from yuyue.staff.enums import Role

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_character(first17: str) -> str:
    """GB 11643 check character of the first 17 digits of a resident ID number."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def assert_unique(values: list[str]) -> None:
    duplicates = [value for value, count in Counter(values).items() if count > 1]
    assert not duplicates, f"duplicates: {duplicates}"


def test_checksum_helper_against_known_example() -> None:
    # The worked example from GB 11643-1999.
    assert id_check_character("11010519491231002") == "X"
    assert id_check_character("44052418800101001") == "4"


def test_hospital() -> None:
    assert c.HOSPITAL.code == "demo"
    assert c.HOSPITAL.name_zh == "示范市第一人民医院"
    assert c.HOSPITAL.name_en == "Demo City First People's Hospital"
    assert c.HOSPITAL.timezone == "Asia/Shanghai"


def test_codes_are_unique() -> None:
    assert_unique([campus.code for campus in c.CAMPUSES])
    assert_unique([level.code for level in c.LEVELS])
    assert_unique([title.code for title in c.TITLES])
    assert_unique([category.code for category in c.CATEGORIES])
    assert_unique([department.code for department in c.DEPARTMENTS])
    assert_unique([department.name_zh for department in c.DEPARTMENTS])
    assert_unique([doctor.code for doctor in c.DOCTORS])
    assert_unique([doctor.name_zh for doctor in c.DOCTORS])
    assert_unique([staff.username for staff in c.STAFF])
    assert_unique([patient.code for patient in c.DEMO_PATIENTS])
    assert_unique([patient.id_number for patient in c.DEMO_PATIENTS])


def test_codes_are_ascii_identifiers() -> None:
    codes = [
        *(campus.code for campus in c.CAMPUSES),
        *(level.code for level in c.LEVELS),
        *(department.code for department in c.DEPARTMENTS),
        *(doctor.code for doctor in c.DOCTORS),
    ]
    for code in codes:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", code), code


def test_two_campuses() -> None:
    assert len(c.CAMPUSES) == 2
    for campus in c.CAMPUSES:
        for text in (campus.name_zh, campus.name_en, campus.address_zh, campus.address_en):
            assert text.strip(), campus.code


def test_levels() -> None:
    assert [level.code for level in c.LEVELS] == [
        "general",
        "associate",
        "chief",
        "expert",
        "special",
    ]
    fees = [level.fee_fen for level in c.LEVELS]
    assert fees[0] == 0, "the general level is free in the demo"
    assert all(isinstance(fee, int) and fee >= 0 for fee in fees)
    assert fees == sorted(fees)


def test_period_hours() -> None:
    assert set(c.PERIOD_HOURS) == set(get_args(c.Period))
    ordered = [c.PERIOD_HOURS[p] for p in (c.MORNING, c.AFTERNOON, c.EVENING)]
    for start, end in ordered:
        assert start < end
    for (_, end), (start, _) in pairwise(ordered):
        assert end <= start
    assert c.PERIOD_HOURS[c.MORNING][0].hour == 8


def test_department_counts_and_references() -> None:
    assert 18 <= len(c.DEPARTMENTS) <= 24
    campuses = {campus.code for campus in c.CAMPUSES}
    categories = {category.code for category in c.CATEGORIES}
    for department in c.DEPARTMENTS:
        assert department.campus_code in campuses, department.code
        assert department.category_code in categories, department.code
        for text in (
            department.name_zh,
            department.name_en,
            department.location_zh,
            department.location_en,
            department.description_zh,
            department.description_en,
            department.bring_zh,
            department.bring_en,
        ):
            assert text.strip(), department.code
        assert re.fullmatch(r"[a-z]+", department.pinyin), department.code
        assert len(department.pinyin) == len(department.name_zh), department.code
        if department.min_age_years is not None:
            assert department.min_age_years >= 0
        if department.max_age_years is not None:
            assert department.max_age_years >= (department.min_age_years or 0)
        assert department.sex in (None, "M", "F")


def test_pinyin_examples() -> None:
    pinyin = {department.name_zh: department.pinyin for department in c.DEPARTMENTS}
    assert pinyin["内科"] == "nk"
    assert pinyin["心血管内科"] == "xxgnk"
    assert pinyin["耳鼻喉科"] == "ebhk"
    assert pinyin["康复医学科"] == "kfyxk"


REQUIRED_DEPARTMENTS = (
    "内科",
    "外科",
    "儿科",
    "眼科",
    "口腔科",
    "耳鼻喉科",
    "皮肤科",
    "神经内科",
    "心血管内科",
    "消化内科",
    "呼吸内科",
    "骨科",
    "泌尿外科",
    "中医科",
    "急诊科",
)


def test_required_departments_present() -> None:
    names = {department.name_zh for department in c.DEPARTMENTS}
    missing = [name for name in REQUIRED_DEPARTMENTS if name not in names]
    assert not missing
    assert "妇产科" in names or {"妇科", "产科"} <= names


def test_restrictions() -> None:
    by_name = {department.name_zh: department for department in c.DEPARTMENTS}
    pediatrics = by_name["儿科"]
    assert pediatrics.min_age_years in (None, 0)
    assert pediatrics.max_age_years == 14
    for name in ("妇科", "产科", "妇产科"):
        if name in by_name:
            assert by_name[name].sex == "F"
    if "男科" in by_name:
        assert by_name["男科"].sex == "M"


def test_doctors() -> None:
    assert 50 <= len(c.DOCTORS) <= 70
    departments = {department.code for department in c.DEPARTMENTS}
    levels = {level.code for level in c.LEVELS}
    titles = {title.code for title in c.TITLES}
    assert set(c.TITLE_LEVELS) == titles
    for doctor in c.DOCTORS:
        assert re.fullmatch(r"D\d{3}", doctor.code)
        assert doctor.department_code in departments, doctor.code
        assert doctor.level_code in levels, doctor.code
        assert doctor.title_code in titles, doctor.code
        assert doctor.level_code in c.TITLE_LEVELS[doctor.title_code], doctor.code
        assert doctor.sex in ("M", "F")
        assert 2 <= len(doctor.name_zh) <= 4, doctor.code
        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", doctor.name_en), doctor.code
        assert doctor.specialty_zh.strip(), doctor.code
        assert doctor.specialty_en.strip(), doctor.code
        assert doctor.capacity > 0


def test_doctors_per_department() -> None:
    per_department = Counter(doctor.department_code for doctor in c.DOCTORS)
    for department in c.DEPARTMENTS:
        assert 2 <= per_department[department.code] <= 5, department.code


def test_doctor_sex_fits_department() -> None:
    departments = {department.code: department for department in c.DEPARTMENTS}
    for doctor in c.DOCTORS:
        restriction = departments[doctor.department_code].sex
        # Not a rule in general, but true of this demo and checks nothing got mixed up.
        if restriction == "M":
            assert doctor.sex == "M", doctor.code


def valid_clinic(weekday: int, period: str) -> bool:
    return weekday in range(7) and period in get_args(c.Period)


def test_timetables() -> None:
    session_departments = {session.department_code for session in c.DEPARTMENT_SESSIONS}
    for doctor in c.DOCTORS:
        for weekday, period in doctor.timetable:
            assert valid_clinic(weekday, period), doctor.code
        assert len(set(doctor.timetable)) == len(doctor.timetable), doctor.code
        if doctor.timetable:
            assert 1 <= len(doctor.timetable) <= 4, doctor.code
        else:
            assert doctor.department_code in session_departments, doctor.code
    clinics = [clinic for doctor in c.DOCTORS for clinic in doctor.timetable]
    assert any(period == c.EVENING for _, period in clinics)
    assert any(clinic == (c.SAT, c.MORNING) for clinic in clinics)
    with_timetable = [doctor for doctor in c.DOCTORS if doctor.timetable]
    typical = [doctor for doctor in with_timetable if 2 <= len(doctor.timetable) <= 4]
    assert len(typical) >= 0.8 * len(with_timetable)


def test_department_sessions() -> None:
    departments = {department.code: department for department in c.DEPARTMENTS}
    levels = {level.code for level in c.LEVELS}
    keys = [(s.department_code, s.weekday, s.period) for s in c.DEPARTMENT_SESSIONS]
    assert len(set(keys)) == len(keys)
    for session in c.DEPARTMENT_SESSIONS:
        assert session.department_code in departments
        assert valid_clinic(session.weekday, session.period)
        assert session.capacity > 0
        assert session.level_code in levels
    with_sessions = {session.department_code for session in c.DEPARTMENT_SESSIONS}
    flagged = {d.code for d in c.DEPARTMENTS if d.has_department_sessions}
    assert with_sessions == flagged
    assert {"IM", "PED", "ER"} <= flagged


def test_every_department_is_bookable() -> None:
    with_doctor_clinics = {d.department_code for d in c.DOCTORS if d.timetable}
    with_sessions = {s.department_code for s in c.DEPARTMENT_SESSIONS}
    for department in c.DEPARTMENTS:
        assert department.code in with_doctor_clinics | with_sessions, department.code


def test_staff() -> None:
    doctors = {doctor.code for doctor in c.DOCTORS}
    roles = {role for staff in c.STAFF for role in staff.roles}
    # Every role has a demo login.
    assert roles == {role.value for role in Role}
    assert any(staff.username == "admin" and "admin" in staff.roles for staff in c.STAFF)
    for staff in c.STAFF:
        assert staff.password, staff.username
        assert staff.display_name, staff.username
        assert staff.roles, staff.username
        if "doctor" in staff.roles:
            assert staff.doctor_code in doctors
        else:
            assert staff.doctor_code is None


@pytest.mark.parametrize("patient", c.DEMO_PATIENTS, ids=lambda p: p.code)
def test_demo_patient_id_number(patient: c.DemoPatient) -> None:
    number = patient.id_number
    assert re.fullmatch(r"\d{17}[\dX]", number)
    assert id_check_character(number[:17]) == number[17]
    assert number[6:14] == patient.birth_date.strftime("%Y%m%d")
    assert ("M" if int(number[16]) % 2 else "F") == patient.sex


def test_demo_patients() -> None:
    assert len(c.DEMO_PATIENTS) == 6
    today = date(2026, 11, 23)
    ages = [age_on(patient.birth_date, today) for patient in c.DEMO_PATIENTS]
    assert any(5 <= age <= 7 for age in ages), "a child of about 6"
    assert any(73 <= age <= 77 for age in ages), "an elderly person of about 75"
    adults = [p for p, age in zip(c.DEMO_PATIENTS, ages, strict=True) if 18 <= age < 65]
    assert {p.sex for p in adults} == {"M", "F"}
    for patient in c.DEMO_PATIENTS:
        for phone in (patient.phone, patient.account_phone):
            assert re.fullmatch(r"1[358]\d{9}", phone), patient.code
    accounts = Counter(patient.account_phone for patient in c.DEMO_PATIENTS)
    shared = [phone for phone, count in accounts.items() if count > 1]
    assert len(shared) == 1
    sharing = [p for p in c.DEMO_PATIENTS if p.account_phone == shared[0]]
    assert sorted(p.relation for p in sharing) == ["parent", "self"]
    daughter = next(p for p in sharing if p.relation == "self")
    father = next(p for p in sharing if p.relation == "parent")
    assert (daughter.sex, father.sex) == ("F", "M")
    assert father.birth_date < daughter.birth_date
    assert daughter.phone == daughter.account_phone
