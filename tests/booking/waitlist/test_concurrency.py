"""Returned places racing each other and racing ordinary bookings, over HTTP: every request
in its own transaction (its own connection on PostgreSQL). Exact counts on both databases."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.booking.waitlist.support import (
    active_appointments,
    entries,
    full_session,
    join_in_order,
    new_patients,
    taken,
)
from tests.conftest import World
from yuyue.booking.states import AppointmentStatus
from yuyue.booking.waitlist.states import WaitlistStatus
from yuyue.web.context import AppContext

W = WaitlistStatus


async def cancel(client: httpx.AsyncClient, world: World, appointment_id: object) -> int:
    response = await client.post(
        f"/api/v1/appointments/{appointment_id}/cancel", headers=world.auth
    )
    return response.status_code


class TestSimultaneousCancellations:
    async def test_ten_places_returned_at_once_go_to_ten_different_waiters_in_line_order(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world, capacity=10)
        waiters = await new_patients(ctx, world, 12)
        await join_in_order(ctx, world, full.clinic, waiters)
        answers = await asyncio.gather(*[cancel(client, world, a) for a in full.appointments])
        assert Counter(answers) == {200: 10}
        line = await entries(ctx, full.clinic)
        assert [e.status for e in line] == [W.OFFERED] * 10 + [W.WAITING] * 2
        active = await active_appointments(ctx, full.clinic)
        holders = [a.patient_id for a in active]
        assert sorted(map(str, holders)) == sorted(str(w.id) for w in waiters[:10])
        assert {a.status for a in active} == {AppointmentStatus.HELD}
        assert sorted(a.sequence_number for a in active) == list(range(1, 11))
        assert {e.offer_appointment_id for e in line[:10]} == {a.id for a in active}
        assert await taken(ctx, full.clinic) == 10


class TestOffersRacingBookings:
    async def test_returned_places_reach_waiters_and_never_a_racing_booker(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world, capacity=6)
        waiters = await new_patients(ctx, world, 6)
        await join_in_order(ctx, world, full.clinic, waiters)
        bookers = await new_patients(ctx, world, 60)

        async def book(patient_id: object) -> int:
            response = await client.post(
                "/api/v1/appointments",
                json={"patient_id": str(patient_id), "session_id": str(full.clinic.id)},
                headers=world.auth,
            )
            return response.status_code

        answers = await asyncio.gather(
            *[cancel(client, world, a) for a in full.appointments],
            *[book(p.id) for p in bookers],
        )
        assert Counter(answers[:6]) == {200: 6}
        assert Counter(answers[6:]) == {409: 60}
        assert [e.status for e in await entries(ctx, full.clinic)] == [W.OFFERED] * 6
        active = await active_appointments(ctx, full.clinic)
        assert sorted(str(a.patient_id) for a in active) == sorted(str(w.id) for w in waiters)
        assert await taken(ctx, full.clinic) == 6

    async def test_places_beyond_the_line_return_to_the_pool_without_overbooking(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world, capacity=8)
        waiters = await new_patients(ctx, world, 3)
        await join_in_order(ctx, world, full.clinic, waiters)
        bookers = await new_patients(ctx, world, 40)

        async def book(patient_id: object) -> int:
            response = await client.post(
                "/api/v1/appointments",
                json={"patient_id": str(patient_id), "session_id": str(full.clinic.id)},
                headers=world.auth,
            )
            return response.status_code

        answers = await asyncio.gather(
            *[cancel(client, world, a) for a in full.appointments],
            *[book(p.id) for p in bookers],
        )
        assert Counter(answers[:8]) == {200: 8}
        booked = answers[8:].count(201)
        assert set(answers[8:]) <= {201, 409}
        # Three places went down the line; the other five were open to everyone.
        assert [e.status for e in await entries(ctx, full.clinic)] == [W.OFFERED] * 3
        assert booked <= 5
        active = await active_appointments(ctx, full.clinic)
        assert len(active) == 3 + booked == await taken(ctx, full.clinic)
        assert len({a.sequence_number for a in active}) == len(active)
        assert {str(w.id) for w in waiters} <= {str(a.patient_id) for a in active}
