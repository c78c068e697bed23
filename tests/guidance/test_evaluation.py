"""The guidance evaluation: realistic complaints (tests/guidance/evaluation.toml) scored
against the shipped knowledge. Run with -s to see the figures; docs/guidance.md quotes them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from yuyue.guidance import knowledge, rules, segment

CASES: dict[str, list[dict[str, Any]]] = tomllib.loads(
    (Path(__file__).parent / "evaluation.toml").read_text("utf-8")
)
KNOWLEDGE = knowledge.default()


@dataclass
class Figures:
    scored: int = 0
    top1: int = 0
    top3: int = 0
    red_flags: int = 0
    caught: int = 0
    mild: int = 0
    false_emergencies: int = 0


def evaluate() -> tuple[Figures, list[str]]:
    segmenter = segment.for_knowledge(KNOWLEDGE)
    figures, misses = Figures(), []
    for group, cases in CASES.items():
        for case in cases:
            result = rules.analyse(
                KNOWLEDGE, segmenter, case["text"], age=case.get("age"), sex=case.get("sex")
            )
            if group == "red_flags":
                figures.red_flags += 1
                figures.caught += result.emergency is not None
                if result.emergency is None:
                    misses.append(f"red flag missed: {case['text']}")
                continue
            if group == "mild":
                figures.mild += 1
                if result.emergency is not None:
                    figures.false_emergencies += 1
                    misses.append(f"false emergency: {case['text']}")
            kinds = [k.kind for k in result.kinds]
            figures.scored += 1
            figures.top1 += bool(kinds) and kinds[0] in case["expect"]
            hit = any(kind in case["expect"] for kind in kinds[:3])
            figures.top3 += hit
            if not hit:
                misses.append(f"not in top 3: {case['text']} → {kinds[:3]}")
    return figures, misses


def test_the_evaluation_set_is_big_enough_and_uses_known_kinds() -> None:
    assert sum(len(cases) for cases in CASES.values()) >= 150
    assert len(CASES["red_flags"]) >= 25
    assert len(CASES["mild"]) >= 20
    assert sum(1 for c in CASES["ordinary"] if c["text"].isascii()) >= 10
    known = set(KNOWLEDGE.kind_by_id)
    for group in ("ordinary", "mild"):
        for case in CASES[group]:
            assert set(case["expect"]) <= known, case


def test_guidance_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    figures, misses = evaluate()
    report = (
        f"guidance evaluation: {figures.scored} complaints scored, "
        f"top-1 {figures.top1 / figures.scored:.1%} ({figures.top1}), "
        f"top-3 {figures.top3 / figures.scored:.1%} ({figures.top3}); "
        f"red flags caught {figures.caught}/{figures.red_flags}; "
        f"false emergencies {figures.false_emergencies}/{figures.mild} mild cases"
    )
    with capsys.disabled():
        print("\n" + report + "".join(f"\n  {miss}" for miss in misses))
    assert figures.top3 / figures.scored >= 0.90, report
    assert figures.caught == figures.red_flags, report
    assert figures.false_emergencies == 0, report
