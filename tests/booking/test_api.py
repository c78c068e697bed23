"""Booking over HTTP on SQLite and PostgreSQL: the write path, refusals and their effects."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.helpers import assert_problem, pool_state, row_counts, staff_auth
from yuyue.booking.models import Appointment
from yuyue.jobs import expire_holds_once
from yuyue.kit.clock import FixedClock
from yuyue.notifications.models import OutboxMessage
from yuyue.scheduling.enums import Period
from yuyue.scheduling.models import ClinicSession, PoolRatio
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext


async def book(
    client: httpx.AsyncClient,
    world: World,
    *,
    patient: Any = None,
    session: Any = None,
    **extra: Any,
) -> httpx.Response:
    body = {
        "patient_id": str((patient or world.patient).id),
        "session_id": str((session or world.session).id),
        **extra,
    }
    return await client.post("/api/v1/appointments", json=body, headers=world.auth)


async def remaining(client: httpx.AsyncClient, world: World, session: Any = None) -> int:
    target = session or world.session
    response = await client.get(
        "/api/v1/sessions",
        params={"date_from": target.date.isoformat(), "date_to": target.date.isoformat()},
        headers=world.auth,
    )
    assert response.status_code == 200, response.text
    return int(next(s["remaining"] for s in response.json() if s["id"] == str(target.id)))


async def app_only_session(
    ctx: AppContext,
    world: World,
    *,
    capacity: int = 1,
    fee: bool = False,
    days: int = 0,
    doctor: bool = True,
) -> ClinicSession:
    """An afternoon session whose places all sit in the pool the app channel draws from."""
    async with ctx.db.session_scope() as s:
        await s.execute(delete(PoolRatio).where(PoolRatio.hospital_id == world.hospital.id))
        s.add(PoolRatio(hospital_id=world.hospital.id, pool="appointment", percent=100))
        await s.flush()
        return await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.fee_level if fee else world.free_level,
            doctor=world.doctor if doctor else None,
            day=VISIT_DAY + timedelta(days=days),
            period=Period.AFTERNOON,
            start=time(13, 30),
            end=time(15, 30),
            capacity=capacity,
            now=NOW,
        )


async def count(ctx: AppContext, model: Any, *conditions: Any) -> int:
    async with ctx.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)


class TestBook:
    async def test_free_level_books_at_once_with_a_voucher(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        response = await book(client, world)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "booked"
        assert body["sequence_number"] == 1
        assert body["voucher"]["code"].isdigit() and len(body["voucher"]["code"]) == 8
        assert body["voucher"]["token"]
        assert body["session"]["id"] == str(world.session.id)
        assert body["slot"]["start"] == "08:00:00"
        assert body["cancellation_deadline"] == "2026-11-22T07:00:00Z"
        assert await remaining(client, world) == 14

    async def test_fee_level_leaves_a_hold_that_payment_confirms(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        clinic = await app_only_session(ctx, world, fee=True, capacity=3)
        held = await book(client, world, session=clinic)
        assert held.status_code == 201, held.text
        assert held.json()["status"] == "held"
        assert held.json()["voucher"] is None
        assert held.json()["hold_expires_at"] == "2026-11-20T02:15:00Z"
        finance = await staff_auth(client, ctx, world, Role.FINANCE)
        paid = await client.post(
            f"/api/v1/appointments/{held.json()['id']}/confirm-payment",
            json={"paid_fen": 8000, "payment_reference": "wx-4200001"},
            headers=finance,
        )
        assert paid.status_code == 200, paid.text
        assert paid.json()["status"] == "booked"
        assert paid.json()["voucher"]["code"].isdigit()
        assert paid.json()["booked_at"] == "2026-11-20T02:00:00Z"

    async def test_wrong_amount_or_second_payment_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        clinic = await app_only_session(ctx, world, fee=True, capacity=3)
        held = (await book(client, world, session=clinic)).json()
        finance = await staff_auth(client, ctx, world, Role.FINANCE)
        url = f"/api/v1/appointments/{held['id']}/confirm-payment"
        wrong = await client.post(
            url, json={"paid_fen": 100, "payment_reference": "x"}, headers=finance
        )
        assert_problem(wrong, 409, "payment_mismatch")
        ok = await client.post(
            url, json={"paid_fen": 8000, "payment_reference": "x"}, headers=finance
        )
        assert ok.status_code == 200
        again = await client.post(
            url, json={"paid_fen": 8000, "payment_reference": "x"}, headers=finance
        )
        assert_problem(again, 409, "invalid_state")

    async def test_sequence_numbers_follow_slot_order(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        clinic = await app_only_session(ctx, world, capacity=8)
        starts: list[str] = []
        numbers: list[int] = []
        async with ctx.db.session_scope() as s:
            patients = [
                await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
                for _ in range(8)
            ]
        for patient in patients:
            body = (await book(client, world, patient=patient, session=clinic)).json()
            starts.append(body["slot"]["start"])
            numbers.append(body["sequence_number"])
        assert numbers == list(range(1, 9))
        assert starts == sorted(starts)
        assert starts[0] == "13:30:00" and starts[-1] == "15:00:00"

    async def test_a_chosen_slot_is_honoured(self, client: httpx.AsyncClient, world: World) -> None:
        slots = (
            await client.get(f"/api/v1/sessions/{world.session.id}/slots", headers=world.auth)
        ).json()
        assert len(slots) == 8
        assert sum(s["remaining"] for s in slots) == 15
        response = await book(client, world, slot_id=slots[3]["id"])
        assert response.status_code == 201, response.text
        assert response.json()["slot"]["id"] == slots[3]["id"]

    async def test_a_slot_of_another_session_is_not_found(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        other = await app_only_session(ctx, world, capacity=2, days=1)
        slots = (await client.get(f"/api/v1/sessions/{other.id}/slots", headers=world.auth)).json()
        before = await row_counts(ctx.db)
        response = await book(client, world, slot_id=slots[0]["id"])
        body = assert_problem(response, 404, "not_found")
        assert "时段" in body["detail"]
        assert await row_counts(ctx.db) == before

    async def test_every_change_is_audited_and_announced(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        booked = (await book(client, world)).json()
        await client.post(f"/api/v1/appointments/{booked['id']}/cancel", headers=world.auth)
        async with ctx.db.read() as s:
            audit = (
                await s.scalars(select(AuditEntry).order_by(AuditEntry.at, AuditEntry.action))
            ).all()
            kinds = (
                await s.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.created_at))
            ).all()
        assert [a.action for a in audit] == ["book", "cancel"]
        assert (
            audit[0].before is None
            and audit[0].after is not None
            and audit[0].after["status"] == "booked"
        )
        assert audit[1].before is not None and audit[1].before["status"] == "booked"
        assert audit[1].after is not None and audit[1].after["status"] == "cancelled"
        assert audit[0].actor.startswith("channel:app:")
        # The day-before reminder was queued with the booking (and withdrawn by the cancel).
        assert sorted(kinds) == ["booking_confirmed", "cancelled", "reminder"]


class TestSoldOut:
    async def test_sold_out_suggests_the_same_doctors_next_session(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        full = await app_only_session(ctx, world, capacity=1)
        later = await app_only_session(ctx, world, capacity=5, days=1)
        assert (await book(client, world, session=full)).status_code == 201
        before = await row_counts(ctx.db)
        refused = await book(client, world, patient=world.other_patient, session=full)
        body = assert_problem(refused, 409, "sold_out")
        suggested = [a["session_id"] for a in body["alternatives"]]
        assert str(later.id) in suggested
        assert await row_counts(ctx.db) == before

    async def test_a_full_slot_suggests_other_slots_of_the_session(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        clinic = await app_only_session(ctx, world, capacity=4)
        slots = (await client.get(f"/api/v1/sessions/{clinic.id}/slots", headers=world.auth)).json()
        assert (
            await book(client, world, session=clinic, slot_id=slots[0]["id"])
        ).status_code == 201
        refused = await book(
            client, world, patient=world.other_patient, session=clinic, slot_id=slots[0]["id"]
        )
        body = assert_problem(refused, 409, "sold_out")
        assert [a["slot_id"] for a in body["alternatives"] if a["kind"] == "slot"] == [
            s["id"] for s in slots[1:4]
        ]

    async def test_a_returned_place_is_bookable_at_once_despite_the_cache(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        clinic = await app_only_session(ctx, world, capacity=1)
        first = (await book(client, world, session=clinic)).json()
        assert_problem(
            await book(client, world, patient=world.other_patient, session=clinic), 409, "sold_out"
        )
        # The second refusal comes from memory, not the database.
        assert ctx.sold_out.get((clinic.id, ("app", "appointment"), None)) is not None
        assert_problem(
            await book(client, world, patient=world.other_patient, session=clinic), 409, "sold_out"
        )
        cancelled = await client.post(
            f"/api/v1/appointments/{first['id']}/cancel", headers=world.auth
        )
        assert cancelled.status_code == 200, cancelled.text
        retry = await book(client, world, patient=world.other_patient, session=clinic)
        assert retry.status_code == 201, retry.text
        assert retry.json()["sequence_number"] == 1


class TestIdempotency:
    async def test_a_retry_returns_the_first_answer_and_books_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        body = {"patient_id": str(world.patient.id), "session_id": str(world.session.id)}
        headers = {**world.auth, "Idempotency-Key": "retry-1"}
        first = await client.post("/api/v1/appointments", json=body, headers=headers)
        second = await client.post("/api/v1/appointments", json=body, headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second.headers["Idempotent-Replayed"] == "true"
        assert await count(ctx, Appointment) == 1

    async def test_concurrent_twins_book_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        body = {"patient_id": str(world.patient.id), "session_id": str(world.session.id)}
        headers = {**world.auth, "Idempotency-Key": "twin"}
        answers = await asyncio.gather(
            *[client.post("/api/v1/appointments", json=body, headers=headers) for _ in range(10)]
        )
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["id"] for a in answers}) == 1
        assert await count(ctx, Appointment) == 1

    async def test_a_key_reused_for_another_request_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        headers = {**world.auth, "Idempotency-Key": "reused"}
        first = {"patient_id": str(world.patient.id), "session_id": str(world.session.id)}
        assert (
            await client.post("/api/v1/appointments", json=first, headers=headers)
        ).status_code == 201
        before = await row_counts(ctx.db)
        other = {"patient_id": str(world.other_patient.id), "session_id": str(world.session.id)}
        assert_problem(
            await client.post("/api/v1/appointments", json=other, headers=headers),
            422,
            "idempotency_key_reused",
        )
        assert await row_counts(ctx.db) == before

    async def test_a_malformed_key_is_refused(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        body = {"patient_id": str(world.patient.id), "session_id": str(world.session.id)}
        response = await client.post(
            "/api/v1/appointments", json=body, headers={**world.auth, "Idempotency-Key": "x" * 201}
        )
        assert_problem(response, 422, "invalid_idempotency_key")


class TestCancel:
    async def test_cancel_returns_the_place_to_its_pool_at_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        booked = (await book(client, world)).json()
        assert await remaining(client, world) == 14
        response = await client.post(
            f"/api/v1/appointments/{booked['id']}/cancel", headers=world.auth
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        assert response.json()["cancel_reason"] == "patient"
        assert response.json()["voucher"] is None
        assert await remaining(client, world) == 15

    @pytest.mark.parametrize(
        "body",
        [
            {"reason": "家里有事，改天再来"},
            {"note": "家里有事，改天再来"},
            {"reason": "家里有事，改天再来", "note": "家里有事，改天再来"},
        ],
        ids=["reason", "note", "both-agreeing"],
    )
    async def test_the_reason_for_cancelling_is_kept_under_either_name(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, body: dict[str, str]
    ) -> None:
        booked = (await book(client, world)).json()
        response = await client.post(
            f"/api/v1/appointments/{booked['id']}/cancel", json=body, headers=world.auth
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        async with ctx.db.read() as s:
            appointment = await s.get(Appointment, uuid.UUID(booked["id"]))
            message = await s.scalar(
                select(OutboxMessage).where(
                    OutboxMessage.appointment_id == uuid.UUID(booked["id"]),
                    OutboxMessage.kind == "cancelled",
                )
            )
        assert appointment is not None and appointment.cancel_note == "家里有事，改天再来"
        assert message is not None and message.payload["note"] == "家里有事，改天再来"

    async def test_a_reason_and_a_different_note_are_refused_and_change_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        booked = (await book(client, world)).json()
        before = await row_counts(ctx.db)
        pools = await pool_state(ctx.db)
        response = await client.post(
            f"/api/v1/appointments/{booked['id']}/cancel",
            json={"reason": "家里有事", "note": "不想去了"},
            headers=world.auth,
        )
        body = assert_problem(response, 422, "validation_error")
        assert [e["field"] for e in body["errors"]] == ["reason"]
        assert await row_counts(ctx.db) == before
        assert await pool_state(ctx.db) == pools
        again = await client.get(f"/api/v1/appointments/{booked['id']}", headers=world.auth)
        assert again.json()["status"] == "booked"

    async def test_cancel_after_the_deadline_is_refused_and_changes_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        booked = (await book(client, world)).json()
        clock.advance(timedelta(days=2, hours=5))  # Sunday 15:00 Shanghai: the deadline
        before = await row_counts(ctx.db)
        pools = await pool_state(ctx.db)
        response = await client.post(
            f"/api/v1/appointments/{booked['id']}/cancel",
            headers={**world.auth, "Accept-Language": "en"},
        )
        body = assert_problem(response, 409, "cancellation_closed")
        assert "Sun 22 Nov 15:00" in body["detail"]
        assert await row_counts(ctx.db) == before
        assert await pool_state(ctx.db) == pools

    async def test_a_registrar_cancelling_after_the_deadline_needs_a_supervisor(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        booked = (await book(client, world)).json()
        clock.advance(timedelta(days=2, hours=6))
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        before = await row_counts(ctx.db)
        response = await client.post(
            f"/api/v1/appointments/{booked['id']}/cancel", headers=registrar
        )
        assert assert_problem(response, 409, "approval_required")["change"] == "cancel_late"
        assert await row_counts(ctx.db) == before

    async def test_a_registrar_cancels_before_the_deadline_at_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        booked = (await book(client, world)).json()
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        response = await client.post(
            f"/api/v1/appointments/{booked['id']}/cancel", headers=registrar
        )
        assert response.status_code == 200, response.text
        assert response.json()["cancel_reason"] == "staff"

    async def test_cancelling_twice_is_a_wrong_state(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        booked = (await book(client, world)).json()
        url = f"/api/v1/appointments/{booked['id']}/cancel"
        assert (await client.post(url, headers=world.auth)).status_code == 200
        assert_problem(await client.post(url, headers=world.auth), 409, "invalid_state")


class TestReschedule:
    async def test_reschedule_moves_the_booking(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        later = await app_only_session(ctx, world, capacity=3, days=1)
        booked = (await book(client, world)).json()
        moved = await client.post(
            f"/api/v1/appointments/{booked['id']}/reschedule",
            json={"session_id": str(later.id)},
            headers=world.auth,
        )
        assert moved.status_code == 201, moved.text
        assert moved.json()["session"]["id"] == str(later.id)
        old = (await client.get(f"/api/v1/appointments/{booked['id']}", headers=world.auth)).json()
        assert old["status"] == "cancelled" and old["cancel_reason"] == "rescheduled"
        assert await remaining(client, world) == 15

    async def test_the_old_place_is_kept_when_the_new_one_is_gone(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        full = await app_only_session(ctx, world, capacity=1, days=1)
        assert (
            await book(client, world, patient=world.other_patient, session=full)
        ).status_code == 201
        booked = (await book(client, world)).json()
        before = await row_counts(ctx.db)
        pools = await pool_state(ctx.db)
        refused = await client.post(
            f"/api/v1/appointments/{booked['id']}/reschedule",
            json={"session_id": str(full.id)},
            headers=world.auth,
        )
        assert_problem(refused, 409, "sold_out")
        kept = (await client.get(f"/api/v1/appointments/{booked['id']}", headers=world.auth)).json()
        assert kept["status"] == "booked"
        assert await row_counts(ctx.db) == before
        assert await pool_state(ctx.db) == pools

    async def test_reschedule_within_the_same_session_to_another_slot(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        slots = (
            await client.get(f"/api/v1/sessions/{world.session.id}/slots", headers=world.auth)
        ).json()
        booked = (await book(client, world, slot_id=slots[0]["id"])).json()
        moved = await client.post(
            f"/api/v1/appointments/{booked['id']}/reschedule",
            json={"session_id": str(world.session.id), "slot_id": slots[5]["id"]},
            headers=world.auth,
        )
        assert moved.status_code == 201, moved.text
        assert moved.json()["slot"]["id"] == slots[5]["id"]


class TestHolds:
    async def test_an_expired_hold_returns_its_place(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        clinic = await app_only_session(ctx, world, capacity=2, fee=True)
        held = (await book(client, world, session=clinic)).json()
        assert await remaining(client, world, clinic) == 1
        clock.advance(timedelta(minutes=14, seconds=59))
        assert await expire_holds_once(ctx) == []
        clock.advance(timedelta(seconds=1))
        assert await expire_holds_once(ctx) == [clinic.id]
        assert await remaining(client, world, clinic) == 2
        expired = (
            await client.get(f"/api/v1/appointments/{held['id']}", headers=world.auth)
        ).json()
        assert expired["status"] == "expired"
        assert await count(ctx, OutboxMessage, OutboxMessage.kind == "hold_expired") == 1

    async def test_an_expired_hold_never_blocks_a_real_patient_before_the_sweep(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        clinic = await app_only_session(ctx, world, capacity=1, fee=True)
        assert (await book(client, world, session=clinic)).status_code == 201
        assert_problem(
            await book(client, world, patient=world.other_patient, session=clinic), 409, "sold_out"
        )
        clock.advance(timedelta(minutes=16))
        ctx.sold_out.clear()
        second = await book(client, world, patient=world.other_patient, session=clinic)
        assert second.status_code == 201, second.text
        assert second.json()["sequence_number"] == 1

    async def test_a_late_payment_books_while_the_place_is_still_there(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        clinic = await app_only_session(ctx, world, capacity=1, fee=True)
        held = (await book(client, world, session=clinic)).json()
        clock.advance(timedelta(minutes=15))
        finance = await staff_auth(client, ctx, world, Role.FINANCE)
        response = await client.post(
            f"/api/v1/appointments/{held['id']}/confirm-payment",
            json={"paid_fen": 8000, "payment_reference": "late"},
            headers=finance,
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "booked"

    async def test_a_payment_after_the_place_went_to_another_patient_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        clinic = await app_only_session(ctx, world, capacity=1, fee=True)
        held = (await book(client, world, session=clinic)).json()
        clock.advance(timedelta(minutes=15))
        assert await expire_holds_once(ctx) == [clinic.id]
        ctx.sold_out.clear()
        other = await book(client, world, patient=world.other_patient, session=clinic)
        assert other.status_code == 201, other.text
        finance = await staff_auth(client, ctx, world, Role.FINANCE)
        response = await client.post(
            f"/api/v1/appointments/{held['id']}/confirm-payment",
            json={"paid_fen": 8000, "payment_reference": "late"},
            headers=finance,
        )
        assert_problem(response, 409, "place_gone")


class TestStopClinic:
    async def test_stop_clinic_cancels_every_booking_and_queues_messages(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        a = (await book(client, world)).json()
        b = (await book(client, world, patient=world.other_patient)).json()
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
        response = await client.post(
            f"/api/v1/sessions/{world.session.id}/stop",
            json={"reason": "医生外出会诊"},
            headers=scheduler,
        )
        assert response.status_code == 200, response.text
        assert sorted(response.json()["cancelled_appointments"]) == sorted([a["id"], b["id"]])
        for appointment_id in (a["id"], b["id"]):
            body = (
                await client.get(f"/api/v1/appointments/{appointment_id}", headers=world.auth)
            ).json()
            assert body["status"] == "cancelled" and body["cancel_reason"] == "stop_clinic"
        async with ctx.db.read() as s:
            messages = (
                await s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "stop_clinic"))
            ).all()
        assert len(messages) == 2
        assert {m.payload["note"] for m in messages} == {"医生外出会诊"}
        sessions = (
            await client.get(
                "/api/v1/sessions",
                params={"date_from": "2026-11-23", "date_to": "2026-11-23"},
                headers=world.auth,
            )
        ).json()
        stopped = next(s for s in sessions if s["id"] == str(world.session.id))
        assert (
            stopped["status"] == "stopped"
            and stopped["remaining"] == 0
            and stopped["stop_reason"] == "医生外出会诊"
        )
        third = await book(client, world, patient=world.patient)
        assert_problem(third, 409, "session_stopped")

    async def test_only_schedulers_stop_clinics(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        response = await client.post(
            f"/api/v1/sessions/{world.session.id}/stop", json={"reason": "想停"}, headers=world.auth
        )
        assert_problem(response, 403, "forbidden")
        nurse = await staff_auth(client, ctx, world, Role.NURSE)
        before = await row_counts(ctx.db)
        assert_problem(
            await client.post(
                f"/api/v1/sessions/{world.session.id}/stop", json={"reason": "想停"}, headers=nurse
            ),
            403,
            "forbidden",
        )
        assert await row_counts(ctx.db) == before

    async def test_stopping_twice_is_a_wrong_state(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
        url = f"/api/v1/sessions/{world.session.id}/stop"
        assert (
            await client.post(url, json={"reason": "停诊"}, headers=scheduler)
        ).status_code == 200
        assert_problem(
            await client.post(url, json={"reason": "停诊"}, headers=scheduler), 409, "invalid_state"
        )


class TestExtraPlaces:
    async def test_extra_places_are_numbered_after_all_others(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        clinic = await app_only_session(ctx, world, capacity=1)
        assert (await book(client, world, session=clinic)).status_code == 201
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)
        added = await client.post(
            f"/api/v1/sessions/{clinic.id}/extra-places",
            json={"count": 2, "pool": "appointment"},
            headers=scheduler,
        )
        assert added.status_code == 200, added.text
        assert added.json()["capacity"] == 3
        second = await book(client, world, patient=world.other_patient, session=clinic)
        assert second.status_code == 201, second.text
        assert second.json()["sequence_number"] == 2
        assert second.json()["slot"]["start"] == "15:00:00"


class TestRulesOverHttp:
    async def test_before_release_is_refused_with_the_opening_time(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            far = await f.make_session(
                s,
                hospital=world.hospital,
                department=world.department,
                level=world.free_level,
                doctor=world.doctor,
                day=VISIT_DAY + timedelta(days=5),
                now=NOW,
            )
        before = await row_counts(ctx.db)
        body = assert_problem(await book(client, world, session=far), 409, "outside_release_window")
        assert body["opens_at"] == "2026-11-21T00:00:00+00:00"
        assert "11月21日 周六 08:00" in body["detail"]
        assert await row_counts(ctx.db) == before

    async def test_after_the_cut_off_one_sentence_writes_both_times_one_way(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        clock.advance(timedelta(days=2, hours=7))  # Sunday 17:00 Shanghai: after the cut-off
        before = await row_counts(ctx.db)
        sentences = {}
        for language in ("zh-CN", "en"):
            response = await client.post(
                "/api/v1/appointments",
                json={"patient_id": str(world.patient.id), "session_id": str(world.session.id)},
                headers={**world.auth, "Accept-Language": language},
            )
            sentences[language] = assert_problem(response, 409, "booking_closed")["detail"]
        assert sentences == {
            "zh-CN": "该出诊的预约已截止（截止时间 11月22日 周日 16:00）。"
            "当日挂号将于 11月23日 周一 07:00 开放。",
            "en": "Booking for this session closed at Sun 22 Nov 16:00. "
            "Same-day registration opens at Mon 23 Nov 07:00.",
        }
        assert not any(re.search(r"\d{4}-\d{2}-\d{2}", s) for s in sentences.values())
        assert await row_counts(ctx.db) == before

    async def test_age_restriction_of_paediatrics(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            paediatrics = await f.make_department(
                s, hospital=world.hospital, name="儿科", max_age=14
            )
            clinic = await f.make_session(
                s,
                hospital=world.hospital,
                department=paediatrics,
                level=world.free_level,
                day=VISIT_DAY,
                now=NOW,
            )
        before = await row_counts(ctx.db)
        body = assert_problem(await book(client, world, session=clinic), 409, "age_not_allowed")
        assert "儿科" in body["detail"] and "36" in body["detail"]
        assert await row_counts(ctx.db) == before

    async def test_one_booking_per_department_per_day(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        afternoon = await app_only_session(ctx, world, capacity=3, doctor=False)
        assert (await book(client, world)).status_code == 201
        body = assert_problem(await book(client, world, session=afternoon), 409, "limit_exceeded")
        assert body["limit"] == "per_department_per_day" and body["maximum"] == 1

    async def test_blacklisted_patient_cannot_self_book(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await staff_auth(client, ctx, world, Role.ADMIN)
        created = await client.post(
            "/api/v1/blacklist",
            json={
                "patient_id": str(world.patient.id),
                "reason": "爽约3次",
                "ends_at": "2027-05-20T00:00:00Z",
            },
            headers=admin,
        )
        assert created.status_code == 201, created.text
        body = assert_problem(await book(client, world), 403, "blacklisted")
        assert body["until"].startswith("2027-05-20") and "爽约3次" in body["detail"]
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        at_window = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(world.patient.id), "session_id": str(world.session.id)},
            headers=registrar,
        )
        assert at_window.status_code == 201, at_window.text
        assert at_window.json()["channel"] == "window"
