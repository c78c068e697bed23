"""Availability reads: honest session and slot lists (`bookable_now`, `opens_at`, by the
rules booking enforces) and the kept answers that make them fast (`booking/readpath.py`).

The world's session is Monday 2026-11-23, 08:00–12:00 in Shanghai, default policy: released
on the 16th at 08:00, advance booking until Sunday 16:00, same-day registration from 07:00
until 11:00. Instants below are UTC (Shanghai is UTC+8).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from sqlalchemy import update

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.helpers import assert_problem, staff_auth
from yuyue.booking import listing
from yuyue.booking.readpath import AvailabilityFastPath, Built, ReadCache
from yuyue.booking.rules import Policy
from yuyue.kit.clock import FixedClock
from yuyue.scheduling.enums import SessionStatus
from yuyue.scheduling.models import ClinicSession, Department, SlotPool
from yuyue.scheduling.schemas import SessionRead, SlotRead
from yuyue.staff.enums import Role
from yuyue.web.context import AppContext

EVENING_BEFORE = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)  # Sunday 18:00, after the cut-off
EARLY_MORNING = datetime(2026, 11, 22, 22, 59, tzinfo=UTC)  # Monday 06:59
SAME_DAY_OPENS = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # Monday 07:00
RELEASE = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)  # Monday the 16th, 08:00
WINDOW = {"date_from": "2026-11-16", "date_to": "2026-11-24"}


def instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


async def listed(
    client: httpx.AsyncClient,
    world: World,
    session_id: uuid.UUID | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The session as the default list (today and the release window) shows it."""
    response = await client.get("/api/v1/sessions", headers={**world.auth, **(headers or {})})
    assert response.status_code == 200, response.text
    wanted = str(session_id or world.session.id)
    found: dict[str, Any] = next(s for s in response.json() if s["id"] == wanted)
    return found


