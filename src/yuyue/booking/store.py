"""The booking write path in SQL: what `service.book` sends to the database.

This is the release-peak hot path, so it is written by hand on the driver connection
(`kit.sql`), counted in round trips, and says here what each statement guarantees:

1. `FACTS_AND_CLAIM` locks the patient's row, reads any blacklist entry in force and the
   patient's recent and active bookings, and takes one place of the session, in one call of
   the PL/pgSQL function `yuyue_facts_and_claim` (migration e1c7a3f5b9d2). One patient's
   concurrent requests queue on that lock, so the limits are checked against everything
   they booked before. The reads are separate statements inside the function: on
   PostgreSQL a statement that waited for a lock still reads the snapshot it took before
   waiting. The claim is a conditional UPDATE (`taken < capacity AND is_open`, re-checked
   on the locked row; `CHECK (taken <= capacity)` is the last defence), after which the
   pool's used sequence numbers are read afresh under its lock. The place is taken before
   the rules have seen the facts: when one refuses, `RETURN_PLACE` gives it back in the
   same transaction (`give_back`), so a refusal still changes nothing.
   On SQLite the writer already holds the database lock: `LOCK_PATIENT` and `EXISTING` are
   sent, the rules checked, and then `CLAIM`.
2. When no place is free the caller may make room (expire overdue holds) and claim again
   with `CLAIM`, whose numbers `USED_NUMBERS` reads.
3. `RECORD_*` writes the appointment, its audit row and its messages (confirmation or
   hold notice, and the reminders) in one statement on PostgreSQL. A voucher code that
   collides with another of the hospital is never shown: the insert does nothing and is
   sent again with a new code.

The audit and outbox rows are those `staff.service.record_audit` and
`notifications.service.enqueue` write, column for column; `tests/booking/test_store.py`
checks that the hot path's rows are delivered and audited like any other.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from yuyue.booking import rules
from yuyue.booking.states import ACTIVE_STATUSES, AppointmentStatus
from yuyue.kit.errors import NotFound
from yuyue.kit.ids import new_id
from yuyue.kit.sql import Driver, Statement

_ACTIVE = "(" + ", ".join(f"'{s.value}'" for s in ACTIVE_STATUSES) + ")"

LOCK_PATIENT = Statement(
    """
    SELECT p.id, p.birth_date, p.sex, b.starts_at, b.ends_at, b.lifted_at, b.reason
    FROM patient p
    LEFT JOIN blacklist_entry b ON b.patient_id = p.id AND b.ends_at > $3
    WHERE p.id = $1 AND p.hospital_id = $2
    FOR UPDATE OF p
    """,
    sqlite="""
    SELECT p.id, p.birth_date, p.sex, b.starts_at, b.ends_at, b.lifted_at, b.reason
    FROM patient p
    LEFT JOIN blacklist_entry b ON b.patient_id = p.id AND b.ends_at > $3
    WHERE p.id = $1 AND p.hospital_id = $2
    """,
)

EXISTING = Statement(
    f"""
    SELECT id, session_id, visit_date, department_id, doctor_id, status, created_at,
           cancel_reason
    FROM appointment
    WHERE patient_id = $1 AND (created_at > $2 OR status IN {_ACTIVE})
    """
)

PATIENT_FACTS = Statement(
    "SELECT kind, id, day, sex, t1, t2, t3, note, session_id, department_id, doctor_id, status"
    " FROM yuyue_patient_facts($1, $2, $3, $4)"
)

_CANDIDATE = """
    SELECT id{extra} FROM slot_pool
    WHERE session_id = $1 AND pool = ANY($2::text[]) AND taken < capacity AND is_open
      AND ($3::uuid IS NULL OR slot_id = $3) AND ($4::uuid IS NULL OR id = $4)
    ORDER BY slot_ordinal, first_number
    LIMIT 1
