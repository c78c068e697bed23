"""Announcements over the API, on SQLite and PostgreSQL: the outpatient office posts and
withdraws (audited), anyone reads the ones in force, a bad post changes nothing, and texting
reaches each concerned patient exactly once and nobody else."""

from __future__ import annotations

import uuid
from datetime import time, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.helpers import assert_problem, row_counts, staff_auth
from tests.notifications.test_delivery import FakeSms, app_actor
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.kit.clock import FixedClock
from yuyue.notifications.delivery import Senders, deliver_due
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.models import OutboxMessage
from yuyue.operations.announcements import service
from yuyue.patients.models import Patient
from yuyue.scheduling.enums import Period
from yuyue.scheduling.models import BookingPolicy, Campus, ClinicSession, Department
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext

URL = "/api/v1/announcements"
IN_TWO_DAYS = (NOW + timedelta(days=2)).isoformat()
IN_FOUR_DAYS = (NOW + timedelta(days=4)).isoformat()


def notice(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "general",
        "severity": "warning",
        "title": "停车场施工",
        "body": "东门停车场暂停使用，请从北门进入。",
        "title_en": "Car park works",
        "body_en": "The east car park is closed; please use the north gate.",
        "ends_at": IN_TWO_DAYS,
    }
    body.update(changes)
    return body


async def scheduler(client: httpx.AsyncClient, ctx: AppContext, world: World) -> dict[str, str]:
    return await staff_auth(client, ctx, world, Role.SCHEDULER)


async def audit_actions(ctx: AppContext) -> list[str]:
    async with ctx.db.read() as s:
        rows = await s.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.entity_type == "announcement")
            .order_by(AuditEntry.at, AuditEntry.action)
        )
        return list(rows)


