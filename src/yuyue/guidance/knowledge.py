"""The guidance knowledge: a TOML file clinicians edit, read into typed, checked values.

`load()` refuses a broken file with a `KnowledgeError` whose sentence names the entry
(``symptoms[12] 'headache': departments[0].kind: unknown department kind 'neurolgy'``), so
a mistake stops the server at start-up rather than sending a patient to the wrong place.
docs/guidance.md describes each section."""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_PATH = Path(__file__).resolve().parent / "knowledge.toml"
GAP = "*"
_ID = r"^[a-z][a-z0-9_]*$"

Age = Annotated[int, Field(ge=0, le=130)]
Sex = Literal["F", "M"]


class KnowledgeError(ValueError):
    """The knowledge file cannot be used; the message says where and why."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Entry):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def pick(self, locale: str) -> str:
        return self.en if locale == "en" else self.zh


class Kind(_Entry):
    id: str = Field(pattern=_ID)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    names: list[str] = Field(min_length=1)
    names_en: list[str] = []
    sex: Sex | None = None
    min_age: Age | None = None
    max_age: Age | None = None


class BodyPart(_Entry):
    id: str = Field(pattern=_ID)
    zh: str
    en: str


class Link(_Entry):
    kind: str
    weight: float = Field(gt=0, le=10)
    min_age: Age | None = None
    max_age: Age | None = None


class Symptom(_Entry):
    id: str = Field(pattern=_ID)
    body_part: str
    words: list[str] = Field(min_length=1)
    words_en: list[str] = []
    departments: list[Link]
    reason: Text
    sex: Sex | None = None

    @model_validator(mode="after")
    def _words_are_usable(self) -> Symptom:
        for word in [*self.words, *self.words_en]:
            parts = word.split(GAP)
            if not word.strip() or any(not part.strip() for part in parts):
                raise ValueError(f"word {word!r}: empty, or '{GAP}' at an end or doubled")
        return self


class RedFlag(_Entry):
    id: str = Field(pattern=_ID)
    all_of: list[list[str]] = Field(min_length=1)
    action: Literal["call_120", "emergency_department", "crisis_line"]
    send_to: list[str] = Field(min_length=1)
    advice: Text


class AgeRule(_Entry):
    id: str = Field(pattern=_ID)
    min_age: Age | None = None
    max_age: Age | None = None
    children_in_text: bool = False
    boost: str
    first: bool = True
    weight: float = Field(default=1, gt=0, le=10)
    defer_to: list[str] = []
    reason: Text

    @model_validator(mode="after")
    def _has_a_range(self) -> AgeRule:
        if self.min_age is None and self.max_age is None:
            raise ValueError("an age rule needs min_age, max_age or both")
        return self

    def covers(self, age: int) -> bool:
        return (self.min_age is None or age >= self.min_age) and (
            self.max_age is None or age <= self.max_age
        )


class Cues(_Entry):
    negation: list[str]
    history: list[str]
    recovery: list[str]
    hypothetical: list[str]
    resolved: list[str]
    acute: list[str]
    breakers: list[str]
    children: list[str]


class Knowledge(_Entry):
    version: Literal[1]
    kinds: list[Kind] = Field(min_length=1)
    body_parts: list[BodyPart]
    symptoms: list[Symptom] = Field(min_length=1)
    red_flags: list[RedFlag]
    age_rules: list[AgeRule]
    cues: Cues
    fallback: str

    @model_validator(mode="after")
    def _references_hold(self) -> Knowledge:
        problems: list[str] = []
        kinds = _unique(problems, "kinds", [k.id for k in self.kinds])
        parts = _unique(problems, "body_parts", [b.id for b in self.body_parts])
        symptoms = _unique(problems, "symptoms", [s.id for s in self.symptoms])
        _unique(problems, "red_flags", [r.id for r in self.red_flags])
        _unique(problems, "age_rules", [r.id for r in self.age_rules])
        owner: dict[str, str] = {}
        for index, symptom in enumerate(self.symptoms):
            where = f"symptoms[{index}] {symptom.id!r}"
            if symptom.body_part not in parts:
                problems.append(f"{where}: unknown body part {symptom.body_part!r}")
            for n, link in enumerate(symptom.departments):
                if link.kind not in kinds:
                    problems.append(
                        f"{where}: departments[{n}].kind: unknown department kind {link.kind!r}"
                    )
            for word in [*symptom.words, *(w.lower() for w in symptom.words_en)]:
                if word in owner and owner[word] != symptom.id:
                    problems.append(f"{where}: word {word!r} also belongs to {owner[word]!r}")
                owner.setdefault(word, symptom.id)
        for index, flag in enumerate(self.red_flags):
            where = f"red_flags[{index}] {flag.id!r}"
            for group in flag.all_of:
                if not group:
                    problems.append(f"{where}: all_of has an empty group")
                for symptom_id in group:
                    if symptom_id not in symptoms:
                        problems.append(f"{where}: unknown symptom {symptom_id!r}")
            for kind in flag.send_to:
                if kind not in kinds:
                    problems.append(f"{where}: send_to: unknown department kind {kind!r}")
        for index, rule in enumerate(self.age_rules):
            where = f"age_rules[{index}] {rule.id!r}"
            for kind in [rule.boost, *rule.defer_to]:
                if kind not in kinds:
                    problems.append(f"{where}: unknown department kind {kind!r}")
        if self.fallback not in kinds:
            problems.append(f"fallback: unknown department kind {self.fallback!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def __hash__(self) -> int:
        # By identity: one loaded file is one knowledge, whatever its lists hold.
        return id(self)

    @functools.cached_property
    def kind_by_id(self) -> dict[str, Kind]:
        return {kind.id: kind for kind in self.kinds}

    @functools.cached_property
    def symptom_by_id(self) -> dict[str, Symptom]:
        return {symptom.id: symptom for symptom in self.symptoms}

    def dictionary_words(self) -> set[str]:
        """Every Chinese word and part of a gapped word: jieba's user dictionary."""
        words: set[str] = set()
        for symptom in self.symptoms:
            for word in symptom.words:
                words.update(part for part in word.split(GAP) if _has_han(part))
        cue_lists = self.cues.model_dump().values()
        words.update(cue for cues in cue_lists for cue in cues if _has_han(cue))
        for kind in self.kinds:
            words.update(name for name in [kind.zh, *kind.names] if _has_han(name))
        return words