"""

FACTS_AND_CLAIM = Statement(
    "SELECT kind, id, day, sex, t1, t2, t3, note, session_id, department_id, doctor_id,"
    " status, slot_id, first_number, capacity, slot_start, slot_end, used"
    " FROM yuyue_facts_and_claim($1, $2, $3, $4, $5, $6::text[], $7)"
)

# PostgreSQL, optimistic: claim and read the used numbers in one statement, valid only if
# the pool row is still the version this statement's snapshot saw.
CLAIM_UNCHANGED = Statement(
    f"""
    WITH candidate AS ({_CANDIDATE.format(extra=", ctid AS seen")})
    UPDATE slot_pool p SET taken = p.taken + 1
    FROM candidate c
    WHERE p.id = c.id AND p.ctid = c.seen AND p.taken < p.capacity AND p.is_open
    RETURNING p.id, p.slot_id, p.first_number, p.capacity, p.slot_start, p.slot_end,
      ARRAY(SELECT a.sequence_number FROM appointment a
            WHERE a.pool_id = p.id AND a.status IN {_ACTIVE})
    """
)

CLAIM = Statement(
    f"""
    UPDATE slot_pool SET taken = taken + 1
    WHERE id = ({_CANDIDATE.format(extra="")}) AND taken < capacity AND is_open
    RETURNING id, slot_id, first_number, capacity, slot_start, slot_end
    """,
    sqlite="""
    UPDATE slot_pool SET taken = taken + 1
    WHERE id = (
        SELECT id FROM slot_pool
        WHERE session_id = $1 AND pool IN (SELECT value FROM json_each($2))
          AND taken < capacity AND is_open AND ($3 IS NULL OR slot_id = $3)
          AND ($4 IS NULL OR id = $4)
        ORDER BY slot_ordinal, first_number
        LIMIT 1
    ) AND taken < capacity AND is_open
    RETURNING id, slot_id, first_number, capacity, slot_start, slot_end
    """,
)

ANY_FREE = Statement(
    """
    SELECT 1 FROM slot_pool
    WHERE session_id = $1 AND pool = ANY($2::text[]) AND taken < capacity AND is_open
      AND ($3::uuid IS NULL OR slot_id = $3) AND ($4::uuid IS NULL OR id = $4)
    LIMIT 1
    """,
    sqlite="""
    SELECT 1 FROM slot_pool
    WHERE session_id = $1 AND pool IN (SELECT value FROM json_each($2))
      AND taken < capacity AND is_open AND ($3 IS NULL OR slot_id = $3)
      AND ($4 IS NULL OR id = $4)
    LIMIT 1
    """,
)

USED_NUMBERS = Statement(
    f"SELECT sequence_number FROM appointment WHERE pool_id = $1 AND status IN {_ACTIVE}"
)

RETURN_PLACE = Statement("UPDATE slot_pool SET taken = taken - 1 WHERE id = $1")

_APPOINTMENT_INSERT = """
    INSERT INTO appointment (id, hospital_id, patient_id, session_id, slot_id, pool_id,
        department_id, doctor_id, visit_date, channel, status, sequence_number, fee_fen,
        voucher_code, hold_expires_at, booked_at, rescheduled_from_id, created_by,
        created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
        $19, $19)
    ON CONFLICT (hospital_id, voucher_code) DO NOTHING
    RETURNING id
