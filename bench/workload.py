"""What the load generators send: who books which session, and the mixed release peak.

Bookings are spread the way a real crowd spreads: a session is chosen with a weight of its
free places (so sessions empty at about the same pace and most attempts succeed), and the
patient comes from a round-robin over the patients that session's department admits (sex
and age rules), so that every patient books about equally often and the per-patient limits
of the booking policy (active bookings, bookings per day and per 7 days) do not refuse them.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fixtures import BenchPatient
from loadgen import Request, build_request

HOST = "127.0.0.1"


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def get(path: str, key: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return build_request("GET", path, host=HOST, headers=headers)


def booking(key: str, patient_id: str, session_id: str) -> bytes:
    body = json.dumps({"patient_id": patient_id, "session_id": session_id}).encode()
    headers = {
        "Authorization": f"Bearer {key}",
        "Idempotency-Key": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    return build_request("POST", "/api/v1/appointments", host=HOST, headers=headers, body=body)


def cancellation(key: str, appointment_id: str) -> bytes:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return build_request(
        "POST",
        f"/api/v1/appointments/{appointment_id}/cancel",
        host=HOST,
        headers=headers,
        body=b"",
    )


def problem_code(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return "-"
    return str(data.get("code", "-")) if isinstance(data, dict) else "-"


class PatientPicker:
    """Round-robin over the patients each department admits. Patients form three groups
    (men, women, children); a department draws from the groups its rules admit, weighted
    by their size, and each group is a shuffled cycle."""

    def __init__(
        self,
        patients: list[BenchPatient],
        departments: list[dict[str, Any]],
        today: date,
        seed: int,
    ) -> None:
        rng = random.Random(seed)
        latest = today + timedelta(days=9)
        members: dict[str, list[BenchPatient]] = {"M": [], "F": [], "child": []}
        for patient in patients:
            members["child" if age_on(patient.birth_date, today) < 18 else patient.sex].append(
                patient
            )
        self.groups: dict[str, list[str]] = {}
        self.ages: dict[str, tuple[int, int]] = {}
        self.sex: dict[str, str | None] = {"M": "M", "F": "F", "child": None}
        for name, people in members.items():
            if not people:
                continue
            ids = [p.id for p in people]
            rng.shuffle(ids)
            self.groups[name] = ids
            self.ages[name] = (
                min(age_on(p.birth_date, today) for p in people),
                max(age_on(p.birth_date, latest) for p in people),
            )
        self.cursor = dict.fromkeys(self.groups, 0)
        self.admits: dict[str, list[str]] = {}
        self.weights: dict[str, list[int]] = {}
        for department in departments:
            admitted = [g for g in self.groups if self._admits(department, g)]
            if admitted:
                self.admits[department["id"]] = admitted
                self.weights[department["id"]] = [len(self.groups[g]) for g in admitted]
        self.rng = rng

    def _admits(self, department: dict[str, Any], group: str) -> bool:
        low, high = self.ages[group]
        rule = department.get("sex_restriction")
        if rule is not None and (group == "child" or self.sex[group] != rule):
            # Children are not sorted by sex here, so a sex-restricted clinic takes adults.
            return False
        if department.get("min_age_years") is not None and low < department["min_age_years"]:
            return False
        return department.get("max_age_years") is None or high <= department["max_age_years"]

    def admits_anyone(self, department_id: str) -> bool:
        return department_id in self.admits

    def next(self, department_id: str) -> str:
        group = self.rng.choices(self.admits[department_id], self.weights[department_id])[0]
        ids = self.groups[group]
        position = self.cursor[group]
        self.cursor[group] = (position + 1) % len(ids)
        return ids[position]


class PlacePicker:
    """Chooses sessions with a weight of their free places; a session that answered
    `sold_out` is dropped (until none is left: then all are offered again, and refused)."""

    def __init__(self, sessions: list[dict[str, Any]], seed: int) -> None:
        self.rng = random.Random(seed)
        self.sessions = {s["id"]: s for s in sessions}
        self.tokens = [s["id"] for s in sessions for _ in range(max(int(s["remaining"]), 1))]
        self.all_tokens = list(self.tokens)
        self.sold_out: set[str] = set()

    def next(self) -> dict[str, Any]:
        return self.sessions[self.rng.choice(self.tokens)]

    def mark_sold_out(self, session_id: str) -> None:
        if session_id in self.sold_out:
            return
        self.sold_out.add(session_id)
        self.tokens = [t for t in self.tokens if t != session_id] or self.all_tokens


@dataclass
class Tally:
    """Answers the hooks saw, warm-up included."""

    created: int = 0
    cancelled: int = 0
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, kind: str, label: str) -> None:
        counts = self.by_kind.setdefault(kind, {})
        counts[label] = counts.get(label, 0) + 1


class Bookings:
    """`POST /api/v1/appointments` spread over `sessions` (closed loop or open loop)."""

    def __init__(
        self,
        key: str,
        sessions: list[dict[str, Any]],
        patients: PatientPicker,
        *,
        seed: int,
        kind: str = "booking",
    ) -> None:
        self.key = key
        self.places = PlacePicker(sessions, seed)
        self.patients = patients
        self.kind = kind
        self.tally = Tally()
        # When the first `sold_out` answer arrived (time.perf_counter()).
        self.first_sold_out: float | None = None

    def __call__(self, _i: int) -> Request:
        session = self.places.next()
        patient = self.patients.next(session["department"]["id"])
        return Request(self.kind, booking(self.key, patient, session["id"]), session["id"])

    def on_answer(self, kind: str, tag: Any, status: int, body: bytes) -> None:
        label = str(status) if status < 300 else f"{status} {problem_code(body)}"
        self.tally.add(kind, label)
        if status == 201:
            self.tally.created += 1
        elif status == 409 and label.endswith(" sold_out"):
            if self.first_sold_out is None:
                self.first_sold_out = time.perf_counter()
            self.places.mark_sold_out(str(tag))


class Reads:
    """Half session lists of one department for the next days, half slot lists."""

    def __init__(
        self, key: str, today: date, departments: list[str], sessions: list[str], seed: int
    ) -> None:
        self.rng = random.Random(seed)
        window = f"date_from={today}&date_to={today + timedelta(7)}"
        self.lists = [get(f"/api/v1/sessions?department_id={d}&{window}", key) for d in departments]
        self.slots = [get(f"/api/v1/sessions/{s}/slots", key) for s in sessions]

    def __call__(self, i: int) -> Request:
        if i % 2 == 0:
            return Request("session_list", self.rng.choice(self.lists))
        return Request("slot_list", self.rng.choice(self.slots))


@dataclass(frozen=True)
class Mix:
    reads: float = 0.85
    bookings: float = 0.13
    # the rest: cancellations
    hot_share: float = 0.5  # of the booking attempts, in the measured window


class MixedPeak:
    """The release peak as a crowd makes it: mostly reads, some booking attempts (half of
    them, once the window opens, for the few hot sessions that sell out in it, the rest
    spread over all other open sessions) and a few cancellations of bookings made earlier
    in the run (of the spread sessions, so the hot sessions' winners can be counted
    exactly). The warm-up sends the same mix without the hot sessions, so their release
    falls inside the window and there are bookings to cancel when it opens."""

    def __init__(
        self,
        key: str,
        reads: Reads,
        hot: list[dict[str, Any]],
        spread: list[dict[str, Any]],
        patients: PatientPicker,
        *,
        mix: Mix,
        seed: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.key = key
        self.mix = mix
        self.rng = random.Random(seed)
        self.reads = reads
        hot_ids = {s["id"] for s in hot}
        self.hot = Bookings(key, hot, patients, seed=seed + 1, kind="booking_hot")
        self.spread = Bookings(
            key,
            [s for s in spread if s["id"] not in hot_ids],
            patients,
            seed=seed + 2,
            kind="booking",
        )
        self.tally = Tally()
        self.cancellable: list[str] = []
        self.now = now

    def request(self, i: int, *, hot: bool) -> Request:
        r = self.rng.random()
        if r < self.mix.reads:
            return self.reads(i)
        if r < self.mix.reads + self.mix.bookings:
            if hot and self.rng.random() < self.mix.hot_share:
                return self.hot(i)
            return self.spread(i)
        if not self.cancellable:
            return self.reads(i)
        index = self.rng.randrange(len(self.cancellable))
        self.cancellable[index], self.cancellable[-1] = (
            self.cancellable[-1],
            self.cancellable[index],
        )
        return Request("cancellation", cancellation(self.key, self.cancellable.pop()))

    def window(self, i: int) -> Request:
        return self.request(i, hot=True)

    def warmup(self, i: int) -> Request:
        return self.request(i, hot=False)

    def on_answer(self, kind: str, tag: Any, status: int, body: bytes) -> None:
        label = str(status) if status < 300 else f"{status} {problem_code(body)}"
        self.tally.add(kind, label)
        if kind == "booking_hot":
            self.hot.on_answer(kind, tag, status, body)
        elif kind == "booking":
            self.spread.on_answer(kind, tag, status, body)
            if status == 201:
                answer = json.loads(body)
                deadline = answer.get("cancellation_deadline")
                # Only what the patient may still cancel for a while (not today's visits).
                if deadline and datetime.fromisoformat(deadline) > self.now() + timedelta(
                    minutes=5
                ):
                    self.cancellable.append(str(answer["id"]))
        elif kind == "cancellation" and status == 200:
            self.tally.cancelled += 1

    @property
    def created(self) -> int:
        return self.hot.tally.created + self.spread.tally.created