async def slots(
    client: httpx.AsyncClient, world: World, session_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/v1/sessions/{session_id or world.session.id}/slots", headers=world.auth
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def book(
    client: httpx.AsyncClient, world: World, patient_id: uuid.UUID, session_id: uuid.UUID
) -> httpx.Response:
    return await client.post(
        "/api/v1/appointments",
        json={"patient_id": str(patient_id), "session_id": str(session_id)},
        headers=world.auth,
    )


async def fill_app_places(ctx: AppContext, session_id: uuid.UUID) -> None:
    """Takes every place the app channel could book, as other processes would."""
    async with ctx.db.session_scope() as s:
        await s.execute(
            update(SlotPool)
            .where(SlotPool.session_id == session_id, SlotPool.pool == "appointment")
            .values(taken=SlotPool.capacity)
        )


# --- honest lists -----------------------------------------------------------------------------


class TestHonestLists:
    @pytest.mark.parametrize(
        "moment", [EVENING_BEFORE, EARLY_MORNING], ids=["18:00-the-day-before", "06:59-on-the-day"]
    )
    async def test_between_cutoff_and_same_day_registration_nothing_is_offered(
        self, client: httpx.AsyncClient, clock: FixedClock, world: World, moment: datetime
    ) -> None:
        clock.set(moment)

        session = await listed(client, world)
        times = await slots(client, world)

        assert session["remaining"] > 0 and session["status"] == "open"
        assert session["bookable_now"] is False
        assert instant(session["opens_at"]) == SAME_DAY_OPENS
        assert times and all(not t["bookable_now"] for t in times)
        assert {instant(t["opens_at"]) for t in times if t["remaining"] > 0} == {SAME_DAY_OPENS}
        # ...and booking says the same, naming the same instant.
        refused = assert_problem(
            await book(client, world, world.patient.id, world.session.id), 409, "booking_closed"
        )
        assert instant(refused["reopens_at"]) == SAME_DAY_OPENS

    @pytest.mark.parametrize(
        "moment", [NOW, SAME_DAY_OPENS], ids=["friday-10:00", "07:00-on-the-day"]
    )
    async def test_when_it_can_be_booked_the_list_says_so_and_booking_succeeds(
        self, client: httpx.AsyncClient, clock: FixedClock, world: World, moment: datetime
    ) -> None:
        clock.set(moment)

        session = await listed(client, world)
        times = await slots(client, world)

        assert session["bookable_now"] is True and session["opens_at"] is None
        assert [t["bookable_now"] for t in times] == [t["remaining"] > 0 for t in times]
        assert all(t["opens_at"] is None for t in times)
        booked = await book(client, world, world.patient.id, world.session.id)
        assert booked.status_code == 201, booked.text

    async def test_before_the_release_it_opens_at_the_release(
        self, client: httpx.AsyncClient, clock: FixedClock, world: World
    ) -> None:
        clock.set(RELEASE - timedelta(seconds=1))

        session = await listed(client, world)

        assert session["bookable_now"] is False
        assert instant(session["opens_at"]) == RELEASE
        refused = assert_problem(
            await book(client, world, world.patient.id, world.session.id),
            409,
            "outside_release_window",
        )
        assert instant(refused["opens_at"]) == RELEASE

    async def test_a_full_session_is_not_bookable_and_announces_no_opening(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await fill_app_places(ctx, world.session.id)

        session = await listed(client, world)

        assert session["remaining"] == 0
        assert session["bookable_now"] is False and session["opens_at"] is None
        assert all(
            not t["bookable_now"] and t["opens_at"] is None for t in await slots(client, world)
        )
        assert_problem(
            await book(client, world, world.patient.id, world.session.id), 409, "sold_out"
        )

    async def test_stopped_and_past_sessions_never_open(
        self, client: httpx.AsyncClient, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            other = await f.make_session(
                s,
                hospital=world.hospital,
                department=world.department,
                level=world.free_level,
                doctor=world.doctor,
                day=VISIT_DAY,
                start=world.session.start_time.replace(hour=14),
                end=world.session.end_time.replace(hour=17),
                now=NOW,
            )
            await s.execute(
                update(ClinicSession)
                .where(ClinicSession.id == other.id)
                .values(status=SessionStatus.STOPPED)
            )
        stopped = await listed(client, world, other.id)
        assert stopped["bookable_now"] is False and stopped["opens_at"] is None

        clock.set(datetime(2026, 11, 23, 5, 0, tzinfo=UTC))  # Monday 13:00, morning is over
        past = await listed(client, world)
        assert past["bookable_now"] is False and past["opens_at"] is None
        assert_problem(
            await book(client, world, world.patient.id, world.session.id), 409, "booking_closed"
        )

    async def test_the_registrar_window_books_through_the_gap(
        self, client: httpx.AsyncClient, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        clock.set(EVENING_BEFORE)
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)

        response = await client.get("/api/v1/sessions", params=WINDOW, headers=registrar)

        assert response.status_code == 200, response.text
        session = next(s for s in response.json() if s["id"] == str(world.session.id))
        assert session["bookable_now"] is True and session["opens_at"] is None

    async def test_listing_and_booking_agree_at_every_hour_of_the_last_two_days(
        self, client: httpx.AsyncClient, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        # The rules, not the cache, are under test: no answer is kept.
        ctx.reads.ttl = 0
        async with ctx.db.session_scope() as s:
            roomy = await f.make_session(
                s,
                hospital=world.hospital,
                department=world.department,
                level=world.free_level,
                day=VISIT_DAY,
                capacity=120,
                now=NOW,
            )
            patients = [
                await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
                for _ in range(48)
            ]
        sunday = datetime(2026, 11, 21, 16, 0, tzinfo=UTC)  # Sunday 00:00 in Shanghai
        for hour, patient in enumerate(patients):
            clock.set(sunday + timedelta(hours=hour))
            session = await listed(client, world, roomy.id)

            answer = await book(client, world, patient.id, roomy.id)

            local = f"{'Sun' if hour < 24 else 'Mon'} {hour % 24:02d}:00"
            if session["bookable_now"]:
                assert answer.status_code == 201, (local, answer.text)
                assert (await listed(client, world, roomy.id))["remaining"] == session[
                    "remaining"
                ] - 1
                continue
            refused = answer.json()
            assert answer.status_code == 409 and refused["code"] == "booking_closed", local
            assert instant(refused.get("reopens_at")) == instant(session["opens_at"]), local
        # Bookable 00:00–15:00 on Sunday and 07:00–10:00 on Monday: 20 of the app's 72.
        assert (await listed(client, world, roomy.id))["remaining"] == 72 - 20


class TestBoardAndDirectReadsAgree:
    """Most answers are rendered from the board (the coming days read in one go); questions
    reaching outside it, and sessions whose places just changed here, are read directly.
    Both must give the same bytes."""

    @pytest.mark.parametrize(
        "moment",
        [NOW, EVENING_BEFORE, EARLY_MORNING, SAME_DAY_OPENS, RELEASE - timedelta(hours=1)],
        ids=["open", "evening-gap", "morning-gap", "same-day", "before-release"],
    )
    async def test_same_answers_from_the_board_and_from_the_database(
        self,
        client: httpx.AsyncClient,
        ctx: AppContext,
        clock: FixedClock,
        world: World,
        moment: datetime,
    ) -> None:
        async with ctx.db.session_scope() as s:
            for hour, capacity in ((13, 1), (15, 4)):
                extra = await f.make_session(
                    s,
                    hospital=world.hospital,
                    department=world.department,
                    level=world.free_level,
                    day=VISIT_DAY,
                    start=world.session.start_time.replace(hour=hour),
                    end=world.session.end_time.replace(hour=hour + 2),
                    capacity=capacity,
                    now=NOW,
                )
            await s.execute(
                update(ClinicSession)
                .where(ClinicSession.id == extra.id)
                .values(status=SessionStatus.STOPPED, stop_reason="外出会诊")
            )
        await fill_app_places(ctx, world.session.id)
        clock.set(moment)
        paths = [
            "/api/v1/sessions",
            f"/api/v1/sessions?department_id={world.department.id}",
            f"/api/v1/sessions?doctor_id={world.doctor.id}",
            *(f"/api/v1/sessions/{s}/slots" for s in await self.session_ids(client, world)),
        ]

        from_board = [await client.get(p, headers=world.auth) for p in paths]
        assert ctx.reads._boards, "the answers came from a board"
        ctx.reads = ReadCache(0.0)  # keeps nothing, reads every answer directly
        direct = [await client.get(p, headers=world.auth) for p in paths]

        for path, board_answer, direct_answer in zip(paths, from_board, direct, strict=True):
            assert board_answer.status_code == direct_answer.status_code == 200, path
            assert board_answer.content == direct_answer.content, path

    @staticmethod
    async def session_ids(client: httpx.AsyncClient, world: World) -> list[str]:
        response = await client.get("/api/v1/sessions", headers=world.auth)
        ids = [s["id"] for s in response.json()]
        assert len(ids) == 3
        return ids


# --- kept answers -------------------------------------------------------------------------------


class TestKeptAnswers:
    async def test_a_place_taken_shows_within_the_bound_and_one_returned_at_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        # The bound is the setting's whole second, so that a slow machine still reads the
        # kept answer right after booking.
        ctx.reads.ttl = 1.0
        before = await listed(client, world)
        before_slots = sum(t["remaining"] for t in await slots(client, world))

        booked = await book(client, world, world.patient.id, world.session.id)
        assert booked.status_code == 201
        # Taken places are many a second at the peak: they show once the kept answers
        # are older than the bound, not by dropping every answer at each booking.
        assert (await listed(client, world))["remaining"] == before["remaining"]
        await asyncio.sleep(1.05)

        assert (await listed(client, world))["remaining"] == before["remaining"] - 1
        assert sum(t["remaining"] for t in await slots(client, world)) == before_slots - 1
        cancelled = await client.post(
            f"/api/v1/appointments/{booked.json()['id']}/cancel", headers=world.auth
        )
        assert cancelled.status_code == 200, cancelled.text
        assert (await listed(client, world))["remaining"] == before["remaining"]

    async def test_a_clinic_stopped_here_shows_at_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        assert (await listed(client, world))["bookable_now"] is True
        scheduler = await staff_auth(client, ctx, world, Role.SCHEDULER)

        stopped = await client.post(
            f"/api/v1/sessions/{world.session.id}/stop",
            json={"reason": "医生外出会诊"},
            headers=scheduler,
        )
        assert stopped.status_code == 200, stopped.text

        session = await listed(client, world)
        assert session["status"] == "stopped" and session["remaining"] == 0
        assert session["bookable_now"] is False and session["opens_at"] is None
        assert not any(t["bookable_now"] for t in await slots(client, world))

    async def test_a_place_taken_elsewhere_shows_within_the_bound(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        seconds = [100.0]
        ctx.reads = ReadCache(1.0, monotonic=lambda: seconds[0])
        ctx.watch_places(ctx.reads)
        first = await listed(client, world)

        # Another process fills the session: this one is not told.
        await fill_app_places(ctx, world.session.id)
        seconds[0] += 0.999
        assert await listed(client, world) == first

        seconds[0] += 0.001
        assert (await listed(client, world))["remaining"] == 0
        assert all(t["remaining"] == 0 for t in await slots(client, world))

    async def test_the_list_turns_bookable_at_the_opening_instant(
        self, client: httpx.AsyncClient, clock: FixedClock, world: World
    ) -> None:
        clock.set(SAME_DAY_OPENS - timedelta(microseconds=1))
        assert (await listed(client, world))["bookable_now"] is False
        assert not any(t["bookable_now"] for t in await slots(client, world))

        clock.set(SAME_DAY_OPENS)

        assert (await listed(client, world))["bookable_now"] is True
        assert any(t["bookable_now"] for t in await slots(client, world))

    async def test_each_language_keeps_its_own_answer(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            await s.execute(
                update(Department)
                .where(Department.id == world.department.id)
                .values(name_en="Internal medicine")
            )
        for _ in range(2):
            chinese = await listed(client, world, headers={"Accept-Language": "zh-CN"})
            english = await listed(client, world, headers={"Accept-Language": "en"})
            assert chinese["department"]["name"] == "内科"
            assert english["department"]["name"] == "Internal medicine"

    async def test_answers_are_the_published_schema(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        sessions = await client.get("/api/v1/sessions", params=WINDOW, headers=world.auth)
        times = await client.get(f"/api/v1/sessions/{world.session.id}/slots", headers=world.auth)

        for response, schema in ((sessions, list[SessionRead]), (times, list[SlotRead])):
            assert response.headers["content-type"] == "application/json"
            adapter: TypeAdapter[Any] = TypeAdapter(schema)
            # Parsed and written again by the published models, nothing changes.
            assert adapter.dump_python(adapter.validate_json(response.content), mode="json") == (
                response.json()
            )

    async def test_refused_questions_are_refused_every_time(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        for _ in range(2):
            response = await client.get(
                "/api/v1/sessions",
                params={"date_from": "2026-11-24", "date_to": "2026-11-20"},
                headers=world.auth,
            )
            assert_problem(response, 422, "validation_error")
            missing = await client.get(f"/api/v1/sessions/{uuid.uuid4()}/slots", headers=world.auth)
            assert_problem(missing, 404, "not_found")

    async def test_an_unknown_key_is_refused_although_an_answer_is_kept(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        await listed(client, world)
        await slots(client, world)

        for path in ("/api/v1/sessions", f"/api/v1/sessions/{world.session.id}/slots"):
            response = await client.get(
                path, params=WINDOW, headers={"Authorization": "Bearer yk_not-a-key"}
            )
            assert_problem(response, 401, "unauthorized")


# --- the layer in front of the router ---------------------------------------------------------


class Recorder:
    """An inner ASGI app that answers 299 and counts how often it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def through(
    layer: Callable[[Any, Any, Any], Awaitable[None]],
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    await layer(scope, receive, send)
    return sent[0]["status"], sent[0]["headers"], sent[1]["body"]


class TestFastPath:
    async def test_a_kept_answer_is_served_before_the_router_exactly_as_the_route_sent_it(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        query = "date_from=2026-11-16&date_to=2026-11-24"
        slots_path = f"/api/v1/sessions/{world.session.id}/slots"
        from_route = await client.get(f"/api/v1/sessions?{query}", headers=world.auth)
        slots_from_route = await client.get(slots_path, headers=world.auth)
        inner = Recorder()
        layer = AvailabilityFastPath(inner, ctx)

        status, headers, body = await through(
            layer, "/api/v1/sessions", query=query, headers=world.auth
        )
        slot_status, slot_headers, slot_body = await through(layer, slots_path, headers=world.auth)

        assert inner.calls == 0
        assert (status, body) == (200, from_route.content)
        assert (slot_status, slot_body) == (200, slots_from_route.content)
        for sent, route in ((headers, from_route), (slot_headers, slots_from_route)):
            assert dict(sent) == {
                b"content-type": route.headers["content-type"].encode(),
                b"content-length": route.headers["content-length"].encode(),
            }

    async def test_anything_it_cannot_vouch_for_goes_to_the_router(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        query = "date_from=2026-11-16&date_to=2026-11-24"
        await client.get(f"/api/v1/sessions?{query}", headers=world.auth)
        await client.get(f"/api/v1/sessions/{world.session.id}/slots", headers=world.auth)
        staff = await staff_auth(client, ctx, world, Role.REGISTRAR)
        inner = Recorder()
        layer = AvailabilityFastPath(inner, ctx)
        upper = str(world.session.id).upper()

        for path, kwargs in [
            ("/api/v1/sessions", {"query": query}),  # no key
            ("/api/v1/sessions", {"query": query, "headers": {"Authorization": "Bearer yk_x"}}),
            ("/api/v1/sessions", {"query": query, "headers": staff}),  # not a channel key
            ("/api/v1/sessions", {"query": query + "&x=1", "headers": world.auth}),  # not kept
            ("/api/v1/sessions", {"query": query, "headers": world.auth, "method": "POST"}),
            (f"/api/v1/sessions/{upper}/slots", {"headers": world.auth}),  # another spelling
            (f"/api/v1/sessions/{world.session.id}", {"headers": world.auth}),
            ("/api/v1/departments", {"headers": world.auth}),
        ]:
            before = inner.calls
            status, _, _ = await through(layer, path, **kwargs)  # type: ignore[arg-type]
            assert (status, inner.calls) == (299, before + 1), (path, kwargs)

    async def test_a_kept_answer_past_the_bound_goes_to_the_router(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        ctx.reads.ttl = 1.0  # a whole second, so a slow machine still finds it kept
        path = f"/api/v1/sessions/{world.session.id}/slots"
        await client.get(path, headers=world.auth)
        inner = Recorder()
        layer = AvailabilityFastPath(inner, ctx)
        assert (await through(layer, path, headers=world.auth))[0] == 200

        assert (await book(client, world, world.patient.id, world.session.id)).status_code == 201
        assert (await through(layer, path, headers=world.auth))[0] == 200
        await asyncio.sleep(1.05)

        assert (await through(layer, path, headers=world.auth))[0] == 299


# --- the cache on its own -----------------------------------------------------------------------

HOSPITAL = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
A = uuid.UUID("00000000-0000-0000-0000-00000000000a")
B = uuid.UUID("00000000-0000-0000-0000-00000000000b")
AT = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def key(name: str) -> Any:
    return (HOSPITAL, "app", name, (), "zh-CN")


class Builder:
    def __init__(self, *sessions: uuid.UUID, valid_until: datetime | None = None) -> None:
        self.sessions = sessions
        self.valid_until = valid_until
        self.count = 0
        self.during: Callable[[], None] | None = None

    async def __call__(self) -> Built:
        self.count += 1
        number = self.count
        await asyncio.sleep(0)
        if self.during is not None:
            self.during()
        return Built(f"answer {number}".encode(), self.sessions, self.valid_until)


class TestReadCache:
    async def test_an_answer_is_kept_for_the_ttl_and_no_longer(self) -> None:
        seconds = [0.0]
        cache = ReadCache(1.0, monotonic=lambda: seconds[0])
        build = Builder(A)

        assert await cache.answer(key("x"), AT, build) == b"answer 1"
        seconds[0] = 0.99
        assert await cache.answer(key("x"), AT, build) == b"answer 1"
        seconds[0] = 1.0
        assert await cache.answer(key("x"), AT, build) == b"answer 2"

    async def test_a_change_drops_only_the_answers_showing_that_session(self) -> None:
        cache = ReadCache(1.0)
        only_a, both, only_b = Builder(A), Builder(A, B), Builder(B)
        for name, build in (("a", only_a), ("ab", both), ("b", only_b)):
            await cache.answer(key(name), AT, build)

        cache.changed(A)

        assert cache.get(key("a"), AT) is None and cache.get(key("ab"), AT) is None
        assert cache.get(key("b"), AT) == b"answer 1"

    async def test_an_answer_built_across_a_change_is_not_kept(self) -> None:
        cache = ReadCache(1.0)
        build = Builder(A)
        build.during = lambda: cache.changed(A)

        assert await cache.answer(key("x"), AT, build) == b"answer 1"

        assert cache.get(key("x"), AT) is None

    async def test_the_clock_passing_a_change_instant_ends_the_answer(self) -> None:
        cache = ReadCache(1.0)
        opening = AT + timedelta(minutes=5)
        await cache.answer(key("x"), AT, Builder(A, valid_until=opening))

        assert cache.get(key("x"), opening - timedelta(microseconds=1)) == b"answer 1"
        assert cache.get(key("x"), opening) is None
        assert cache.get(key("x"), AT - timedelta(seconds=1)) is None  # travelled back

    async def test_simultaneous_requests_share_one_build(self) -> None:
        cache = ReadCache(1.0)
        build = Builder(A)

        answers = await asyncio.gather(*(cache.answer(key("x"), AT, build) for _ in range(20)))

        assert set(answers) == {b"answer 1"} and build.count == 1

    async def test_a_request_after_a_change_never_waits_for_an_older_build(self) -> None:
        cache = ReadCache(1.0)
        build = Builder(A)
        first = asyncio.ensure_future(cache.answer(key("x"), AT, build))
        await asyncio.sleep(0)  # the first build is under way

        cache.changed(B)
        second = await cache.answer(key("x"), AT, build)

        assert await first == b"answer 1" and second == b"answer 2"

    async def test_anything_changed_forgets_everything_and_the_rules(self) -> None:
        cache = ReadCache(1.0)
        await cache.answer(key("x"), AT, Builder(A))
        cache.rules.put(HOSPITAL, listing.HospitalRules("Asia/Shanghai", Policy(), {}))

        cache.changed(None)

        assert cache.get(key("x"), AT) is None and cache.rules.get(HOSPITAL) is None

    async def test_no_ttl_keeps_nothing(self) -> None:
        cache = ReadCache(0.0)
        build = Builder(A)
        await cache.answer(key("x"), AT, build)
        await cache.answer(key("x"), AT, build)

        assert build.count == 2

    async def test_a_failed_build_is_not_kept_and_reaches_every_waiter(self) -> None:
        cache = ReadCache(1.0)

        async def fail() -> Built:
            await asyncio.sleep(0)
            raise LookupError("no")

        results = await asyncio.gather(
            *(cache.answer(key("x"), AT, fail) for _ in range(3)), return_exceptions=True
        )

        assert all(isinstance(r, LookupError) for r in results)
        assert cache.get(key("x"), AT) is None


def test_json_instants_are_written_like_the_published_models() -> None:
    from yuyue.booking.readpath import utc_text

    moment = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    dumped = TypeAdapter(datetime).dump_python(moment, mode="json")

    assert utc_text(moment) == dumped == "2026-11-22T23:00:00Z"
    assert json.loads(json.dumps(utc_text(None))) is None
