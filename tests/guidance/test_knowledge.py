"""The knowledge file: the shipped one is valid, and a broken one is refused with a
sentence that names the entry."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from yuyue.guidance import knowledge
from yuyue.guidance.knowledge import KnowledgeError

RAW: dict[str, Any] = tomllib.loads(knowledge.DEFAULT_PATH.read_text("utf-8"))


def broken(change: Any) -> str:
    raw = copy.deepcopy(RAW)
    change(raw)
    with pytest.raises(KnowledgeError) as refused:
        knowledge.parse(raw, source="knowledge.toml")
    return str(refused.value)


def symptom(raw: dict[str, Any], symptom_id: str) -> dict[str, Any]:
    return next(s for s in raw["symptoms"] if s["id"] == symptom_id)


def test_the_shipped_knowledge_is_valid_and_covers_the_departments() -> None:
    shipped = knowledge.load()
    assert len(shipped.symptoms) >= 80
    kinds = set(shipped.kind_by_id)
    assert {
        "cardiology",
        "neurology",
        "gastroenterology",
        "respiratory",
        "paediatrics",
        "gynaecology",
        "obstetrics",
        "urology",
        "dermatology",
        "ent",
        "ophthalmology",
        "stomatology",
        "orthopaedics",
        "general_surgery",
        "endocrinology",
        "nephrology",
        "psychiatry",
        "infectious",
        "emergency",
    } <= kinds
    assert len(shipped.red_flags) >= 8


def test_an_unknown_kind_names_the_symptom() -> None:
    def change(raw: dict[str, Any]) -> None:
        symptom(raw, "headache")["departments"][0]["kind"] = "neurolgy"

    message = broken(change)
    assert "'headache'" in message
    assert "unknown department kind 'neurolgy'" in message


def test_a_missing_reason_names_the_symptom() -> None:
    def change(raw: dict[str, Any]) -> None:
        del symptom(raw, "cough")["reason"]

    message = broken(change)
    assert "'cough' → reason" in message and "Field required" in message


def test_a_word_in_two_symptoms_names_both() -> None:
    def change(raw: dict[str, Any]) -> None:
        symptom(raw, "cough")["words"].append("头疼")

    assert "word '头疼' also belongs to 'headache'" in broken(change)


def test_a_red_flag_on_an_unknown_symptom_is_refused() -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["red_flags"][0]["all_of"][0] = ["chest_pian"]

    message = broken(change)
    assert "red_flags[0] 'chest_pain_sweating'" in message
    assert "unknown symptom 'chest_pian'" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda raw: symptom(raw, "fever")["words"].append("头*"), "'*' at an end"),
        (lambda raw: symptom(raw, "fever")["departments"][0].update(weight=0), "greater than 0"),
        (lambda raw: raw["kinds"].append(dict(raw["kinds"][0])), "id 'emergency' is used twice"),
        (lambda raw: raw.update(fallback="nowhere"), "fallback: unknown department kind"),
        (lambda raw: symptom(raw, "fever").update(sex="X"), "'fever' → sex"),
    ],
)
def test_other_mistakes_are_explained(change: Any, expected: str) -> None:
    assert expected in broken(change)


def test_a_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "knowledge.toml"
    path.write_text('version = 1\n[[kinds]\nid = "x"\n', "utf-8")
    with pytest.raises(KnowledgeError, match=r"knowledge\.toml is not valid TOML"):
        knowledge.load(path)