"""

# PostgreSQL: the appointment, its audit row and its messages in one statement. The audit
# and message rows select from the inserted appointment, so a voucher-code collision
# (nothing inserted) writes nothing at all and returns no row.
RECORD_PG = Statement(
    f"""
    WITH a AS ({_APPOINTMENT_INSERT}),
    audit AS (
        INSERT INTO audit_entry (id, hospital_id, actor, action, entity_type, entity_id,
            before, after, at)
        SELECT $20, $2, $18, $21, 'appointment', a.id, NULL, $22::json, $19 FROM a
    ),
    remembered AS (
        INSERT INTO idempotency_record (id, hospital_id, scope, key, request_hash, status_code,
            response, created_at)
        SELECT $27, $2, $28::varchar, $29, $30, 201, $31::json, $19 FROM a
        WHERE $28::varchar IS NOT NULL
    )
    INSERT INTO outbox_message (id, hospital_id, kind, patient_id, appointment_id, account_id,
        to_phone_cipher, payload, status, attempts, available_at, created_at)
    SELECT m.id, $2, m.kind, $3, a.id, NULL, NULL, m.payload::json, 'pending', 0,
        m.available_at, $19
    FROM a, unnest($23::uuid[], $24::text[], $25::text[], $26::timestamptz[])
        AS m(id, kind, payload, available_at)
    RETURNING appointment_id
    """
)

# What a booking sends on the hot lane, prepared on its connections at start-up. A booking
# that finds no place leaves the lane for the full path, so the lane never claims again.
LANE_STATEMENTS = (FACTS_AND_CLAIM, RETURN_PLACE, RECORD_PG)
# Those that change nothing (the patient's lock aside): a booking refused after only these
# leaves a group commit's transaction as it found it.
LANE_READS = (PATIENT_FACTS, LOCK_PATIENT, EXISTING, ANY_FREE, USED_NUMBERS)


def places_taken(rows: Sequence[Sequence[Any]]) -> int:
    """How many places `FACTS_AND_CLAIM`'s answer took (0 or 1): a group commit counts the
    places a booking owes back before it may leave the group unchanged (`RETURN_PLACE`)."""
    return sum(1 for row in rows if row[0] == 3)


RECORD_APPOINTMENT_SQLITE = Statement(_APPOINTMENT_INSERT)
RECORD_ANSWER_SQLITE = Statement(
    """
    INSERT INTO idempotency_record (id, hospital_id, scope, key, request_hash, status_code,
        response, created_at)
    VALUES ($1, $2, $3, $4, $5, 201, $6, $7)
    """
)
RECORD_AUDIT_SQLITE = Statement(
    """
    INSERT INTO audit_entry (id, hospital_id, actor, action, entity_type, entity_id, before,
        after, at)
    VALUES ($1, $2, $3, $4, 'appointment', $5, NULL, $6, $7)
    """
)
RECORD_MESSAGE_SQLITE = Statement(
    """
    INSERT INTO outbox_message (id, hospital_id, kind, patient_id, appointment_id, account_id,
        to_phone_cipher, payload, status, attempts, available_at, created_at)
    VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, 'pending', 0, $7, $8)
    """
)


@dataclass(frozen=True, slots=True)
class PatientFacts:
    id: uuid.UUID
    birth_date: date
    sex: str


@dataclass(frozen=True, slots=True)
class ClaimedPlace:
    pool_id: uuid.UUID
    slot_id: uuid.UUID
    first_number: int
    capacity: int
    slot_start: time
    slot_end: time
    # The pool's numbers in use when they are known to be current, else None.
    used_numbers: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    kind: str
    payload: dict[str, Any]
    available_at: datetime


@dataclass(frozen=True, slots=True)
class Remembered:
    """The first answer to a request with an Idempotency-Key, kept with the booking itself
    so that a retry finds it exactly when the booking exists."""

    scope: str
    key: str
    request_hash: str
    # The answer as sent: the same text is stored and sent, serialised once.
    response_text: str


@dataclass(slots=True)
class AppointmentRecord:
    """A just-written appointment, as the answer and the audit trail show it."""

    id: uuid.UUID
    hospital_id: uuid.UUID
    patient_id: uuid.UUID
    session_id: uuid.UUID
    slot_id: uuid.UUID
    pool_id: uuid.UUID
    department_id: uuid.UUID
    doctor_id: uuid.UUID | None
    visit_date: date
    channel: str
    status: AppointmentStatus
    sequence_number: int
    fee_fen: int
    voucher_code: str
    hold_expires_at: datetime | None
    booked_at: datetime | None
    rescheduled_from_id: uuid.UUID | None
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    paid_fen: int | None = None
    payment_provider: str | None = None
    refund_state: str = "none"
    split_pool_fen: int | None = None
    split_account_fen: int | None = None
    split_self_pay_fen: int | None = None


async def lock_patient(
    db: Driver, *, hospital_id: uuid.UUID, patient_id: uuid.UUID, now: datetime
) -> tuple[PatientFacts, list[rules.BlacklistFacts]]:
    rows = await db.fetch(LOCK_PATIENT, patient_id, hospital_id, now)
    if not rows:
        raise NotFound(what="patient")
    first = rows[0]
    entries = [
        rules.BlacklistFacts(
            db.instant(r[3]),
            db.instant(r[4]),
            db.instant(r[5]) if r[5] is not None else None,
            r[6],
        )
        for r in rows
        if r[4] is not None
    ]
    return PatientFacts(db.uuid(first[0]), db.day(first[1]), first[2]), entries


async def existing_bookings(
    db: Driver, *, patient_id: uuid.UUID, since: datetime
) -> list[rules.BookingFacts]:
    rows = await db.fetch(EXISTING, patient_id, since)
    return [
        rules.BookingFacts(
            db.uuid(r[0]),
            db.uuid(r[1]),
            db.day(r[2]),
            db.uuid(r[3]),
            db.uuid(r[4]) if r[4] is not None else None,
            AppointmentStatus(r[5]),
            db.instant(r[6]),
            r[7],
        )
        for r in rows
    ]


async def patient_facts(
    db: Driver, *, hospital_id: uuid.UUID, patient_id: uuid.UUID, now: datetime, since: datetime
) -> tuple[PatientFacts, list[rules.BlacklistFacts], list[rules.BookingFacts]]:
    """Locks the patient and reads what the rules need of them: on PostgreSQL one call of
    `yuyue_patient_facts` (its reads follow its lock, each with a fresh snapshot), on SQLite
    the two statements, under the writer's lock."""
    if db.is_sqlite:
        locked, entries = await lock_patient(
            db, hospital_id=hospital_id, patient_id=patient_id, now=now
        )
        return locked, entries, await existing_bookings(db, patient_id=patient_id, since=since)
    rows = await db.fetch(PATIENT_FACTS, patient_id, hospital_id, now, since)
    patient: PatientFacts | None = None
    blacklist: list[rules.BlacklistFacts] = []
    bookings: list[rules.BookingFacts] = []
    for r in rows:
        if r[0] == 0:
            patient = PatientFacts(r[1], r[2], r[3])
        elif r[0] == 1:
            blacklist.append(rules.BlacklistFacts(r[4], r[5], r[6], r[7]))
        else:
            bookings.append(
                rules.BookingFacts(
                    r[1], r[8], r[2], r[9], r[10], AppointmentStatus(r[11]), r[4], r[7]
                )
            )
    if patient is None:
        raise NotFound(what="patient")
    return patient, blacklist, bookings


