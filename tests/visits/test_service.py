"""Visit-day use cases on SQLite and PostgreSQL: check-in refusals change nothing, a second
scan is harmless, walk-ins share the queue, calling flows, late arrivals and triage."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW, World
from tests.helpers import row_counts
from tests.visits import support as v
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus
from yuyue.kit.clock import FixedClock
from yuyue.kit.errors import Forbidden
from yuyue.staff.models import AuditEntry
from yuyue.staff.service import ReadSource
from yuyue.visits import rules, service
from yuyue.visits.models import Visit
from yuyue.visits.states import PriorityClass, VisitStatus
from yuyue.web.context import AppContext


async def scan(ctx: AppContext, world: World, token: str) -> service.CheckIn:
    async with ctx.db.session_scope() as s:
        return await service.check_in_by_token(
            s, actor=v.kiosk(world), token=token, signer=ctx.voucher_signer, now=ctx.clock.now()
        )


async def line_numbers(ctx: AppContext, world: World) -> list[int]:
    return [visit.queue_number for visit in await v.visits_in_line(ctx, world)]


class TestCheckInByVoucher:
    async def test_checks_in_and_gives_a_ticket(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        appointment = await v.book(ctx, world)
        clock.set(v.local(7, 30))
        result = await scan(ctx, world, v.token(ctx, appointment))
        assert result.already is False
        ticket = result.ticket
        assert ticket.queue_number == appointment.sequence_number
        assert (ticket.position, ticket.people_ahead, ticket.estimated_wait_minutes) == (1, 0, 0)
        assert ticket.status == VisitStatus.WAITING
        assert ticket.late is False
        async with ctx.db.read() as s:
            status = await s.scalar(
                select(Appointment.status).where(Appointment.id == appointment.id)
            )
            actions = set(
                await s.scalars(select(AuditEntry.action).where(AuditEntry.action == "check_in"))
            )
        assert status == AppointmentStatus.CHECKED_IN
        assert actions == {"check_in"}

    async def test_scanning_twice_is_harmless_and_shows_the_same_ticket(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        appointment = await v.book(ctx, world)
        clock.set(v.local(7, 30))
        first = await scan(ctx, world, v.token(ctx, appointment))
        before = await row_counts(ctx.db)
        second = await scan(ctx, world, v.token(ctx, appointment))
        assert second.already is True
        assert second.visit.id == first.visit.id
        assert second.ticket == first.ticket
        assert await row_counts(ctx.db) == before

    @pytest.mark.parametrize(
        ("case", "error"),
        [
            ("forged", rules.VoucherInvalid),
            ("other_hospital", rules.VoucherInvalid),
            ("expired", rules.VoucherExpired),
            ("other_day", rules.VoucherOtherDay),
            ("too_early", rules.CheckInTooEarly),
            ("closed", rules.CheckInClosed),
            ("cancelled", rules.AppointmentCancelled),
            ("completed", rules.VoucherUsed),
        ],
    )
    async def test_refused_voucher_changes_nothing(
        self, ctx: AppContext, world: World, clock: FixedClock, case: str, error: type[Exception]
    ) -> None:
        appointment = await v.book(ctx, world)
        token = v.token(ctx, appointment)
        clock.set(v.local(9, 0))
        if case == "forged":
            body, _, mac = token.partition(".")
            token = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
        elif case == "other_hospital":
            token = ctx.voucher_signer.sign(
                {"aid": str(appointment.id), "hid": "another"}, expires_at=v.local(23, 0)
            )
        elif case == "expired":
            clock.set(v.local(0, 0, day=date(2026, 11, 24)))
        elif case == "other_day":
            clock.set(v.local(9, 0, day=date(2026, 11, 22)))
        elif case == "too_early":
            clock.set(v.local(6, 59))
        elif case == "closed":
            clock.set(v.local(12, 0))
        elif case == "cancelled":
            async with ctx.db.session_scope() as s:
                await booking_service.cancel(
                    s, actor=v.app_actor(world), appointment_id=appointment.id, note=None, now=NOW
                )
        elif case == "completed":
            async with ctx.db.session_scope() as s:
                row = await s.get(Appointment, appointment.id)
                assert row is not None
                row.status = AppointmentStatus.COMPLETED
        before = await row_counts(ctx.db)
        with pytest.raises(error):
            await scan(ctx, world, token)
        assert await row_counts(ctx.db) == before

    async def test_an_app_key_may_not_check_in(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        appointment = await v.book(ctx, world)
        clock.set(v.local(7, 30))
        async with ctx.db.session_scope() as s:
            with pytest.raises(Forbidden):
                await service.check_in_by_token(
                    s,
                    actor=v.app_actor(world),
                    token=v.token(ctx, appointment),
                    signer=ctx.voucher_signer,
                    now=ctx.clock.now(),
                )


class TestCheckInByCode:
    async def code_check_in(
        self, ctx: AppContext, world: World, code: str, digits: str
    ) -> service.CheckIn:
        async with ctx.db.session_scope() as s:
            return await service.check_in_by_code(
                s,
                actor=v.kiosk(world),
                code=code,
                phone_last4=digits,
                client="kiosk-1@10.0.0.9",
                now=ctx.clock.now(),
            )

    async def test_code_and_phone_digits(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        appointment = await v.book(ctx, world)
        clock.set(v.local(7, 30))
        async with ctx.db.read() as s:
            from yuyue.patients.models import Patient

            masked = await s.scalar(
                select(Patient.phone_masked).where(Patient.id == appointment.patient_id)
            )
        assert masked is not None
        wrong = "0000" if masked[-4:] != "0000" else "1111"
        with pytest.raises(service.CodeNotMatched):
            await self.code_check_in(ctx, world, appointment.voucher_code, wrong)
        result = await self.code_check_in(ctx, world, appointment.voucher_code, masked[-4:])
        assert result.visit.appointment_id == appointment.id

    async def test_wrong_digits_for_one_code_lock_that_code_not_the_kiosk(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        appointment = await v.book(ctx, world)
        other = await v.book(ctx, world, ordinal=1, name="王五")
        clock.set(v.local(7, 30))
        for _ in range(5):
            async with ctx.db.session_scope() as s:
                await service.record_code_failure(
                    s,
                    hospital_id=world.hospital.id,
                    client="kiosk-2@10.0.0.10",
                    code=appointment.voucher_code,
                    now=v.local(7, 20),
                )
        before = await row_counts(ctx.db)
        with pytest.raises(rules.CodeLocked):
            await self.code_check_in(ctx, world, appointment.voucher_code, "0000")
        assert await row_counts(ctx.db) == before
        # Another patient at the same hall checks in by code at once.
        async with ctx.db.read() as s:
            from yuyue.patients.models import Patient

            digits = await s.scalar(
                select(Patient.phone_masked).where(Patient.id == other.patient_id)
            )
        assert digits is not None
        checked = await self.code_check_in(ctx, world, other.voucher_code, digits[-4:])
        assert checked.visit.appointment_id == other.id
        clock.set(v.local(7, 36))  # the code's lockout is over
        with pytest.raises(service.CodeNotMatched):
            await self.code_check_in(ctx, world, appointment.voucher_code, "0000")


class TestQueue:
    async def test_walk_in_shares_the_queue_with_booked_patients(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        a = await v.book(ctx, world, ordinal=0)
        b = await v.book(ctx, world, ordinal=1, name="王五")
        clock.set(v.local(7, 30))
        await scan(ctx, world, v.token(ctx, b))
        await scan(ctx, world, v.token(ctx, a))
        clock.set(v.local(7, 40))
        async with ctx.db.session_scope() as s:
            walker = await v.book_patient_only(s, ctx, world)
            result = await service.walk_in(
                s,
                actor=v.nurse(world),
                patient_id=walker,
                session_id=world.session.id,
                slot_id=None,
                now=ctx.clock.now(),
            )
        assert result.visit.walk_in is True
        # The walk-in took an on-site place of the 08:00 slot: after a (same slot, earlier
        # check-in), before b (the 08:30 slot).
        assert await line_numbers(ctx, world) == [
            a.sequence_number,
            result.visit.queue_number,
            b.sequence_number,
        ]
        assert result.ticket.people_ahead == 1

    async def test_call_skip_recall_start_finish(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        a = await v.book(ctx, world, ordinal=0)
        b = await v.book(ctx, world, ordinal=0, name="王五")
        c = await v.book(ctx, world, ordinal=1, name="赵六")
        clock.set(v.local(7, 45))
        for appointment in (a, b, c):
            await scan(ctx, world, v.token(ctx, appointment))
        doc = v.doctor(world)
        clock.set(v.local(8, 0))
        async with ctx.db.session_scope() as s:
            called = await service.call_next(
                s, actor=doc, session_id=world.session.id, now=v.local(8)
            )
        assert (called.queue_number, called.status, called.call_count) == (
            a.sequence_number,
            VisitStatus.CALLED,
            1,
        )
        async with ctx.db.session_scope() as s:
            skipped = await service.skip(s, actor=doc, visit_id=called.id, now=v.local(8, 3))
        assert skipped.status == VisitStatus.SKIPPED
        # Back at the end of the batch being called (batch 0): after b, before c.
        assert await line_numbers(ctx, world) == [
            b.sequence_number,
            a.sequence_number,
            c.sequence_number,
        ]
        async with ctx.db.session_scope() as s:
            second = await service.call_next(
                s, actor=doc, session_id=world.session.id, now=v.local(8, 4)
            )
            await service.start(s, actor=doc, visit_id=second.id, now=v.local(8, 5))
            finished = await service.finish(s, actor=doc, visit_id=second.id, now=v.local(8, 12))
            await service.mark_return_visit(
                s, actor=doc, visit_id=second.id, needed=True, now=v.local(8, 12)
            )
        assert finished.status == VisitStatus.FINISHED
        async with ctx.db.session_scope() as s:
            again = await service.recall(s, actor=doc, visit_id=called.id, now=v.local(8, 13))
        assert (again.status, again.call_count, again.position) == (VisitStatus.CALLED, 2, None)
        assert await line_numbers(ctx, world) == [c.sequence_number]
        async with ctx.db.read() as s:
            view = await service.queue_view(s, actor=doc, session_id=world.session.id)
            status = await s.scalar(select(Appointment.status).where(Appointment.id == b.id))
        assert status == AppointmentStatus.COMPLETED
        assert [r.queue_number for r in view.current] == [a.sequence_number]
        assert [r.queue_number for r in view.waiting] == [c.sequence_number]
        assert [(r.queue_number, r.return_visit_needed) for r in view.finished] == [
            (b.sequence_number, True)
        ]
        # Finishing a visit that is not in the room is refused.
        async with ctx.db.session_scope() as s:
            with pytest.raises(rules.InvalidVisitTransition):
                await service.finish(s, actor=doc, visit_id=called.id, now=v.local(8, 14))

    async def test_late_arrival_joins_the_end_of_the_batch_being_called(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        a = await v.book(ctx, world, ordinal=0)
        late = await v.book(ctx, world, ordinal=0, name="迟到")
        b = await v.book(ctx, world, ordinal=2, name="王五")
        d = await v.book(ctx, world, ordinal=2, name="钱七")
        c = await v.book(ctx, world, ordinal=3, name="赵六")
        clock.set(v.local(8, 30))
        for appointment in (a, b, d, c):
            await scan(ctx, world, v.token(ctx, appointment))
        doc = v.doctor(world)
        async with ctx.db.session_scope() as s:
            await service.call_next(s, actor=doc, session_id=world.session.id, now=v.local(9))
            await service.call_next(s, actor=doc, session_id=world.session.id, now=v.local(9, 5))
        clock.set(v.local(9, 10))  # the 08:00 slot ended at 08:30; batch 2 is being called
        result = await scan(ctx, world, v.token(ctx, late))
        assert result.visit.late is True
        assert result.visit.batch == 2
        assert await line_numbers(ctx, world) == [
            d.sequence_number,
            late.sequence_number,
            c.sequence_number,
        ]
        assert result.ticket.people_ahead == 1

    async def test_priorities_go_ahead_and_the_elderly_are_recognised(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        a = await v.book(ctx, world, ordinal=0)
        b = await v.book(ctx, world, ordinal=2, name="王五")
        old = await v.book(ctx, world, ordinal=2, name="老人", birth=date(1940, 5, 1))
        clock.set(v.local(8, 29))
        for appointment in (a, b, old):
            await scan(ctx, world, v.token(ctx, appointment))
        assert await line_numbers(ctx, world) == [
            old.sequence_number,
            a.sequence_number,
            b.sequence_number,
        ]
        line = await v.visits_in_line(ctx, world)
        assert line[0].priority == PriorityClass.ELDERLY
        async with ctx.db.session_scope() as s:
            marked = await service.set_priority(
                s,
                actor=v.nurse(world),
                visit_id=line[2].id,
                priority=PriorityClass.EMERGENCY,
                reason="胸痛",
                now=v.local(7, 35),
            )
        assert marked.position == 1
        assert await line_numbers(ctx, world) == [
            b.sequence_number,
            old.sequence_number,
            a.sequence_number,
        ]
        async with ctx.db.session_scope() as s:
            with pytest.raises(Forbidden):
                await service.set_priority(
                    s,
                    actor=v.doctor(world),
                    visit_id=line[2].id,
                    priority=None,
                    reason="x",
                    now=v.local(7, 36),
                )

    async def test_a_nurse_moves_a_patient_with_a_recorded_reason(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        booked = [
            await v.book(ctx, world, ordinal=o, name="患者" + "甲乙丙丁戊"[o]) for o in (0, 1, 2)
        ]
        clock.set(v.local(8, 29))
        for appointment in booked:
            await scan(ctx, world, v.token(ctx, appointment))
        line = await v.visits_in_line(ctx, world)
        async with ctx.db.session_scope() as s:
            await service.move(
                s,
                actor=v.nurse(world),
                visit_id=line[2].id,
                before=line[0].id,
                reason="行动不便",
                now=v.local(7, 40),
            )
        assert [x.id for x in await v.visits_in_line(ctx, world)] == [
            line[2].id,
            line[0].id,
            line[1].id,
        ]
        async with ctx.db.read() as s:
            audit = await s.scalar(
                select(AuditEntry).where(
                    AuditEntry.action == "move", AuditEntry.entity_id == line[2].id
                )
            )
        assert audit is not None
        assert audit.after is not None
        assert audit.after["reason"] == "行动不便"
        assert audit.before is not None
        assert (audit.before["position"], audit.after["position"]) == (3, 1)

    async def test_estimate_follows_the_doctors_pace_today(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        booked = [
            await v.book(ctx, world, ordinal=o, name="患者" + "甲乙丙丁戊"[i])
            for i, o in enumerate((0, 0, 0, 2, 2))
        ]
        clock.set(v.local(8, 29))
        for appointment in booked:
            await scan(ctx, world, v.token(ctx, appointment))
        doc = v.doctor(world)
        # Consultations of 4, 6 and 20 minutes: the median is 6.
        at = v.local(8)
        for minutes in (4, 6, 20):
            async with ctx.db.session_scope() as s:
                visit = await service.call_next(s, actor=doc, session_id=world.session.id, now=at)
                await service.start(s, actor=doc, visit_id=visit.id, now=at)
                at += timedelta(minutes=minutes)
                await service.finish(s, actor=doc, visit_id=visit.id, now=at)
        last = (await v.visits_in_line(ctx, world))[-1]
        async with ctx.db.read() as s:
            ticket = await service.visit_ticket(s, actor=v.kiosk(world), visit_id=last.id)
        assert (ticket.people_ahead, ticket.estimated_wait_minutes) == (1, 6)


class TestDesk:
    async def test_find_by_code_phone_id_number_and_voucher(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        from yuyue.patients.models import Patient

        appointment = await v.book(ctx, world)
        clock.set(v.local(8, 29))
        async with ctx.db.read() as s:
            patient = await s.get(Patient, appointment.patient_id)
            assert patient is not None
            phone = ctx.cipher.decrypt(patient.phone_cipher)
            id_number = ctx.cipher.decrypt(patient.id_cipher)
        queries = [appointment.voucher_code, phone, id_number, v.token(ctx, appointment)]
        source = ReadSource(route="GET /desk", address="10.1.2.3")
        for query in queries:
            async with ctx.db.session_scope() as s:
                found = await service.find_for_desk(
                    s,
                    actor=v.nurse(world),
                    query=query,
                    cipher=ctx.cipher,
                    signer=ctx.voucher_signer,
                    now=ctx.clock.now(),
                    source=source,
                )
            assert [m.appointment_id for m in found] == [appointment.id], query
        async with ctx.db.session_scope() as s:
            assert (
                await service.find_for_desk(
                    s,
                    actor=v.nurse(world),
                    query="99999999",
                    cipher=ctx.cipher,
                    signer=ctx.voucher_signer,
                    now=ctx.clock.now(),
                    source=source,
                )
                == []
            )
        # Each look-up that found someone is logged with the patient and the kind of search;
        # nothing typed is kept, and a look-up that found nobody names nobody.
        async with ctx.db.read() as s:
            logged = list(
                await s.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.action == "read.lookup")
                    .order_by(AuditEntry.at, AuditEntry.id)
                )
            )
        assert [e.entity_id for e in logged] == [appointment.patient_id] * 4
        assert [e.after["by"] for e in logged if e.after] == [
            "voucher_code",
            "phone",
            "document",
            "voucher",
        ]
        assert all(e.after and e.after["address"] == "10.1.2.3" for e in logged)
        kept = repr([e.after for e in logged])
        for query in queries:
            assert query not in kept

    async def test_board_masks_names(
        self, ctx: AppContext, world: World, clock: FixedClock
    ) -> None:
        a = await v.book(ctx, world, ordinal=0, name="欧阳娜娜")
        b = await v.book(ctx, world, ordinal=2, name="王五")
        clock.set(v.local(8, 29))
        for appointment in (a, b):
            await scan(ctx, world, v.token(ctx, appointment))
        async with ctx.db.session_scope() as s:
            await service.call_next(
                s, actor=v.doctor(world), session_id=world.session.id, now=v.local(8)
            )
        async with ctx.db.read() as s:
            board = await service.department_board(
                s, actor=v.kiosk(world), department_id=world.department.id, day=world.session.date
            )
            visits = await s.scalar(select(func.count()).select_from(Visit))
        assert visits == 2
        assert len(board) == 1
        assert [r.patient_name for r in board[0].current] == ["欧**娜"]
        assert [r.patient_name for r in board[0].next] == ["王*"]
