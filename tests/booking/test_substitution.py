"""Stop-clinic with a substitute (替诊): a stopped clinic's bookings move to another doctor of
the same level on the same day, numbers and times kept where possible; those that cannot
move are cancelled; every patient is told once; nothing is overbooked."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.helpers import assert_problem, row_counts, staff_auth
from yuyue.booking import rules
from yuyue.booking.models import Appointment
from yuyue.booking.states import ACTIVE_STATUSES, AppointmentStatus
from yuyue.notifications.models import OutboxMessage
from yuyue.scheduling.enums import Period, SessionStatus
from yuyue.scheduling.models import ClinicSession, SlotPool
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext

S = AppointmentStatus

# --- the rules, without a database ------------------------------------------------------------

DEPARTMENT, LEVEL = uuid.uuid4(), uuid.uuid4()
STOPPED = rules.SubstituteFacts(
    id=uuid.uuid4(),
    date=date(2026, 11, 23),
    department_id=DEPARTMENT,
    level_id=LEVEL,
    fee_fen=0,
    status=SessionStatus.OPEN,
)


def other(**changes: Any) -> rules.SubstituteFacts:
    values = {
        "id": uuid.uuid4(),
        "date": STOPPED.date,
        "department_id": DEPARTMENT,
        "level_id": LEVEL,
        "fee_fen": 0,
        "status": SessionStatus.OPEN,
        **changes,
    }
    return rules.SubstituteFacts(**values)


class TestSuitability:
    @pytest.mark.parametrize(
        ("substitute", "why"),
        [
            (other(id=STOPPED.id), "same_session"),
            (other(date=date(2026, 11, 24)), "other_day"),
            (other(department_id=uuid.uuid4()), "other_department"),
            (other(level_id=uuid.uuid4()), "other_level"),
            (other(fee_fen=500), "other_fee"),
            (other(status=SessionStatus.STOPPED), "not_open"),
        ],
    )
    def test_an_unsuitable_substitute_is_refused_with_the_reason(
        self, substitute: rules.SubstituteFacts, why: str
    ) -> None:
        with pytest.raises(rules.SubstituteUnsuitable) as refused:
            rules.check_substitute(STOPPED, substitute)
        assert refused.value.extensions() == {"why": why}
        assert refused.value.detail("zh-CN").startswith("不能由该出诊替诊")
        assert "cannot take over" in refused.value.detail("en")

    def test_a_colleague_of_the_same_level_that_day_is_suitable(self) -> None:
        rules.check_substitute(STOPPED, other())


def pool(start: str, first: int, capacity: int, free: int, name: str = "appointment") -> Any:
    hour, minute = map(int, start.split(":"))
    return rules.SubstitutePool(
        id=uuid.uuid4(),
        pool=name,
        slot_start=time(hour, minute),
        first_number=first,
        capacity=capacity,
        free=free,
    )


class TestPreference:
    def test_the_own_number_at_the_own_time_comes_first(self) -> None:
        own_time_other_numbers = pool("08:30", 1, 3, 3)
        own_number = pool("08:30", 4, 3, 1, name="onsite")
        later = pool("09:00", 7, 3, 3)
        order = rules.substitute_preference(
            [later, own_time_other_numbers, own_number],
            slot_start=time(8, 30),
            number=5,
            pool="appointment",
        )
        assert order == [own_number, own_time_other_numbers, later]

    def test_the_own_channel_pool_before_another_at_the_same_time(self) -> None:
        onsite = pool("08:30", 1, 3, 3, name="onsite")
        own = pool("08:30", 4, 3, 3, name="appointment")
        order = rules.substitute_preference(
            [onsite, own], slot_start=time(8, 30), number=20, pool="appointment"
        )
        assert order == [own, onsite]

    def test_a_little_later_before_a_little_earlier_and_full_pools_left_out(self) -> None:
        earlier = pool("08:00", 1, 3, 3)
        full = pool("08:30", 4, 3, 0)
        later = pool("09:00", 7, 3, 1)
        much_later = pool("10:30", 10, 3, 3)
        order = rules.substitute_preference(
            [much_later, earlier, full, later], slot_start=time(8, 30), number=5, pool="appointment"
        )
        assert order == [later, much_later, earlier]

    @pytest.mark.parametrize(
        ("number", "used", "expected"),
        [(5, [4], 5), (5, [5], 4), (5, [4, 5], 6), (9, [], 4), (9, [4], 5)],
    )
    def test_the_number_is_kept_when_free_in_the_new_pool(
        self, number: int, used: list[int], expected: int
    ) -> None:
        assert rules.kept_number(pool("08:30", 4, 3, 3), number, used) == expected


class TestWhoMoves:
    @pytest.mark.parametrize(
        ("status", "fee", "paid", "refund", "moves"),
        [
            (S.HELD, 8000, None, "none", True),
            (S.BOOKED, 0, None, "none", True),
            (S.BOOKED, 8000, 8000, "none", True),
            (S.BOOKED, 8000, 8000, "pending", False),  # its refund has begun
            (S.BOOKED, 8000, None, "none", False),  # a fee never paid cannot follow
            (S.CHECKED_IN, 0, None, "none", False),  # the desk sees to them
        ],
    )
    def test_which_bookings_a_substitute_takes_over(
        self, status: S, fee: int, paid: int | None, refund: str, moves: bool
    ) -> None:
        assert (
            rules.movable_to_substitute(status, fee_fen=fee, paid_fen=paid, refund_state=refund)
            is moves
        )


# --- through the API, on SQLite and PostgreSQL --------------------------------------------------


async def colleague_session(
    ctx: AppContext,
    world: World,
    *,
    capacity: int = 25,
    day: date = VISIT_DAY,
    level: Any = None,
    period: Period = Period.MORNING,
) -> ClinicSession:
    async with ctx.db.session_scope() as s:
        doctor = await f.make_doctor(
            s,
            hospital=world.hospital,
            department=world.department,
            level=level or world.free_level,
            name="李医生",
        )
        return await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=level or world.free_level,
            doctor=doctor,
            day=day,
            period=period,
            start=time(8, 0) if period is Period.MORNING else time(14, 0),
            end=time(12, 0) if period is Period.MORNING else time(17, 0),
            capacity=capacity,
            now=NOW,
        )


async def book(
    client: httpx.AsyncClient, world: World, patient: Any, session: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/appointments",
        json={"patient_id": str(patient.id), "session_id": str(session.id)},
        headers=world.auth,
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def appointment(ctx: AppContext, appointment_id: str | uuid.UUID) -> Appointment:
    async with ctx.db.read() as s:
        found = await s.get(Appointment, uuid.UUID(str(appointment_id)))
    assert found is not None
    return found


async def active_in(ctx: AppContext, session_id: uuid.UUID) -> list[Appointment]:
    async with ctx.db.read() as s:
        return list(
            (
                await s.scalars(
                    select(Appointment).where(
                        Appointment.session_id == session_id,
                        Appointment.status.in_(ACTIVE_STATUSES),
                    )
                )
            ).all()
        )


async def taken(ctx: AppContext, session_id: uuid.UUID) -> int:
    async with ctx.db.read() as s:
        return int(
            await s.scalar(
                select(func.coalesce(func.sum(SlotPool.taken), 0)).where(
                    SlotPool.session_id == session_id
                )
            )
        )


async def messages(ctx: AppContext, kind: str) -> list[OutboxMessage]:
    async with ctx.db.read() as s:
        return list(
            (await s.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind))).all()
        )


class TestStopWithSubstitute:
    async def test_the_substitute_takes_every_booking_keeping_numbers_and_times(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        substitute = await colleague_session(ctx, world)
        first = await book(client, world, world.patient, world.session)
        second = await book(client, world, world.other_patient, world.session)
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
        response = await client.post(
            f"/api/v1/sessions/{world.session.id}/stop",
            json={"reason": "医生临时外出会诊", "substitute_session_id": str(substitute.id)},
            headers=scheduler,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["cancelled_appointments"] == []
        assert body["substitute_session_id"] == str(substitute.id)
        moved = {m["from_appointment_id"]: m for m in body["moved_appointments"]}
        assert set(moved) == {first["id"], second["id"]}
        for old in (first, second):
            plan = moved[old["id"]]
            assert plan["number_kept"] and plan["time_kept"]
            new = await appointment(ctx, plan["appointment_id"])
            assert new.session_id == substitute.id and new.doctor_id == substitute.doctor_id
            assert new.sequence_number == old["sequence_number"] == plan["sequence_number"]
            assert new.status == S.BOOKED and new.rescheduled_from_id == uuid.UUID(old["id"])
            assert new.voucher_code != old["voucher"]["code"]
            gone = await appointment(ctx, old["id"])
            assert gone.status == S.CANCELLED and gone.cancel_reason == "stop_clinic"
        assert await taken(ctx, world.session.id) == 0
        assert await taken(ctx, substitute.id) == 2
        told = await messages(ctx, "substituted")
        assert sorted(str(m.appointment_id) for m in told) == sorted(
            m["appointment_id"] for m in moved.values()
        )
        assert {m.payload["note"] for m in told} == {"医生临时外出会诊"}
        assert await messages(ctx, "stop_clinic") == []  # one message each, not two
        async with ctx.db.read() as s:
            audited = (
                await s.scalars(select(AuditEntry).where(AuditEntry.action == "substitute"))
            ).all()
        assert len(audited) == 2

    async def test_the_patients_page_shows_the_new_doctor(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        substitute = await colleague_session(ctx, world)
        await book(client, world, world.patient, world.session)
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
        body = (
            await client.post(
                f"/api/v1/sessions/{world.session.id}/stop",
                json={"reason": "医生外出", "substitute_session_id": str(substitute.id)},
                headers=scheduler,
            )
        ).json()
        [plan] = body["moved_appointments"]
        shown = await client.get(
            f"/api/v1/appointments/{plan['appointment_id']}", headers=world.auth
        )
        assert shown.status_code == 200, shown.text
        assert shown.json()["status"] == "booked"
        assert shown.json()["session"]["id"] == str(substitute.id)
        assert shown.json()["session"]["doctor"]["name"] == "李医生"

    async def test_those_the_substitute_has_no_room_for_are_cancelled_and_told(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        substitute = await colleague_session(ctx, world, capacity=1)
        # The substitute's one place goes to the first number.
        first = await book(client, world, world.patient, world.session)
        second = await book(client, world, world.other_patient, world.session)
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
        body = (
            await client.post(
                f"/api/v1/sessions/{world.session.id}/stop",
                json={"reason": "医生外出", "substitute_session_id": str(substitute.id)},
                headers=scheduler,
            )
        ).json()
        assert [m["from_appointment_id"] for m in body["moved_appointments"]] == [first["id"]]
        assert body["cancelled_appointments"] == [second["id"]]
        assert await taken(ctx, substitute.id) == 1
        assert [str(m.appointment_id) for m in await messages(ctx, "stop_clinic")] == [second["id"]]

    async def test_a_patient_already_booked_with_the_substitute_keeps_that_booking(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        substitute = await colleague_session(ctx, world)
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
        # The department allows two bookings a day, so the patient has one with each doctor.
        policy = await client.put(
            "/api/v1/booking-policy",
            json={"department_id": str(world.department.id), "limit_per_department_per_day": 2},
            headers=scheduler,
        )
        assert policy.status_code == 200, policy.text
        stopped = await book(client, world, world.patient, world.session)
        kept = await book(client, world, world.patient, substitute)
        body = (
            await client.post(
                f"/api/v1/sessions/{world.session.id}/stop",
                json={"reason": "医生外出", "substitute_session_id": str(substitute.id)},
                headers=scheduler,
            )
        ).json()
        assert body["moved_appointments"] == []
        assert body["cancelled_appointments"] == [stopped["id"]]
        assert [a.id for a in await active_in(ctx, substitute.id)] == [uuid.UUID(kept["id"])]

    @pytest.mark.parametrize("why", ["other_level", "other_day", "same_session", "not_open"])
    async def test_an_unsuitable_substitute_is_refused_and_nothing_changes(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, why: str
    ) -> None:
        if why == "other_level":
            substitute_id = (await colleague_session(ctx, world, level=world.fee_level)).id
        elif why == "other_day":
            later = VISIT_DAY + timedelta(days=1)
            substitute_id = (await colleague_session(ctx, world, day=later)).id
        elif why == "same_session":
            substitute_id = world.session.id
        else:
            substitute_id = (await colleague_session(ctx, world)).id
            scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
            stop = await client.post(
                f"/api/v1/sessions/{substitute_id}/stop",
                json={"reason": "也停了"},
                headers=scheduler,
            )
            assert stop.status_code == 200, stop.text
        await book(client, world, world.patient, world.session)
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
        before = await row_counts(ctx.db)
        response = await client.post(
            f"/api/v1/sessions/{world.session.id}/stop",
            json={"reason": "医生外出", "substitute_session_id": str(substitute_id)},
            headers=scheduler,
        )
        problem = assert_problem(response, 409, "substitute_unsuitable")
        assert problem["why"] == why
        assert await row_counts(ctx.db) == before
        async with ctx.db.read() as s:
            assert (await s.get(ClinicSession, world.session.id)).status == "open"  # type: ignore[union-attr]

    async def test_an_unknown_substitute_is_not_found_and_nothing_changes(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
        before = await row_counts(ctx.db)
        response = await client.post(
            f"/api/v1/sessions/{world.session.id}/stop",
            json={"reason": "医生外出", "substitute_session_id": str(uuid.uuid4())},
            headers=scheduler,
        )
        assert_problem(response, 404, "not_found")
        assert await row_counts(ctx.db) == before

    async def test_the_preview_shows_the_plan_and_changes_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        substitute = await colleague_session(ctx, world, capacity=1)
        first = await book(client, world, world.patient, world.session)
        second = await book(client, world, world.other_patient, world.session)
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
        before = await row_counts(ctx.db)
        response = await client.post(
            f"/api/v1/sessions/{world.session.id}/stop/preview",
            json={"reason": "医生外出", "substitute_session_id": str(substitute.id)},
            headers=scheduler,
        )
        assert response.status_code == 200, response.text
        plan = response.json()
        assert plan["preview"] is True
        assert [m["from_appointment_id"] for m in plan["moved_appointments"]] == [first["id"]]
        assert plan["moved_appointments"][0]["appointment_id"] is None
        assert plan["cancelled_appointments"] == [second["id"]]
        assert await row_counts(ctx.db) == before
        assert len(await active_in(ctx, world.session.id)) == 2
        nurse = await staff_auth(client, ctx, world, Role.NURSE)
        refused = await client.post(
            f"/api/v1/sessions/{world.session.id}/stop/preview",
            json={"reason": "医生外出"},
            headers=nurse,
        )
        assert_problem(refused, 403, "forbidden")

    async def test_substitutes_are_colleagues_of_the_same_level_that_day_with_their_room(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        afternoon = await colleague_session(ctx, world, period=Period.AFTERNOON, capacity=10)
        morning = await colleague_session(ctx, world, capacity=20)
        await colleague_session(ctx, world, level=world.fee_level)
        await colleague_session(ctx, world, day=VISIT_DAY + timedelta(days=1))
        await book(client, world, world.patient, morning)
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
        response = await client.get(
            f"/api/v1/sessions/{world.session.id}/substitutes", headers=scheduler
        )
        assert response.status_code == 200, response.text
        found = [(c["session_id"], c["free_places"]) for c in response.json()]
        # The same half-day first.
        assert found == [(str(morning.id), 19), (str(afternoon.id), 10)]
        assert_problem(
            await client.get(
                f"/api/v1/sessions/{world.session.id}/substitutes", headers=world.auth
            ),
            403,
            "forbidden",
        )

    async def test_concurrent_bookings_and_the_move_never_overbook_the_substitute(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        substitute = await colleague_session(ctx, world, capacity=6)
        patients = []
        async with ctx.db.session_scope() as s:
            for i in range(16):
                patients.append(
                    await f.make_patient(
                        s,
                        hospital=world.hospital,
                        cipher=ctx.cipher,
                        now=NOW,
                        name="患者" + "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳"[i],
                    )
                )
        for patient in patients[:8]:
            await book(client, world, patient, world.session)
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)

        async def racer(patient: Any) -> int:
            answer = await client.post(
                "/api/v1/appointments",
                json={"patient_id": str(patient.id), "session_id": str(substitute.id)},
                headers=world.auth,
            )
            return answer.status_code

        stop = client.post(
            f"/api/v1/sessions/{world.session.id}/stop",
            json={"reason": "医生外出", "substitute_session_id": str(substitute.id)},
            headers=scheduler,
        )
        outcome, *codes = await asyncio.gather(stop, *(racer(p) for p in patients[8:]))
        assert outcome.status_code == 200, outcome.text
        assert set(codes) <= {201, 409}
        body = outcome.json()
        moved, cancelled = body["moved_appointments"], body["cancelled_appointments"]
        assert len(moved) + len(cancelled) == 8
        in_substitute = await active_in(ctx, substitute.id)
        # Every place taken once, never more than the session has.
        assert len(in_substitute) == await taken(ctx, substitute.id) <= 6
        assert len(in_substitute) == len(moved) + codes.count(201)
        numbers = [a.sequence_number for a in in_substitute]
        assert len(set(numbers)) == len(numbers)
