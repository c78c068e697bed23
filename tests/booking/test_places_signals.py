"""The "places changed" signals the entry points publish after their commits, as a cache
in front of the database subscribed to `ctx.places` sees them."""

from __future__ import annotations

import httpx

from tests.conftest import World
from yuyue.kit.signals import PlaceChange, PlacesChanged
from yuyue.web.context import AppContext


class TestPlacesChanged:
    async def test_a_booking_signals_taken_and_its_cancellation_returned(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        heard: list[PlacesChanged] = []
        ctx.places.subscribe(heard.append)
        booking = {"patient_id": str(world.patient.id), "session_id": str(world.session.id)}
        booked = await client.post("/api/v1/appointments", json=booking, headers=world.auth)
        assert booked.status_code == 201, booked.text
        assert heard == [PlacesChanged(world.hospital.id, world.session.id, PlaceChange.TAKEN)]
        cancelled = await client.post(
            f"/api/v1/appointments/{booked.json()['id']}/cancel", headers=world.auth
        )
        assert cancelled.status_code == 200, cancelled.text
        assert heard[1:] == [
            PlacesChanged(world.hospital.id, world.session.id, PlaceChange.RETURNED)
        ]

    async def test_a_refusal_changes_no_places_and_signals_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        heard: list[PlacesChanged] = []
        booking = {"patient_id": str(world.patient.id), "session_id": str(world.session.id)}
        assert (
            await client.post("/api/v1/appointments", json=booking, headers=world.auth)
        ).status_code == 201
        ctx.places.subscribe(heard.append)
        again = await client.post("/api/v1/appointments", json=booking, headers=world.auth)
        assert again.status_code == 409
        assert heard == []