async def facts_and_claim(
    db: Driver,
    *,
    hospital_id: uuid.UUID,
    patient_id: uuid.UUID,
    now: datetime,
    since: datetime,
    session_id: uuid.UUID,
    pools: Sequence[str],
    slot_id: uuid.UUID | None,
) -> tuple[PatientFacts, list[rules.BlacklistFacts], list[rules.BookingFacts], ClaimedPlace | None]:
    """PostgreSQL: locks the patient, reads what the rules need of them and takes the
    earliest free place of `pools` (None when none is free), in one call. The caller gives
    the place back (`give_back`) when a rule refuses."""
    assert not db.is_sqlite
    rows = await db.fetch(
        FACTS_AND_CLAIM, patient_id, hospital_id, now, since, session_id, list(pools), slot_id
    )
    patient: PatientFacts | None = None
    blacklist: list[rules.BlacklistFacts] = []
    bookings: list[rules.BookingFacts] = []
    place: ClaimedPlace | None = None
    for r in rows:
        kind = r[0]
        if kind == 0:
            patient = PatientFacts(r[1], r[2], r[3])
        elif kind == 1:
            blacklist.append(rules.BlacklistFacts(r[4], r[5], r[6], r[7]))
        elif kind == 2:
            bookings.append(
                rules.BookingFacts(
                    r[1], r[8], r[2], r[9], r[10], AppointmentStatus(r[11]), r[4], r[7]
                )
            )
        else:
            place = ClaimedPlace(r[1], r[12], r[13], r[14], r[15], r[16], tuple(r[17]))
    if patient is None:
        raise NotFound(what="patient")
    return patient, blacklist, bookings, place


async def give_back(db: Driver, place: ClaimedPlace) -> None:
    """Returns a place this transaction claimed and did not use."""
    await db.execute(RETURN_PLACE, place.pool_id)


def _place(db: Driver, row: Sequence[Any], used: tuple[int, ...] | None) -> ClaimedPlace:
    return ClaimedPlace(
        db.uuid(row[0]),
        db.uuid(row[1]),
        row[2],
        row[3],
        db.clock_time(row[4]),
        db.clock_time(row[5]),
        used,
    )


