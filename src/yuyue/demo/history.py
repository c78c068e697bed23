"""Past weeks for the demo hospital, so that every report and the quota advice show something
real: clinic sessions before today with appointments in the states a past day leaves
(completed, no-show, cancelled, expired unpaid holds), check-in, call and end times, waitlist
joins (some of them given a returned place), payments for the levels with a fee, and the
booking attempts the booking POST would have counted (booked, and for sessions that sold
out the refusals that kept coming after the last place went).

Generated, not recorded: each session's figures come from a random generator seeded with the
session's template and day, so the history is the same on every machine. Departments and
doctors differ on purpose (some sell out within the hour, some sit half empty, some lose many
patients to no-shows, some have crowded windows) so that the advice has something to say.

Idempotent: a past day's session is created only where its template has none yet, so a
second run on the same day writes nothing, and a run days later fills only the days that
were never there (a day that was in the future at the last run keeps what really happened).
Written in bulk (prepared rows, one multi-row insert per table and chunk): thirteen weeks of
the 65-doctor demo hospital (about 2,900 sessions and 60,000 appointments) take about fifteen
seconds on SQLite, and the first `seed-demo` then rebuilds the reports' summary rows for
those days."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import demand as booking_demand
from yuyue.booking.demand import BOOKED, QUARTER, SOLD_OUT, CounterKey
from yuyue.booking.models import Appointment
from yuyue.booking.waitlist.models import WaitlistEntry
from yuyue.kit.crypto import FieldCipher
from yuyue.kit.localtime import local_instant
from yuyue.patients import service as patient_service
from yuyue.patients.rules import IdType
from yuyue.payments.models import PaymentOrder
from yuyue.scheduling import rules as scheduling_rules
from yuyue.scheduling import service as scheduling_service
from yuyue.scheduling.models import (
    ClinicSession,
    Department,
    Doctor,
    RegistrationLevel,
    ScheduleTemplate,
    SlotPool,
    TimeSlot,
)
from yuyue.visits.models import Visit

# Three months: the reports show a season (the quota advice reads the last four whole
# weeks, the reports default to 30 days); each week is about 4,600 appointments to write on
# the first `seed-demo` (the whole first seed takes about half a minute).
HISTORY_WEEKS = 13
HISTORY_PATIENTS = 160
CREATED_BY = "demo-history"
_CHUNK = 2000
_REMOTE_CHANNELS = (
    ("app", 35),
    ("wechat", 35),
    ("alipay", 15),
    ("web", 5),
    ("phone", 5),
    ("community", 5),
)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红梅鹏飞建国志宇浩然欣怡子涵梓轩"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True, slots=True)
class HistorySummary:
    days: tuple[date, date] | None
    sessions: int
    appointments: int

    def __str__(self) -> str:
        if self.days is None or not self.sessions:
            return "history already present"
        first, last = self.days
        return (
            f"history {first.isoformat()}..{last.isoformat()}: {self.sessions} past sessions, "
            f"{self.appointments} appointments"
        )


def _resident_id(number: int) -> str:
    """A syntactically valid resident ID (GB 11643 check character) that belongs to nobody:
    Beijing Dongcheng, born 1950-1999 on a day from the number, sequence from the number."""
    rng = random.Random(f"demo-history-patient-{number}")
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
    first17 = f"110101{born:%Y%m%d}{900 + number % 100:03d}"
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + _ID_CHECK[total % 11]


async def _patients(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    cipher: FieldCipher,
    today: date,
    now: datetime,
) -> list[uuid.UUID]:
    """The history's own patients (never the demo's six, whose booking limits the present
    day's demo relies on): found again by identity, created once."""
    found: list[uuid.UUID] = []
    for number in range(HISTORY_PATIENTS):
        id_number = _resident_id(number)
        patient = await patient_service.find_by_identity(
            session,
            hospital_id=hospital_id,
            cipher=cipher,
            id_type=IdType.RESIDENT_ID,
            id_number=id_number,
            today=today,
        )
        if patient is None:
            rng = random.Random(f"demo-history-name-{number}")
            name = rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2))))
            phone = f"1390000{number:04d}"
            patient = await patient_service.register_patient(
                session,
                hospital_id=hospital_id,
                cipher=cipher,
                name=name,
                id_type=IdType.RESIDENT_ID,
                id_number=id_number,
                phone=phone,
                account_phone=None,
                birth_date=None,
                sex=None,
                account_patients_max=5,
                today=today,
                now=now,
            )
        found.append(patient.id)
    return found