def _has_han(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def _unique(problems: list[str], section: str, ids: list[str]) -> set[str]:
    seen: set[str] = set()
    for index, entry_id in enumerate(ids):
        if entry_id in seen:
            problems.append(f"{section}[{index}]: id {entry_id!r} is used twice")
        seen.add(entry_id)
    return seen


def _where(raw: Any, loc: tuple[int | str, ...]) -> str:
    """`("symptoms", 12, "reason")` → `symptoms[12] 'headache' → reason`."""
    parts: list[str] = []
    node = raw
    for step in loc:
        child = None
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            child = node[step]
        elif isinstance(step, str) and isinstance(node, dict):
            child = node.get(step)
        if isinstance(step, int) and parts:
            parts[-1] += f"[{step}]"
            if isinstance(child, dict) and "id" in child:
                parts[-1] += f" {child['id']!r}"
        else:
            parts.append(str(step))
        node = child
    return " → ".join(parts)


def parse(raw: Any, *, source: str = "knowledge") -> Knowledge:
    """Checks already-read data; the error names each broken entry."""
    try:
        return Knowledge.model_validate(raw)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            loc = tuple(step for step in problem["loc"] if not str(step).startswith("function"))
            where = _where(raw, loc) if loc else "the file"
            message = str(problem["msg"]).removeprefix("Value error, ")
            lines.append(f"{where}: {message}" if loc else message)
        raise KnowledgeError(f"{source} is not valid:\n  " + "\n  ".join(lines)) from None


def load(path: Path = DEFAULT_PATH) -> Knowledge:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise KnowledgeError(f"{path.name} is not valid TOML: {error}") from None
    return parse(raw, source=path.name)


@functools.cache
def default() -> Knowledge:
    """The shipped knowledge, read once per process."""
    return load()