async def claim_place(
    db: Driver,
    *,
    session_id: uuid.UUID,
    pools: Sequence[str],
    slot_id: uuid.UUID | None,
    pool_id: uuid.UUID | None = None,
) -> ClaimedPlace | None:
    """Takes the earliest free place of the given pools (of one pool row, with `pool_id`),
    or None when none is free."""
    pool_list = list(pools)
    if not db.is_sqlite:
        row = await db.fetchrow(CLAIM_UNCHANGED, session_id, pool_list, slot_id, pool_id)
        if row is not None:
            return _place(db, row, tuple(row[6]))
    # A row that fills between the pick and the lock updates nothing; look again unless
    # nothing free is left at all.
    for _ in range(256):
        row = await db.fetchrow(CLAIM, session_id, pool_list, slot_id, pool_id)
        if row is not None:
            return _place(db, row, None)
        if await db.fetchrow(ANY_FREE, session_id, pool_list, slot_id, pool_id) is None:
            return None
    return None


async def return_place(db: Driver, *, pool_id: uuid.UUID) -> None:
    await db.execute(RETURN_PLACE, pool_id)


async def number_place(db: Driver, place: ClaimedPlace) -> int:
    """The pool's lowest free sequence number. The caller holds the pool row's lock, so no
    one else numbers places of this pool meanwhile."""
    used = place.used_numbers
    if used is None:
        used = tuple(r[0] for r in await db.fetch(USED_NUMBERS, place.pool_id))
    return rules.lowest_free_number(place.first_number, place.capacity, used)


def new_voucher_code() -> str:
    return f"{secrets.randbelow(10**8):08d}"


def json_text(value: Any) -> str:
    """JSON as the stored rows and the answers carry it (as Starlette's JSONResponse writes
    it, so a stored answer and a sent one are the same bytes)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_json = json_text


async def record(
    db: Driver,
    appointment: AppointmentRecord,
    *,
    audit_action: str,
    audit_after: dict[str, Any],
    messages: Sequence[NewMessage],
    remember: Callable[[], Remembered] | None = None,
) -> None:
    """Writes the appointment, its audit row, its messages and the remembered answer.

    A voucher code that another appointment of the hospital holds is replaced by a new one
    (in `appointment`) and the write is repeated; the patient never sees the collision."""
    assert messages, "a booking always tells the patient"
    for _ in range(20):
        a = appointment
        remembered = remember() if remember is not None else None
        head = (
            a.id,
            a.hospital_id,
            a.patient_id,
            a.session_id,
            a.slot_id,
            a.pool_id,
            a.department_id,
            a.doctor_id,
            a.visit_date,
            a.channel,
            a.status.value,
            a.sequence_number,
            a.fee_fen,
            a.voucher_code,
            a.hold_expires_at,
            a.booked_at,
            a.rescheduled_from_id,
            a.created_by,
            a.created_at,
        )
        if db.is_sqlite:
            inserted = await db.fetchrow(RECORD_APPOINTMENT_SQLITE, *head)
            if inserted is not None:
                await db.execute(
                    RECORD_AUDIT_SQLITE,
                    new_id(),
                    a.hospital_id,
                    a.created_by,
                    audit_action,
                    a.id,
                    _json(audit_after),
                    a.created_at,
                )
                for message in messages:
                    await db.execute(
                        RECORD_MESSAGE_SQLITE,
                        new_id(),
                        a.hospital_id,
                        message.kind,
                        a.patient_id,
                        a.id,
                        _json(message.payload),
                        message.available_at,
                        a.created_at,
                    )
                if remembered is not None:
                    await db.execute(
                        RECORD_ANSWER_SQLITE,
                        new_id(),
                        a.hospital_id,
                        remembered.scope,
                        remembered.key,
                        remembered.request_hash,
                        remembered.response_text,
                        a.created_at,
                    )
                return
        else:
            rows = await db.fetch(
                RECORD_PG,
                *head,
                new_id(),
                audit_action,
                _json(audit_after),
                [new_id() for _ in messages],
                [m.kind for m in messages],
                [_json(m.payload) for m in messages],
                [m.available_at for m in messages],
                new_id(),
                remembered.scope if remembered else None,
                remembered.key if remembered else None,
                remembered.request_hash if remembered else None,
                remembered.response_text if remembered else None,
            )
            if rows:
                return
        appointment.voucher_code = new_voucher_code()
    raise AssertionError("twenty voucher codes in a row were taken")
