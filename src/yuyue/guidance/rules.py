"""From a patient's words to department kinds, or to an emergency. Pure: the knowledge and
the segmenter come in as values, nothing is read or written.

1. The text is normalised and cut into words by jieba (`segment`), then into clauses (at
   punctuation) and, inside a clause, into scopes (at 但是, 就是, but …: a negation does
   not reach past them).
2. Each symptom word is found as one word or consecutive words (头疼, chest pain), and a
   gapped word `A*B` as A then B within a few characters of the same clause (嘴也歪).
3. Each finding is PRESENT, PAST (以前有过…, …现在没有了, rehabilitation after a stroke) or
   HYPOTHETICAL (如果出现…), or dropped when negated (不发烧, 没有胸痛, 头不疼).
4. Red flags look at PRESENT findings only; the first that holds is the answer.
5. Otherwise each finding adds its links' weights to its kinds (half for PAST and
   HYPOTHETICAL), kinds that cannot see this patient (sex, age) are dropped, and the age
   rules put paediatrics first for children; the matched words are the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from yuyue.guidance.knowledge import GAP, Kind, Knowledge, Link, Text
from yuyue.guidance.segment import Segmenter, Token, normalise

# How far apart the parts of a gapped word may be, in characters, and how far back a
# negation reaches, in words.
MAX_GAP_CHARS = 4
NEGATION_REACH = 5
MAX_PHRASE_TOKENS = 8
MAX_KINDS = 5
PAST_FACTOR = 0.5

_PUNCTUATION = frozenset(',.;!?:，。；！？：\n\r\t…~～()（）[]【】"“”')
_CN_DIGITS = {
    digit: value
    for value, digits in enumerate(["", "一", "二两", "三", "四", "五", "六", "七", "八", "九"])
    for digit in digits
}


class Status(StrEnum):
    PRESENT = "present"
    PAST = "past"
    HYPOTHETICAL = "hypothetical"
    NEGATED = "negated"


class Action(StrEnum):
    CALL_120 = "call_120"
    EMERGENCY_DEPARTMENT = "emergency_department"
    CRISIS_LINE = "crisis_line"


@dataclass(frozen=True)
class Finding:
    symptom_id: str
    words: tuple[str, ...]
    status: Status


@dataclass(frozen=True)
class Emergency:
    flag_id: str
    action: Action
    kinds: tuple[str, ...]
    words: tuple[str, ...]
    advice: Text


@dataclass(frozen=True)
class KindAdvice:
    """A suggested kind: its score, the patient's words behind it and why (None: nothing
    was recognised and this is the place to start)."""

    kind: str
    score: float
    words: tuple[str, ...]
    why: Text | None


@dataclass(frozen=True)
class Analysis:
    findings: tuple[Finding, ...]
    emergency: Emergency | None
    kinds: tuple[KindAdvice, ...]
    age: int | None
    child: bool

    @property
    def recognised(self) -> bool:
        return any(f.status is not Status.NEGATED for f in self.findings)


# --- matching --------------------------------------------------------------------------------


def _compact(word: str) -> str:
    return "".join(normalise(word).split())


@dataclass(frozen=True)
class _Pattern:
    symptom_id: str
    parts: tuple[str, ...]


@dataclass
class _Matcher:
    patterns: list[_Pattern]
    phrases: set[str]
    cues: dict[str, frozenset[str]]


_MATCHERS: dict[int, tuple[Knowledge, _Matcher]] = {}


def _matcher(knowledge: Knowledge) -> _Matcher:
    cached = _MATCHERS.get(id(knowledge))
    if cached is not None and cached[0] is knowledge:
        return cached[1]
    patterns: list[_Pattern] = []
    for symptom in knowledge.symptoms:
        for word in [*symptom.words, *symptom.words_en]:
            parts = tuple(_compact(part) for part in word.split(GAP))
            patterns.append(_Pattern(symptom.id, parts))
    phrases = {part for pattern in patterns for part in pattern.parts}
    cues = {
        name: frozenset(_compact(cue) for cue in values)
        for name, values in knowledge.cues.model_dump().items()
    }
    built = _Matcher(patterns, phrases, cues)
    _MATCHERS[id(knowledge)] = (knowledge, built)
    return built


@dataclass
class _Text:
    """The cut text: words, and for each word its clause and scope numbers."""

    tokens: list[Token]
    clause: list[int] = field(default_factory=list)
    scope: list[int] = field(default_factory=list)
    punctuation: list[bool] = field(default_factory=list)


def _cut(segmenter: Segmenter, text: str, breakers: frozenset[str]) -> _Text:
    cut = _Text(segmenter.tokens(text))
    clause = scope = 0
    for token in cut.tokens:
        is_punctuation = all(ch in _PUNCTUATION for ch in token.text)
        if is_punctuation:
            clause += 1
            scope += 1
        elif token.text in breakers:
            scope += 1
        cut.clause.append(clause)
        cut.scope.append(scope)
        cut.punctuation.append(is_punctuation)
    return cut


def _occurrences(cut: _Text, phrases: set[str]) -> dict[str, list[tuple[int, int]]]:
    """Where each phrase is one word or consecutive words: phrase → [(first, past_last)]."""
    found: dict[str, list[tuple[int, int]]] = {}
    tokens = cut.tokens
    for first in range(len(tokens)):
        if cut.punctuation[first]:
            continue
        joined = ""
        for last in range(first, min(len(tokens), first + MAX_PHRASE_TOKENS)):
            if cut.punctuation[last]:
                break
            joined += tokens[last].text
            if joined in phrases:
                found.setdefault(joined, []).append((first, last + 1))
    return found


def _has_cue(tokens: Sequence[Token], cues: frozenset[str]) -> bool:
    """Whether one word, or up to four consecutive words, make a cue."""
    for first in range(len(tokens)):
        joined = ""
        for token in tokens[first : first + 4]:
            joined += token.text
            if joined in cues:
                return True
    return False


def _chains(
    cut: _Text, parts: tuple[str, ...], found: dict[str, list[tuple[int, int]]]
) -> list[tuple[int, int, list[int]]]:
    """Each place the parts occur in order within one clause, close together:
    (first word, past the last word, the words in the gaps)."""
    chains: list[tuple[int, int, list[int]]] = [
        (first, end, []) for first, end in found.get(parts[0], [])
    ]
    for part in parts[1:]:
        longer: list[tuple[int, int, list[int]]] = []
        for first, end, gaps in chains:
            for next_first, next_end in found.get(part, []):
                if next_first < end or cut.clause[next_first] != cut.clause[first]:
                    continue
                distance = cut.tokens[next_first].start - cut.tokens[end - 1].end
                if distance <= MAX_GAP_CHARS:
                    longer.append((first, next_end, [*gaps, *range(end, next_first)]))
        chains = longer
    return chains


def _status(cut: _Text, first: int, end: int, gaps: list[int], m: _Matcher) -> Status:
    tokens = cut.tokens
    scope_start = first
    while scope_start > 0 and cut.scope[scope_start - 1] == cut.scope[first]:
        scope_start -= 1
    before = tokens[max(scope_start, first - NEGATION_REACH) : first]
    if _has_cue(before, m.cues["negation"]) or _has_cue(
        [tokens[i] for i in gaps], m.cues["negation"]
    ):
        return Status.NEGATED
    clause_start = first
    while clause_start > 0 and cut.clause[clause_start - 1] == cut.clause[first]:
        clause_start -= 1
    clause_end = end
    while clause_end < len(tokens) and cut.clause[clause_end] == cut.clause[first]:
        clause_end += 1
    clause_tokens = tokens[clause_start:clause_end]
    if _has_cue(tokens[clause_start:first], m.cues["hypothetical"]):
        return Status.HYPOTHETICAL
    acute = _has_cue(clause_tokens, m.cues["acute"])
    if not acute and _has_cue(tokens[clause_start:first], m.cues["history"]):
        return Status.PAST
    # After the symptom, to the end of the next clause: 胸痛，现在没有了.
    after_end = clause_end + 1
    while after_end < len(tokens) and not cut.punctuation[after_end]:
        after_end += 1
    if _has_cue(tokens[end:after_end], m.cues["resolved"]):
        return Status.PAST
    if _has_cue(tokens, m.cues["recovery"]):
        return Status.PAST
    return Status.PRESENT


_RANK = {Status.PRESENT: 0, Status.PAST: 1, Status.HYPOTHETICAL: 2, Status.NEGATED: 3}


def find_symptoms(knowledge: Knowledge, segmenter: Segmenter, text: str) -> list[Finding]:
    """Every symptom the text speaks of, in the knowledge's order, with its status (the
    most current one when it is mentioned several times) and the words as typed."""
    m = _matcher(knowledge)
    plain = normalise(text)
    cut = _cut(segmenter, plain, m.cues["breakers"])
    found = _occurrences(cut, m.phrases)
    best: dict[str, tuple[Status, list[str]]] = {}
    for pattern in m.patterns:
        for first, end, gaps in _chains(cut, pattern.parts, found):
            status = _status(cut, first, end, gaps, m)
            surface = text[cut.tokens[first].start : cut.tokens[end - 1].end]
            current = best.get(pattern.symptom_id)
            if current is None or _RANK[status] < _RANK[current[0]]:
                best[pattern.symptom_id] = (status, [surface])
            elif status is current[0] and surface not in current[1]:
                current[1].append(surface)
    return [
        Finding(symptom.id, tuple(best[symptom.id][1]), best[symptom.id][0])
        for symptom in knowledge.symptoms
        if symptom.id in best
    ]


# --- age ------------------------------------------------------------------------------------


def _cn_number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if text.startswith("十"):
        return 10 + _CN_DIGITS.get(text[1:], 0)
    if text.endswith("十"):
        return _CN_DIGITS.get(text[:-1], 0) * 10
    if "十" in text:
        tens, _, ones = text.partition("十")
        return _CN_DIGITS.get(tens, 0) * 10 + _CN_DIGITS.get(ones, 0)
    return _CN_DIGITS.get(text)


_AGE_PATTERNS = (
    re.compile(r"(\d{1,3}|[一二两三四五六七八九十]{1,3})\s*(?:多|来)?\s*(?:周岁|岁)"),
    re.compile(r"(\d{1,3})[\s-]*(?:years?|yrs?)[\s-]*old"),
)
_MONTHS_OLD = re.compile(
    r"\d{1,2}\s*个?月(?:大|的(?:宝宝|孩子|婴儿|小孩))|\d{1,2}\s*months?[\s-]*old"
)


def age_in_text(text: str) -> int | None:
    """An age the patient wrote (3岁宝宝, 70多岁, 8个月大, 5 years old), if any."""
    plain = normalise(text)
    if _MONTHS_OLD.search(plain):
        return 0
    for pattern in _AGE_PATTERNS:
        match = pattern.search(plain)
        if match:
            years = _cn_number(match.group(1))
            if years is not None and years <= 130:
                return years
    return None


def sees(kind: Kind, *, age: int | None, sex: str | None) -> bool:
    """Whether a kind of department sees this patient at all (unknowns pass)."""
    if sex is not None and kind.sex is not None and kind.sex != sex:
        return False
    if age is not None and kind.min_age is not None and age < kind.min_age:
        return False
    return not (age is not None and kind.max_age is not None and age > kind.max_age)


def accepts(
    *,
    min_age: int | None,
    max_age: int | None,
    sex_restriction: str | None,
    age: int | None,
    sex: str | None,
) -> bool:
    """A hospital department's own age and sex rule (the same reading as booking's: full
    years, both ends inclusive); a patient whose age or sex is unknown is not refused."""
    if age is not None and min_age is not None and age < min_age:
        return False
    if age is not None and max_age is not None and age > max_age:
        return False
    return not (sex is not None and sex_restriction is not None and sex != sex_restriction)


# --- the analysis --------------------------------------------------------------------------


def _emergency(
    knowledge: Knowledge, findings: list[Finding], *, age: int | None, sex: str | None
) -> Emergency | None:
    present = {f.symptom_id: f for f in findings if f.status is Status.PRESENT}
    for flag in knowledge.red_flags:
        matched: list[str] = []
        for group in flag.all_of:
            hits = [present[s] for s in group if s in present]
            if not hits:
                break
            matched.extend(word for hit in hits for word in hit.words)
        else:
            kinds = tuple(
                k for k in flag.send_to if sees(knowledge.kind_by_id[k], age=age, sex=sex)
            )
            return Emergency(
                flag.id,
                Action(flag.action),
                kinds or tuple(flag.send_to[:1]),
                tuple(dict.fromkeys(matched)),
                flag.advice,
            )
    return None


def _children_mentioned(knowledge: Knowledge, segmenter: Segmenter, text: str) -> bool:
    m = _matcher(knowledge)
    cut = _cut(segmenter, normalise(text), frozenset())
    return _has_cue(cut.tokens, m.cues["children"])


def analyse(
    knowledge: Knowledge,
    segmenter: Segmenter,
    text: str,
    *,
    age: int | None = None,
    sex: str | None = None,
) -> Analysis:
    """The answer for one complaint: an emergency, or kinds in order with their reasons."""
    findings = find_symptoms(knowledge, segmenter, text)
    if age is None:
        age = age_in_text(text)
    child = age is None and _children_mentioned(knowledge, segmenter, text)
    emergency = _emergency(knowledge, findings, age=age, sex=sex)
    if emergency is not None:
        return Analysis(tuple(findings), emergency, (), age, child)

    scores: dict[str, float] = {}
    words: dict[str, list[str]] = {}
    why: dict[str, tuple[float, Text]] = {}
    for finding in findings:
        if finding.status is Status.NEGATED:
            continue
        symptom = knowledge.symptom_by_id[finding.symptom_id]
        if sex is not None and symptom.sex is not None and symptom.sex != sex:
            continue
        factor = 1.0 if finding.status is Status.PRESENT else PAST_FACTOR
        for link in symptom.departments:
            if not _link_applies(link, age):
                continue
            gained = link.weight * factor
            scores[link.kind] = scores.get(link.kind, 0.0) + gained
            words.setdefault(link.kind, []).extend(
                w for w in finding.words if w not in words.get(link.kind, [])
            )
            if gained > why.get(link.kind, (0.0, symptom.reason))[0]:
                why[link.kind] = (gained, symptom.reason)
    reasons: dict[str, Text | None] = {kind: entry[1] for kind, entry in why.items()}
    scores = {
        kind: score
        for kind, score in scores.items()
        if sees(knowledge.kind_by_id[kind], age=age, sex=sex)
    }
    all_words = tuple(dict.fromkeys(w for kind in scores for w in words.get(kind, [])))
    for rule in knowledge.age_rules:
        applies = rule.covers(age) if age is not None else (rule.children_in_text and child)
        if not applies or not sees(knowledge.kind_by_id[rule.boost], age=age, sex=sex):
            continue
        ranked = _ranked(knowledge, scores)
        if rule.first:
            top = scores[ranked[0]] if ranked else 0.0
            if ranked and ranked[0] in rule.defer_to:
                scores[rule.boost] = max(scores.get(rule.boost, 0.0), top - 1e-6)
            else:
                scores[rule.boost] = top + rule.weight
            words[rule.boost] = list(all_words)
            reasons[rule.boost] = rule.reason
        elif scores:
            scores[rule.boost] = scores.get(rule.boost, 0.0) + rule.weight
            reasons.setdefault(rule.boost, rule.reason)
            words.setdefault(rule.boost, list(all_words))
    if not scores:
        return Analysis(
            tuple(findings), None, (KindAdvice(knowledge.fallback, 0.0, (), None),), age, child
        )
    kinds = tuple(
        KindAdvice(kind, round(scores[kind], 3), tuple(words.get(kind, ())), reasons.get(kind))
        for kind in _ranked(knowledge, scores)[:MAX_KINDS]
    )
    return Analysis(tuple(findings), None, kinds, age, child)


def _link_applies(link: Link, age: int | None) -> bool:
    """A link with an age range counts only when the age is known and inside it."""
    if link.min_age is None and link.max_age is None:
        return True
    return (
        age is not None
        and (link.min_age is None or age >= link.min_age)
        and (link.max_age is None or age <= link.max_age)
    )


def _ranked(knowledge: Knowledge, scores: dict[str, float]) -> list[str]:
    order = {kind.id: index for index, kind in enumerate(knowledge.kinds)}
    return sorted(scores, key=lambda kind: (-scores[kind], order[kind]))


# --- the hospital's departments -------------------------------------------------------------


def kind_of_department(knowledge: Knowledge, *, name: str, name_en: str = "") -> str | None:
    """The kind a hospital department is, from its name: the longest of the kinds' name
    words it contains (心血管内科 is cardiology, not 内科), then the English name."""
    best: tuple[int, str] | None = None
    for kind in knowledge.kinds:
        for word in kind.names:
            if word in name and (best is None or len(word) > best[0]):
                best = (len(word), kind.id)
    if best is not None:
        return best[1]
    english = name_en.lower()
    for kind in knowledge.kinds:
        for word in kind.names_en:
            if english and re.search(rf"\b{re.escape(word.lower())}\b", english):
                return kind.id
    return None


def words_of(analysis: Analysis) -> Iterable[str]:
    for finding in analysis.findings:
        if finding.status is not Status.NEGATED:
            yield from finding.words


def names_mentioned(segmenter: Segmenter, text: str, names: Iterable[str]) -> list[str]:
    """The department names the patient wrote as words of their own (想挂心内科), in the
    order written; a negated mention (不想看外科) does not count."""
    wanted = {normalise(name): name for name in names if name}
    cut = segmenter.tokens(normalise(text))
    found: list[str] = []
    for index, token in enumerate(cut):
        name = wanted.get(token.text)
        before = "".join(t.text for t in cut[max(0, index - 2) : index])
        if name and name not in found and "不" not in before and "没" not in before:
            found.append(name)
    return found
