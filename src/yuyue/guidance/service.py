"""Guidance against the hospital's real departments: the rules give kinds of department in
order, this maps them to the departments the hospital has (by the kinds' name words, as
scheduling's departments carry no kind) and keeps only those that see this patient (the
departments' own age and sex rules). Read-only; no transaction of its own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.guidance import rules, segment
from yuyue.guidance import texts as _texts  # noqa: F401  (registers the sentences)
from yuyue.guidance.knowledge import Knowledge, default
from yuyue.kit import i18n
from yuyue.kit.localtime import age_on
from yuyue.scheduling import service as scheduling
from yuyue.scheduling.models import Department

MAX_DEPARTMENTS = 4


@dataclass(frozen=True)
class Suggestion:
    department_id: uuid.UUID
    name: str
    kind: str
    reason: str


@dataclass(frozen=True)
class Answer:
    emergency: bool
    action: rules.Action | None
    advice: str
    departments: tuple[Suggestion, ...]
    location: str = ""


def patient_age(birth_date: date, today: date) -> int:
    return age_on(birth_date, today) if today >= birth_date else 0


def _reason(advice: rules.KindAdvice, knowledge: Knowledge, locale: str) -> str:
    if advice.why is None:
        kind = knowledge.kind_by_id[advice.kind]
        return i18n.translate(
            "guidance.reason_start_here", locale, kind=kind.en if locale == "en" else kind.zh
        )
    if not advice.words:
        return advice.why.pick(locale)
    separator = ", " if locale == "en" else "、"
    return i18n.translate(
        "guidance.reason",
        locale,
        words=separator.join(advice.words),
        why=advice.why.pick(locale),
    )


def advise(
    departments: Sequence[Department],
    *,
    text: str,
    age: int | None,
    sex: str | None,
    locale: str,
    knowledge: Knowledge | None = None,
) -> Answer:
    """The answer for one complaint among these departments (no database: the caller
    read them)."""
    knowledge = knowledge or default()
    segmenter = segment.for_knowledge(knowledge)
    segmenter.add_words(d.name for d in departments)
    analysis = rules.analyse(knowledge, segmenter, text, age=age, sex=sex)
    age = analysis.age

    def name_of(d: Department) -> str:
        return d.name_en if locale == "en" and d.name_en else d.name

    def fits(d: Department) -> bool:
        return rules.accepts(
            min_age=d.min_age_years,
            max_age=d.max_age_years,
            sex_restriction=d.sex_restriction,
            age=age,
            sex=sex,
        )

    by_kind: dict[str, list[Department]] = {}
    for department in departments:
        kind = rules.kind_of_department(knowledge, name=department.name, name_en=department.name_en)
        if kind is not None:
            by_kind.setdefault(kind, []).append(department)

    chosen: list[Suggestion] = []
    if analysis.emergency is not None:
        emergency = analysis.emergency
        why = emergency.advice.pick(locale)
        for kind in emergency.kinds:
            chosen.extend(
                Suggestion(d.id, name_of(d), kind, why) for d in by_kind.get(kind, []) if fits(d)
            )
        first = chosen[0] if chosen else None
        location = ""
        if first is not None:
            place = next(d for d in departments if d.id == first.department_id)
            location = place.location_en if locale == "en" and place.location_en else place.location
        return Answer(True, emergency.action, why, tuple(chosen[:MAX_DEPARTMENTS]), location)

    named = {d.name: d for d in departments}
    for name in rules.names_mentioned(segmenter, text, named):
        department = named[name]
        if fits(department):
            kind = rules.kind_of_department(knowledge, name=name, name_en=department.name_en)
            chosen.append(
                Suggestion(
                    department.id,
                    name_of(department),
                    kind or "",
                    i18n.translate("guidance.reason_named", locale, name=name_of(department)),
                )
            )
    for advice in analysis.kinds:
        reason = _reason(advice, knowledge, locale)
        for department in by_kind.get(advice.kind, []):
            if fits(department) and all(s.department_id != department.id for s in chosen):
                chosen.append(Suggestion(department.id, name_of(department), advice.kind, reason))
    if not chosen:
        advice_text = i18n.translate("guidance.advice_no_department", locale)
    elif analysis.recognised:
        advice_text = i18n.translate("guidance.advice", locale)
    else:
        advice_text = i18n.translate("guidance.advice_unrecognised", locale)
    return Answer(False, None, advice_text, tuple(chosen[:MAX_DEPARTMENTS]))


async def suggest(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    text: str,
    age: int | None,
    sex: str | None,
    locale: str,
) -> Answer:
    departments = await scheduling.active_departments(session, hospital_id=hospital_id)
    return advise(departments, text=text, age=age, sex=sex, locale=locale)


def departments_for_search(departments: Sequence[Department], *, text: str) -> list[uuid.UUID]:
    """For the department search box: the departments guidance suggests for symptom words
    (头疼 → 神经内科 …), in order; none when the words are not symptoms."""
    query = text.strip()
    if len(query) < 2:
        return []
    knowledge = default()
    segmenter = segment.for_knowledge(knowledge)
    if not any(
        f.status is not rules.Status.NEGATED
        for f in rules.find_symptoms(knowledge, segmenter, query)
    ):
        return []
    answer = advise(departments, text=query, age=None, sex=None, locale=i18n.DEFAULT_LOCALE)
    return [s.department_id for s in answer.departments]