def _factor(key: str, low: float, high: float) -> float:
    return random.Random(key).uniform(low, high)


@dataclass
class _Rows:
    sessions: list[dict[str, Any]]
    slots: list[dict[str, Any]]
    pools: list[dict[str, Any]]
    appointments: list[dict[str, Any]]
    visits: list[dict[str, Any]]
    waitlist: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    # Booking attempts as the booking POST counts them (booking.demand), written through
    # booking's own additive upsert.
    attempts: dict[CounterKey, int] = field(default_factory=dict)

    def attempt(
        self,
        hospital_id: uuid.UUID,
        session_id: uuid.UUID,
        channel: str,
        outcome: str,
        at: datetime,
    ) -> None:
        key = (hospital_id.int, session_id.int, channel, int(at.timestamp()) // QUARTER, outcome)
        self.attempts[key] = self.attempts.get(key, 0) + 1


def _channel(rng: random.Random) -> str:
    return rng.choices([c for c, _ in _REMOTE_CHANNELS], [w for _, w in _REMOTE_CHANNELS])[0]


def _provider(channel: str) -> str:
    return "alipay" if channel == "alipay" else "wechatpay"


def _session_history(
    rows: _Rows,
    *,
    hospital_id: uuid.UUID,
    template: ScheduleTemplate,
    department_code: str,
    doctor_code: str | None,
    day: date,
    fee_fen: int,
    ratios: dict[str, int],
    release: tuple[int, time],
    timezone: str,
    patients: Sequence[uuid.UUID],
) -> None:
    rng = random.Random(f"{template.id}-{day.isoformat()}")
    released_at = local_instant(day - timedelta(days=release[0]), release[1], timezone)
    session_id = uuid.uuid4()
    start = local_instant(day, template.start_time, timezone)
    rows.sessions.append(
        {
            "id": session_id,
            "hospital_id": hospital_id,
            "department_id": template.department_id,
            "doctor_id": template.doctor_id,
            "template_id": template.id,
            "level_id": template.level_id,
            "date": day,
            "period": template.period,
            "start_time": template.start_time,
            "end_time": template.end_time,
            "slot_minutes": template.slot_minutes,
            "capacity": template.capacity,
            "fee_fen": fee_fen,
            "room": template.room,
            "status": "open",
            "is_extra": False,
            "created_at": released_at - timedelta(days=1),
        }
    )
    # Places, in number order: (pool id, slot id, slot ordinal, slot start, pool, number).
    places: list[tuple[uuid.UUID, uuid.UUID, int, time, str, int]] = []
    pool_rows: list[dict[str, Any]] = []
    for plan in scheduling_rules.plan_session(
        start=template.start_time,
        end=template.end_time,
        capacity=template.capacity,
        slot_minutes=template.slot_minutes,
        ratios=ratios,
    ):
        slot_id = uuid.uuid4()
        rows.slots.append(
            {
                "id": slot_id,
                "hospital_id": hospital_id,
                "session_id": session_id,
                "ordinal": plan.ordinal,
                "start_time": plan.start,
                "end_time": plan.end,
            }
        )
        for pool, capacity, first in plan.pools:
            pool_id = uuid.uuid4()
            pool_rows.append(
                {
                    "id": pool_id,
                    "hospital_id": hospital_id,
                    "session_id": session_id,
                    "slot_id": slot_id,
                    "slot_ordinal": plan.ordinal,
                    "slot_start": plan.start,
                    "slot_end": plan.end,
                    "pool": pool,
                    "capacity": capacity,
                    "taken": 0,
                    "first_number": first,
                    "is_open": True,
                    "is_extra": False,
                }
            )
            places.extend(
                (pool_id, slot_id, plan.ordinal, plan.start, pool, first + n)
                for n in range(capacity)
            )
    taken: dict[uuid.UUID, int] = {}
    local = (scheduling_rules.ONSITE, scheduling_rules.RESERVED)
    remote_places = [p for p in places if p[4] not in local]
    local_places = [p for p in places if p[4] in local]

    # Demand: the department's and the doctor's pull, the weekday, and the day's luck.
    pull = _factor(f"pull-{department_code}", 0.45, 1.35) * (
        _factor(f"pull-{doctor_code}", 0.7, 1.6) if doctor_code else 1.0
    )
    weekday = (1.25, 1.1, 1.0, 1.0, 0.95, 0.8, 0.7)[day.weekday()]
    demand = len(remote_places) * pull * weekday * rng.uniform(0.8, 1.2)
    walk_ins = (
        len(local_places) * _factor(f"walk-{department_code}", 0.3, 1.2) * rng.uniform(0.8, 1.15)
    )
    no_show_rate = _factor(f"no-show-{department_code}", 0.02, 0.24)
    sold_out = demand >= len(remote_places) > 0
    booked = min(len(remote_places), round(demand))
    # Strong demand sells out fast: half again the places in about two hours, twice the
    # places within half an hour; just enough demand takes most of the week.
    window = timedelta(days=max(1, release[0]) - 1, hours=8)
    if sold_out and demand > 0:
        window = min(window, timedelta(minutes=24 * 60 * (len(remote_places) / demand) ** 6))
    people = iter(rng.sample(list(patients), min(len(patients), len(places) + 40)))

    def appointment(
        place: tuple[uuid.UUID, uuid.UUID, int, time, str, int],
        *,
        channel: str,
        status: str,
        made: datetime,
        cancelled: datetime | None = None,
    ) -> uuid.UUID | None:
        patient = next(people, None)
        if patient is None:
            return None
        appointment_id = uuid.uuid4()
        expired = status == "expired"
        rows.appointments.append(
            {
                "id": appointment_id,
                "hospital_id": hospital_id,
                "patient_id": patient,
                "session_id": session_id,
                "slot_id": place[1],
                "pool_id": place[0],
                "department_id": template.department_id,
                "doctor_id": template.doctor_id,
                "visit_date": day,
                "channel": channel,
                "status": status,
                "sequence_number": place[5],
                "fee_fen": fee_fen,
                "voucher_code": "H" + uuid.UUID(int=rng.getrandbits(128)).hex[:11].upper(),
                "hold_expires_at": made + timedelta(minutes=15) if fee_fen or expired else None,
                "booked_at": None if expired else made,
                "cancelled_at": cancelled,
                "cancel_reason": "patient" if cancelled else None,
                "paid_fen": fee_fen if fee_fen and status in ("completed", "no_show") else None,
                "payment_provider": _provider(channel)
                if fee_fen and status in ("completed", "no_show") and channel not in local
                else None,
                "refund_state": "none",
                "created_by": CREATED_BY,
                "created_at": made,
                "updated_at": cancelled or made,
            }
        )
        if status not in ("cancelled", "expired"):
            taken[place[0]] = taken.get(place[0], 0) + 1
        if status == "completed":
            slot_start = local_instant(day, place[3], timezone)
            checked_in = slot_start - timedelta(minutes=rng.randint(0, 25))
            called = checked_in + timedelta(minutes=rng.randint(3, 15 + 25 * place[2] // 4))
            finished = called + timedelta(minutes=rng.randint(4, 15))
            rows.visits.append(
                {
                    "id": uuid.uuid4(),
                    "hospital_id": hospital_id,
                    "appointment_id": appointment_id,
                    "session_id": session_id,
                    "patient_id": patient,
                    "department_id": template.department_id,
                    "doctor_id": template.doctor_id,
                    "visit_date": day,
                    "queue_number": place[5],
                    "slot_ordinal": place[2],
                    "slot_start": place[3],
                    "walk_in": channel in ("window", "kiosk"),
                    "status": "finished",
                    "batch": place[2],
                    "late": False,
                    "queued_at": checked_in,
                    "checked_in_at": checked_in,
                    "checked_in_by": CREATED_BY,
                    "called_at": called,
                    "call_count": 1,
                    "skip_count": 0,
                    "started_at": called,
                    "finished_at": finished,
                    "return_visit_needed": False,
                    "updated_at": finished,
                }
            )
        if fee_fen and status in ("completed", "no_show") and channel not in ("window", "kiosk"):
            rows.payments.append(
                {
                    "id": uuid.uuid4(),
                    "hospital_id": hospital_id,
                    "appointment_id": appointment_id,
                    "patient_id": patient,
                    "amount_fen": fee_fen,
                    "currency": "CNY",
                    "provider": _provider(channel),
                    "method": "jsapi",
                    "out_trade_no": "H" + uuid.UUID(int=rng.getrandbits(128)).hex[:30],
                    "state": "paid",
                    "paid_at": made + timedelta(minutes=1),
                    "created_by": CREATED_BY,
                    "created_at": made,
                    "updated_at": made + timedelta(minutes=1),
                }
            )
        return appointment_id

    def outcome() -> str:
        return "no_show" if rng.random() < no_show_rate else "completed"

    spread = sorted(rng.random() ** 2 for _ in range(booked))  # most requests come early
    unmet = round((demand - len(remote_places)) * 0.6) if sold_out else 0
    joins = min(unmet, 25)
    waiting = [
        released_at + window + timedelta(minutes=rng.randint(1, 3 * 24 * 60)) for _ in range(joins)
    ]
    waiting.sort()
    last_booked = released_at
    for place, share in zip(remote_places[:booked], spread, strict=False):
        made = released_at + window * share
        channel = _channel(rng)
        rows.attempt(hospital_id, session_id, channel, BOOKED, made)
        last_booked = max(last_booked, made)
        if rng.random() < 0.03:  # a second booking the same day, or the same one twice
            code = "limit_exceeded" if rng.random() < 0.6 else "already_booked"
            rows.attempt(hospital_id, session_id, _channel(rng), code, made)
        if fee_fen and rng.random() < 0.05:
            appointment(place, channel=channel, status="expired", made=made)
            made += timedelta(minutes=16)  # the place came back and went again
        if rng.random() < 0.08:
            cancelled = made + (start - made) * rng.uniform(0.1, 0.9)
            appointment(place, channel=channel, status="cancelled", made=made, cancelled=cancelled)
            if waiting and waiting[0] < cancelled:
                # The returned place went to the first in the waitlist.
                joined = waiting.pop(0)
                taker = _channel(rng)
                offered = cancelled + timedelta(minutes=rng.randint(1, 20))
                new = appointment(place, channel=taker, status=outcome(), made=offered)
                if new is not None:
                    rows.waitlist.append(
                        _waitlist(
                            rows.appointments[-1]["patient_id"],
                            hospital_id=hospital_id,
                            session_id=session_id,
                            channel=taker,
                            status="accepted",
                            joined=joined,
                            until=offered,
                            offer=new,
                        )
                    )
            continue
        appointment(place, channel=channel, status=outcome(), made=made)
    for joined in waiting:
        patient = next(people, None)
        if patient is not None:
            rows.waitlist.append(
                _waitlist(
                    patient,
                    hospital_id=hospital_id,
                    session_id=session_id,
                    channel=_channel(rng),
                    status="closed",
                    joined=joined,
                    until=start - timedelta(hours=2),
                    offer=None,
                )
            )
    if sold_out:
        # Refused attempts: those who came after the last place went try again and again,
        # most within the hour after the sell-out (an 08:00 release sells out in minutes),
        # some later hoping for a returned place; the eager ask before the release opens.
        for _ in range(round((demand - len(remote_places)) * rng.uniform(1.5, 3.0))):
            late = timedelta(minutes=rng.expovariate(1 / 25))
            if rng.random() < 0.15:
                late = timedelta(hours=rng.uniform(1, 48))
            rows.attempt(
                hospital_id, session_id, _channel(rng), SOLD_OUT, min(last_booked + late, start)
            )
        for _ in range(round(demand * rng.uniform(0.02, 0.08))):
            early = timedelta(minutes=rng.uniform(1, 30))
            code = "outside_release_window"
            rows.attempt(hospital_id, session_id, _channel(rng), code, released_at - early)
    morning = local_instant(day, time(7, 0), timezone)
    for place in local_places[: min(len(local_places), round(walk_ins))]:
        made = morning + (start + timedelta(hours=1) - morning) * rng.random()
        appointment(
            place,
            channel="kiosk" if rng.random() < 0.25 else "window",
            status="completed",
            made=made,
        )
    for row in pool_rows:
        row["taken"] = taken.get(row["id"], 0)
    rows.pools.extend(pool_rows)


def _waitlist(
    patient: uuid.UUID,
    *,
    hospital_id: uuid.UUID,
    session_id: uuid.UUID,
    channel: str,
    status: str,
    joined: datetime,
    until: datetime,
    offer: uuid.UUID | None,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "hospital_id": hospital_id,
        "session_id": session_id,
        "patient_id": patient,
        "channel": channel,
        "status": status,
        "reason": None if status == "accepted" else "session_closed",
        "offer_appointment_id": offer,
        "offer_expires_at": None,
        "created_by": CREATED_BY,
        "created_at": joined,
        "updated_at": max(joined, until),
    }


async def seed_history(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    cipher: FieldCipher,
    today: date,
    now: datetime,
    weeks: int = HISTORY_WEEKS,
) -> HistorySummary:
    """Fills the `weeks` before `today` with past sessions where their templates have none."""
    first = today - timedelta(days=7 * weeks)
    last = today - timedelta(days=1)
    templates = list(
        (
            await session.scalars(
                select(ScheduleTemplate).where(
                    ScheduleTemplate.hospital_id == hospital_id,
                    ScheduleTemplate.active.is_(True),
                )
            )
        ).all()
    )
    existing = set(
        (
            await session.execute(
                select(ClinicSession.template_id, ClinicSession.date).where(
                    ClinicSession.hospital_id == hospital_id,
                    ClinicSession.date >= first,
                    ClinicSession.date <= last,
                )
            )
        ).all()
    )
    due = [
        (template, day)
        for offset in range((last - first).days + 1)
        for day in [first + timedelta(days=offset)]
        for template in templates
        if template.weekday == day.weekday()
        and (template.valid_from is None or template.valid_from <= day)
        and (template.valid_until is None or day <= template.valid_until)
        and (template.id, day) not in existing
    ]
    if not due:
        return HistorySummary(None, 0, 0)

    timezone = await scheduling_service.hospital_timezone(session, hospital_id)
    fees = dict(
        (
            await session.execute(
                select(RegistrationLevel.id, RegistrationLevel.fee_fen).where(
                    RegistrationLevel.hospital_id == hospital_id
                )
            )
        ).all()
    )
    department_codes = dict(
        (
            await session.execute(
                select(Department.id, Department.code).where(Department.hospital_id == hospital_id)
            )
        ).all()
    )
    doctor_codes = dict(
        (
            await session.execute(
                select(Doctor.id, Doctor.code).where(Doctor.hospital_id == hospital_id)
            )
        ).all()
    )
    policy = scheduling_service.policy_values(
        await scheduling_service.policy_row(session, hospital_id=hospital_id, department_id=None)
    )
    release = (int(policy["release_days_ahead"]), policy["release_time"])
    ratios: dict[tuple[uuid.UUID, uuid.UUID | None], dict[str, int]] = {}
    patients = await _patients(
        session, hospital_id=hospital_id, cipher=cipher, today=today, now=now
    )
    rows = _Rows([], [], [], [], [], [], [])
    for template, day in due:
        scope = (template.department_id, template.doctor_id)
        if scope not in ratios:
            ratios[scope] = await scheduling_service.pool_ratios(
                session,
                hospital_id=hospital_id,
                department_id=template.department_id,
                doctor_id=template.doctor_id,
            )
        _session_history(
            rows,
            hospital_id=hospital_id,
            template=template,
            department_code=department_codes[template.department_id],
            doctor_code=doctor_codes.get(template.doctor_id) if template.doctor_id else None,
            day=day,
            fee_fen=int(fees[template.level_id]),
            ratios=ratios[scope],
            release=release,
            timezone=timezone,
            patients=patients,
        )
    for table, items in (
        (ClinicSession, rows.sessions),
        (TimeSlot, rows.slots),
        (SlotPool, rows.pools),
        (Appointment, rows.appointments),
        (Visit, rows.visits),
        (WaitlistEntry, rows.waitlist),
        (PaymentOrder, rows.payments),
    ):
        for start in range(0, len(items), _CHUNK):
            await session.execute(insert(table), items[start : start + _CHUNK])
    await booking_demand.add_attempts(session, rows.attempts)
    await session.flush()
    days = sorted(day for _, day in due)
    return HistorySummary((days[0], days[-1]), len(rows.sessions), len(rows.appointments))