class TestPostAndRead:
    async def test_the_office_posts_and_any_caller_reads_it_in_their_language(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        office = await scheduler(client, ctx, world)
        posted = await client.post(URL, json=notice(), headers=office)
        assert posted.status_code == 201, posted.text
        body = posted.json()
        assert body["scope"]["level"] == "hospital" and body["shown"] is True
        assert body["starts_at"].startswith(NOW.isoformat()[:19])
        assert body["created_by"].startswith("staff:") and body["notified"] == 0
        read = await client.get(URL, headers=world.auth)
        assert [n["id"] for n in read.json()] == [body["id"]]
        assert read.json()[0]["title"] == "停车场施工"
        # A channel app is not told who posted it.
        assert read.json()[0]["created_by"] is None
        english = await client.get(URL, headers={**world.auth, "Accept-Language": "en"})
        assert english.json()[0]["title"] == "Car park works"
        assert await audit_actions(ctx) == ["announcement_post"]

    async def test_without_a_key_the_portals_hospital_is_read(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            own = await f.make_hospital(s, now=NOW, code=ctx.settings.hospital_code)
            await f.make_staff(s, hospital=own, roles=[Role.SCHEDULER], now=NOW)
        office = await scheduler(client, ctx, world)
        assert (await client.post(URL, json=notice(), headers=office)).status_code == 201
        # The notice is the other hospital's: the portal's own hospital has none.
        anonymous = await client.get(URL)
        assert anonymous.status_code == 200 and anonymous.json() == []

    async def test_a_page_about_a_department_shows_its_notices_and_the_hospitals(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            other = await f.make_department(s, hospital=world.hospital, name="外科")
        office = await scheduler(client, ctx, world)
        everyone = (await client.post(URL, json=notice(), headers=office)).json()
        ours = (
            await client.post(
                URL,
                json=notice(kind="clinic_delayed", department_id=str(world.department.id)),
                headers=office,
            )
        ).json()
        theirs = (
            await client.post(
                URL, json=notice(kind="clinic_delayed", department_id=str(other.id)), headers=office
            )
        ).json()
        for_us = await client.get(
            URL, params={"department_id": str(world.department.id)}, headers=world.auth
        )
        assert {n["id"] for n in for_us.json()} == {everyone["id"], ours["id"]}
        # A session brings its department: the same notices.
        for_session = await client.get(
            URL, params={"session_id": str(world.session.id)}, headers=world.auth
        )
        assert {n["id"] for n in for_session.json()} == {everyone["id"], ours["id"]}
        unfiltered = await client.get(URL, headers=world.auth)
        assert {n["id"] for n in unfiltered.json()} == {everyone["id"], ours["id"], theirs["id"]}


class TestWindowAndWithdrawal:
    async def test_shown_only_inside_its_window(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        office = await scheduler(client, ctx, world)
        later = (NOW + timedelta(hours=3)).isoformat()
        posted = await client.post(URL, json=notice(starts_at=later), headers=office)
        assert posted.status_code == 201 and posted.json()["shown"] is False
        assert (await client.get(URL, headers=world.auth)).json() == []
        clock.set(NOW + timedelta(hours=3))
        assert len((await client.get(URL, headers=world.auth)).json()) == 1
        clock.set(NOW + timedelta(days=2))
        assert (await client.get(URL, headers=world.auth)).json() == []
        # Staff still see it, and that it is over (signed in again: two days passed).
        office = await scheduler(client, ctx, world)
        every = await client.get(URL, params={"all": "true"}, headers=office)
        assert [n["shown"] for n in every.json()] == [False]

    async def test_withdrawn_it_leaves_the_list_at_once_and_is_audited(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        office = await scheduler(client, ctx, world)
        posted = (await client.post(URL, json=notice(), headers=office)).json()
        withdrawn = await client.delete(f"{URL}/{posted['id']}", headers=office)
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["withdrawn_at"] is not None
        assert withdrawn.json()["withdrawn_by"].startswith("staff:")
        assert (await client.get(URL, headers=world.auth)).json() == []
        every = (await client.get(URL, params={"all": "true"}, headers=office)).json()
        assert [n["id"] for n in every] == [posted["id"]] and every[0]["withdrawn_at"]
        # Withdrawing again answers the same and audits nothing more.
        again = await client.delete(f"{URL}/{posted['id']}", headers=office)
        assert again.status_code == 200
        assert again.json()["withdrawn_at"] == withdrawn.json()["withdrawn_at"]
        assert await audit_actions(ctx) == ["announcement_post", "announcement_withdraw"]
        missing = await client.delete(f"{URL}/{uuid.uuid4()}", headers=office)
        assert_problem(missing, 404, "not_found")


class TestRefusals:
    async def test_only_the_office_and_admins_post_withdraw_or_list_everything(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        admin = await staff_auth(client, ctx, world, Role.ADMIN)
        posted = (await client.post(URL, json=notice(), headers=admin)).json()
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        counts = await row_counts(ctx.db)
        for headers in (registrar, world.auth):
            assert_problem(await client.post(URL, json=notice(), headers=headers), 403, "forbidden")
            assert_problem(
                await client.delete(f"{URL}/{posted['id']}", headers=headers), 403, "forbidden"
            )
            assert_problem(
                await client.get(URL, params={"all": "true"}, headers=headers), 403, "forbidden"
            )
        assert_problem(await client.post(URL, json=notice()), 401, "unauthorized")
        assert_problem(await client.delete(f"{URL}/{posted['id']}"), 401, "unauthorized")
        assert await row_counts(ctx.db) == counts
        assert len((await client.get(URL, headers=world.auth)).json()) == 1

    async def test_bad_input_is_refused_with_a_stable_code_and_changes_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            elsewhere = await f.make_hospital(s, now=NOW)
            foreign = await f.make_department(s, hospital=elsewhere)
        office = await scheduler(client, ctx, world)
        counts = await row_counts(ctx.db)
        cases: list[tuple[dict[str, Any], str, str | None]] = [
            (notice(title=""), "invalid_announcement", "title"),
            (notice(title="长" * 61), "validation_error", None),
            (notice(kind="party"), "validation_error", None),
            (notice(ends_at="2026-11-22T10:00:00"), "validation_error", None),
            (notice(ends_at=(NOW - timedelta(hours=1)).isoformat()), "invalid_announcement", None),
            (
                notice(starts_at=IN_FOUR_DAYS, ends_at=IN_TWO_DAYS),
                "invalid_announcement",
                "ends_at",
            ),
            (notice(day="2026-12-25"), "invalid_announcement", "day"),
            (notice(campus_id=str(uuid.uuid4())), "invalid_announcement", "campus_id"),
            (notice(department_id=str(foreign.id)), "invalid_announcement", "department_id"),
            (notice(session_id=str(uuid.uuid4())), "invalid_announcement", "session_id"),
            (notice(kind="maintenance", department_id=str(world.department.id)), "", "scope"),
            (
                notice(ends_at=(NOW + timedelta(days=10)).isoformat(), notify_patients=True),
                "invalid_announcement",
                "notify_patients",
            ),
            (notice(colour="red"), "validation_error", None),
        ]
        for body, code, field in cases:
            answer = await client.post(URL, json=body, headers=office)
            problem = assert_problem(answer, 422, code or "invalid_announcement")
            if field is not None:
                assert problem["field"] == field, problem
        english = await client.post(
            URL, json=notice(day="2026-12-25"), headers={**office, "Accept-Language": "en"}
        )
        assert "Nothing was changed" in english.json()["detail"]
        assert await row_counts(ctx.db) == counts


# --- texting the patients concerned --------------------------------------------------------


async def book_into(
    ctx: AppContext, world: World, clinic: ClinicSession, patient: Patient | None = None
) -> Patient:
    async def work(session: AsyncSession) -> Patient:
        who = patient or await f.make_patient(
            session, hospital=world.hospital, cipher=ctx.cipher, now=NOW
        )
        await booking_service.book(
            session,
            actor=app_actor(world),
            patient_id=who.id,
            session_id=clinic.id,
            slot_id=None,
            now=NOW,
        )
        return who

    return await ctx.db.transact(work)


async def announcement_messages(ctx: AppContext) -> list[OutboxMessage]:
    async with ctx.db.read() as s:
        rows = await s.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == MessageKind.ANNOUNCEMENT.value)
        )
        return list(rows)


class TestTextingPatients:
    async def test_exactly_one_message_per_concerned_patient_and_none_to_others(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            # A patient may hold two of the department's clinics in one day here.
            policy = await s.scalar(
                select(BookingPolicy).where(
                    BookingPolicy.hospital_id == world.hospital.id,
                    BookingPolicy.department_id.is_(None),
                )
            )
            assert policy is not None
            policy.limit_per_department_per_day = 2
            east = Campus(hospital_id=world.hospital.id, code="east", name="东院区")
            s.add(east)
            await s.flush()
            surgery = Department(
                hospital_id=world.hospital.id, campus_id=east.id, code="SUR", name="外科"
            )
            s.add(surgery)
            await s.flush()
            afternoon = await f.make_session(
                s,
                hospital=world.hospital,
                department=world.department,
                level=world.free_level,
                day=VISIT_DAY,
                period=Period.AFTERNOON,
                start=time(13, 30),
                end=time(17, 0),
                now=NOW,
            )
            next_day = await f.make_session(
                s,
                hospital=world.hospital,
                department=world.department,
                level=world.free_level,
                day=VISIT_DAY + timedelta(days=1),
                now=NOW,
            )
            surgery_clinic = await f.make_session(
                s,
                hospital=world.hospital,
                department=surgery,
                level=world.free_level,
                day=VISIT_DAY,
                now=NOW,
            )
        # Two appointments in the department that day: still one message.
        twice = await book_into(ctx, world, world.session, world.patient)
        await book_into(ctx, world, afternoon, twice)
        once = await book_into(ctx, world, afternoon)
        other_day = await book_into(ctx, world, next_day)
        other_department = await book_into(ctx, world, surgery_clinic)
        cancelled = await book_into(ctx, world, world.session)
        async with ctx.db.session_scope() as s:
            appointment_id = await s.scalar(
                select(Appointment.id).where(Appointment.patient_id == cancelled.id)
            )
            assert appointment_id is not None
            await booking_service.cancel(
                s, actor=app_actor(world), appointment_id=appointment_id, note=None, now=NOW
            )
        office = await scheduler(client, ctx, world)
        body = notice(
            kind="clinic_delayed",
            title="内科门诊推迟",
            body="因设备检修，周一内科门诊推迟 30 分钟开始。",
            title_en="Internal medicine starts late",
            body_en="Monday's clinics start 30 minutes late.",
            department_id=str(world.department.id),
            day=VISIT_DAY.isoformat(),
            ends_at=IN_FOUR_DAYS,
            notify_patients=True,
        )
        posted = await client.post(URL, json=body, headers={**office, "Idempotency-Key": "k-1"})
        assert posted.status_code == 201, posted.text
        assert posted.json()["notified"] == 2
        messages = await announcement_messages(ctx)
        assert sorted(m.patient_id for m in messages) == sorted([twice.id, once.id])  # type: ignore[type-var]
        assert all(m.appointment_id is None for m in messages)
        assert {other_day.id, other_department.id, cancelled.id}.isdisjoint(
            m.patient_id for m in messages
        )

        # A retry of the post answers the first notice and texts nobody again.
        counts = await row_counts(ctx.db)
        retry = await client.post(URL, json=body, headers={**office, "Idempotency-Key": "k-1"})
        assert retry.status_code == 201 and retry.json()["id"] == posted.json()["id"]
        assert await row_counts(ctx.db) == counts
        # Running the fan-out again queues nobody twice; a new booking since is told.
        late = await book_into(ctx, world, world.session)
        again = await ctx.db.transact(
            lambda s: service.text_patients(
                s,
                announcement_id=uuid.UUID(posted.json()["id"]),
                hospital_id=world.hospital.id,
                now=NOW,
            )
        )
        assert again == 1
        assert sorted(m.patient_id for m in await announcement_messages(ctx)) == sorted(  # type: ignore[type-var]
            [twice.id, once.id, late.id]
        )

        # Delivered as any message: by SMS, in the patient's words, with a link to the notices.
        sms = FakeSms()
        await deliver_due(ctx, senders=Senders(sms=sms))
        texts = [c.text for c in sms.calls if "内科门诊推迟" in c.text]
        assert len(texts) == 3, [c.text for c in sms.calls]
        assert all("推迟 30 分钟" in t and "/announcements" in t for t in texts)

    async def test_a_session_notice_texts_that_clinics_patients_only(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            afternoon = await f.make_session(
                s,
                hospital=world.hospital,
                department=world.department,
                level=world.free_level,
                day=VISIT_DAY,
                period=Period.AFTERNOON,
                start=time(13, 30),
                end=time(17, 0),
                now=NOW,
            )
        morning_patient = await book_into(ctx, world, world.session)
        await book_into(ctx, world, afternoon)
        office = await scheduler(client, ctx, world)
        posted = await client.post(
            URL,
            json=notice(
                kind="clinic_delayed",
                session_id=str(world.session.id),
                ends_at=IN_FOUR_DAYS,
                notify_patients=True,
            ),
            headers=office,
        )
        assert posted.status_code == 201, posted.text
        scope = posted.json()["scope"]
        assert scope["day"] == VISIT_DAY.isoformat()
        assert scope["department_id"] == str(world.department.id)
        assert [m.patient_id for m in await announcement_messages(ctx)] == [morning_patient.id]

    async def test_a_post_that_fails_texts_nobody(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await book_into(ctx, world, world.session)
        office = await scheduler(client, ctx, world)
        counts = await row_counts(ctx.db)
        refused = await client.post(
            URL,
            json=notice(session_id=str(world.session.id), notify_patients=True, day="2026-11-21"),
            headers=office,
        )
        assert_problem(refused, 422, "invalid_announcement")
        assert await announcement_messages(ctx) == []
        assert await row_counts(ctx.db) == counts
