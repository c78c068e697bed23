"""Delivering the outbox on SQLite and PostgreSQL: channels, retries, leases, concurrency,
reminders, quiet hours, templates, the demo phone and the huey wiring."""

from __future__ import annotations

import asyncio
import dataclasses
import time as wallclock
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import NOW, SECRET, DatabaseTemplate, World
from tests.helpers import assert_problem, row_counts, staff_auth
from tests.notifications.fake_providers import FakeAlibaba
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus
from yuyue.config import Settings
from yuyue.jobs import Jobs, attach, detach, request_delivery
from yuyue.kit.clock import FixedClock
from yuyue.kit.db import Database
from yuyue.notifications import delivery as delivery_module
from yuyue.notifications import rules, service
from yuyue.notifications.channels.alibaba import AlibabaSmsSender
from yuyue.notifications.channels.base import EmailMessage, SendOutcome, SmsMessage
from yuyue.notifications.delivery import (
    DeliveryReport,
    Senders,
    _claim,
    _fan_out,
    deliver_due,
)
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.models import Delivery, DeliveryAttempt, DemoPhoneMessage, OutboxMessage
from yuyue.patients.models import Patient
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import ClinicSession, Department
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, ActorKind
from yuyue.web.context import AppContext

# The 1-day reminder of the 08:00 Monday visit: Sunday 08:00 in Shanghai.
REMINDER_AT = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)


class FakeSms:
    """Records every message; answers from a script of outcomes, then accepts."""

    name = "fake"

    def __init__(self, *script: SendOutcome, pause: float = 0.0) -> None:
        self.script = list(script)
        self.calls: list[SmsMessage] = []
        self.was_sent_answer: bool | None = None
        self.questions: list[tuple[str, date]] = []
        self.pause = pause

    async def send(self, message: SmsMessage) -> SendOutcome:
        self.calls.append(message)
        if self.pause:
            await asyncio.sleep(self.pause)
        if self.script:
            return self.script.pop(0)
        return SendOutcome(accepted=True, provider_id=f"biz-{len(self.calls)}")

    async def was_sent(self, message: SmsMessage, *, on: date) -> bool | None:
        self.questions.append((message.reference, on))
        return self.was_sent_answer


class FakeEmail:
    name = "fake-email"

    def __init__(self) -> None:
        self.calls: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> SendOutcome:
        self.calls.append(message)
        return SendOutcome(accepted=True)


def app_actor(world: World) -> Actor:
    return Actor(world.hospital.id, ActorKind.CHANNEL, "test-app", Channel.APP)


async def book(ctx: AppContext, world: World, patient: Patient | None = None) -> Appointment:
    async def work(session: AsyncSession) -> Appointment:
        booked = await booking_service.book(
            session,
            actor=app_actor(world),
            patient_id=(patient or world.patient).id,
            session_id=world.session.id,
            slot_id=None,
            now=ctx.clock.now(),
        )
        return booked.appointment

    return await ctx.db.transact(work)


async def deliveries(ctx: AppContext) -> list[Delivery]:
    async with ctx.db.read() as s:
        return list((await s.scalars(select(Delivery).order_by(Delivery.created_at))).all())


async def attempts_of(ctx: AppContext, delivery_id: uuid.UUID) -> list[DeliveryAttempt]:
    async with ctx.db.read() as s:
        rows = await s.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.number, DeliveryAttempt.started_at)
        )
        return list(rows.all())


async def sign_in_codes(ctx: AppContext, world: World, count: int) -> None:
    async with ctx.db.session_scope() as s:
        for n in range(count):
            service.enqueue(
                s,
                hospital_id=world.hospital.id,
                kind=MessageKind.SIGN_IN_CODE,
                patient_id=None,
                appointment_id=None,
                payload={"code_cipher": ctx.cipher.encrypt(f"{n:06d}"), "minutes": 5},
                to_phone_cipher=ctx.cipher.encrypt(f"1390000{n:04d}"),
                now=ctx.clock.now(),
            )


async def fan_out_only(ctx: AppContext) -> None:
    async def work(session: AsyncSession) -> None:
        await _fan_out(session, now=ctx.clock.now(), limit=100, report=DeliveryReport())

    await ctx.db.transact(work)


class TestChannels:
    async def test_a_committed_booking_reaches_sms_and_inbox_once_without_being_asked(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        # Booked over the API: the app runs no worker, so nothing asked for a delivery;
        # the periodic pass finds the committed outbox row anyway.
        response = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(world.patient.id), "session_id": str(world.session.id)},
            headers=world.auth,
        )
        assert response.status_code == 201, response.text
        appointment_id = response.json()["id"]
        sms = FakeSms()
        report = await deliver_due(ctx, senders=Senders(sms=sms))
        assert report.fanned_out == 1 and report.sent == 2
        again = await deliver_due(ctx, senders=Senders(sms=sms))
        assert again == DeliveryReport()
        assert len(sms.calls) == 1
        text = sms.calls[0].text
        assert "预约成功" not in text and world.patient.name in text
        assert f"/appointments/{appointment_id}" in text
        async with ctx.db.read() as s:
            voucher = await s.scalar(
                select(Appointment.voucher_code).where(Appointment.id == uuid.UUID(appointment_id))
            )
        assert voucher and voucher in text
        assert sms.calls[0].params["voucher_code"] == voucher
        async with ctx.db.read() as s:
            items = await service.inbox_for_account(s, account_id=world.patient.account_id)
            assert await service.unread_count(s, account_id=world.patient.account_id) == 1
        assert [(i.kind, i.title) for i in items] == [("booking_confirmed", "预约成功")]
        assert items[0].link == f"http://127.0.0.1:8000/appointments/{appointment_id}"
        async with ctx.db.session_scope() as s:
            await service.mark_inbox_read(
                s, account_id=world.patient.account_id, item_ids=None, now=NOW
            )
        async with ctx.db.read() as s:
            assert await service.unread_count(s, account_id=world.patient.account_id) == 0

    async def test_email_goes_when_the_account_has_an_address_in_its_language(
        self, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            await service.set_account_preferences(
                s, account_id=world.patient.account_id, email="Pat@Example.com", locale="en"
            )
        await book(ctx, world)
        sms, email = FakeSms(), FakeEmail()
        await deliver_due(ctx, senders=Senders(sms=sms, email=email))
        assert [m.to for m in email.calls] == ["Pat@example.com"]
        assert email.calls[0].subject == "Appointment booked"
        assert "your appointment" in sms.calls[0].text

    async def test_bad_preferences_are_refused_and_change_nothing(
        self, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        for email, locale, error in (
            ("not-an-address", "zh-CN", rules.InvalidEmail),
            ("a@b.cn", "fr", rules.UnsupportedLocale),
        ):
            with pytest.raises(error):
                async with ctx.db.session_scope() as s:
                    await service.set_account_preferences(
                        s, account_id=world.patient.account_id, email=email, locale=locale
                    )
        assert await row_counts(ctx.db) == before


class TestRetries:
    async def test_two_passing_faults_then_success_make_three_attempts(
        self, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        await book(ctx, world)
        flaky = SendOutcome(accepted=False, retryable=True, reason="Throttling")
        sms = FakeSms(flaky, flaky)
        for _ in range(3):
            await deliver_due(ctx, senders=Senders(sms=sms))
            # Nothing is tried again before its back-off has passed.
            assert (await deliver_due(ctx, senders=Senders(sms=sms))).sent == 0
            clock.advance(timedelta(hours=1, seconds=1))
        [text] = [d for d in await deliveries(ctx) if d.channel == "sms"]
        assert (text.status, text.attempts, text.provider_id) == ("sent", 3, "biz-3")
        outcomes = [a.outcome for a in await attempts_of(ctx, text.id)]
        assert outcomes == ["retry", "retry", "sent"]
        assert len(sms.calls) == 3

    async def test_a_final_refusal_fails_at_once_with_the_providers_reason(
        self, ctx: AppContext, world: World
    ) -> None:
        await book(ctx, world)
        sms = FakeSms(SendOutcome(accepted=False, reason="isv.MOBILE_NUMBER_ILLEGAL"))
        report = await deliver_due(ctx, senders=Senders(sms=sms))
        assert report.failed == 1
        [text] = [d for d in await deliveries(ctx) if d.channel == "sms"]
        assert (text.status, text.attempts) == ("failed", 1)
        assert text.last_error == "isv.MOBILE_NUMBER_ILLEGAL"
        [attempt] = await attempts_of(ctx, text.id)
        assert (attempt.outcome, attempt.reason) == ("failed", "isv.MOBILE_NUMBER_ILLEGAL")

    async def test_after_the_last_attempt_it_fails(
        self, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        await book(ctx, world)
        down = SendOutcome(accepted=False, retryable=True, reason="ServiceUnavailable")
        sms = FakeSms(*[down] * 10)
        for _ in range(rules.MAX_ATTEMPTS + 2):
            await deliver_due(ctx, senders=Senders(sms=sms))
            clock.advance(timedelta(hours=2))
        [text] = [d for d in await deliveries(ctx) if d.channel == "sms"]
        assert (text.status, text.attempts, text.last_error) == (
            "failed",
            rules.MAX_ATTEMPTS,
            "ServiceUnavailable",
        )
        assert len(sms.calls) == rules.MAX_ATTEMPTS


class TestConcurrency:
    async def test_two_workers_at_once_send_every_message_exactly_once(
        self, ctx: AppContext, world: World, database_template: DatabaseTemplate
    ) -> None:
        await sign_in_codes(ctx, world, 40)
        other_db = Database(ctx.db.url, connect_args=database_template.connect_args, pool_size=4)
        other = dataclasses.replace(ctx, db=other_db)
        sms = FakeSms(pause=0.002)
        reports: list[DeliveryReport] = []
        try:
            # Rounds of four parallel passes until all is delivered: a pass takes what it
            # can claim, skipping what another is claiming at that moment.
            for _ in range(10):
                reports += await asyncio.gather(
                    deliver_due(ctx, limit=15, senders=Senders(sms=sms)),
                    deliver_due(other, limit=15, senders=Senders(sms=sms)),
                    deliver_due(ctx, limit=15, senders=Senders(sms=sms)),
                    deliver_due(other, limit=15, senders=Senders(sms=sms)),
                )
                if sum(r.sent for r in reports) >= 40:
                    break
        finally:
            await other_db.dispose()
        sends = Counter(m.reference for m in sms.calls)
        assert len(sends) == 40
        assert set(sends.values()) == {1}
        assert sum(r.sent for r in reports) == 40
        assert sum(r.fanned_out for r in reports) == 40
        # A sign-in code goes by SMS only, with the code and how long it is valid.
        assert {d.channel for d in await deliveries(ctx)} == {"sms"}
        assert any("000007" in m.text and "5分钟" in m.text for m in sms.calls)


class TestLeases:
    async def _crash_mid_send(self, ctx: AppContext, world: World) -> Delivery:
        await sign_in_codes(ctx, world, 1)
        await fan_out_only(ctx)

        async def claim(session: AsyncSession) -> Any:
            return await _claim(
                session, env=ctx, now=ctx.clock.now(), limit=10, report=DeliveryReport()
            )

        assert len(await ctx.db.transact(claim)) == 1  # ...and the worker dies here
        [delivery] = await deliveries(ctx)
        assert delivery.status == "sending"
        return delivery

    async def test_a_lost_lease_the_provider_saw_sent_is_not_sent_again(
        self, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        delivery = await self._crash_mid_send(ctx, world)
        sms = FakeSms()
        sms.was_sent_answer = True
        assert (await deliver_due(ctx, senders=Senders(sms=sms))).recovered == 0  # lease holds
        clock.advance(rules.LEASE + timedelta(seconds=1))
        report = await deliver_due(ctx, senders=Senders(sms=sms))
        assert (report.recovered, report.sent) == (1, 1)
        assert sms.calls == []
        assert sms.questions == [(str(delivery.id), date(2026, 11, 20))]
        [after] = await deliveries(ctx)
        assert after.status == "sent"
        assert [a.outcome for a in await attempts_of(ctx, delivery.id)] == ["recovered"]

    async def test_a_lost_lease_the_provider_cannot_confirm_is_sent_once_more(
        self, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        delivery = await self._crash_mid_send(ctx, world)
        sms = FakeSms()
        sms.was_sent_answer = None
        clock.advance(rules.LEASE + timedelta(seconds=1))
        await deliver_due(ctx, senders=Senders(sms=sms))
        await deliver_due(ctx, senders=Senders(sms=sms))
        assert [m.reference for m in sms.calls] == [str(delivery.id)]
        outcomes = [a.outcome for a in await attempts_of(ctx, delivery.id)]
        assert outcomes == ["abandoned", "sent"]


class TestUnknownOutcomes:
    """A request that may have reached the provider is never simply sent again: the
    provider is asked first, by our reference, whether the message went out."""

    UNKNOWN = SendOutcome(
        accepted=False, retryable=True, reason="timeout", details={"outcome_unknown": "true"}
    )

    async def _one_code(self, ctx: AppContext, world: World) -> None:
        await sign_in_codes(ctx, world, 1)

    async def test_an_answer_lost_after_sending_is_asked_about_and_not_sent_twice(
        self, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        await self._one_code(ctx, world)
        sms = FakeSms(self.UNKNOWN)
        await deliver_due(ctx, senders=Senders(sms=sms))
        [delivery] = await deliveries(ctx)
        assert delivery.status == "pending"
        sms.was_sent_answer = True
        clock.advance(timedelta(hours=1))
        report = await deliver_due(ctx, senders=Senders(sms=sms))
        assert report.sent == 1
        assert [m.reference for m in sms.calls] == [str(delivery.id)]
        assert sms.questions == [(str(delivery.id), date(2026, 11, 20))]
        [after] = await deliveries(ctx)
        assert after.status == "sent"
        outcomes = [a.outcome for a in await attempts_of(ctx, delivery.id)]
        assert outcomes == ["uncertain", "recovered"]

    async def test_an_answer_lost_before_the_provider_took_it_is_sent_again(
        self, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        await self._one_code(ctx, world)
        sms = FakeSms(self.UNKNOWN)
        await deliver_due(ctx, senders=Senders(sms=sms))
        sms.was_sent_answer = False
        clock.advance(timedelta(hours=1))
        await deliver_due(ctx, senders=Senders(sms=sms))
        [delivery] = await deliveries(ctx)
        assert delivery.status == "sent"
        assert len(sms.calls) == 2 and len(sms.questions) == 1
        outcomes = [a.outcome for a in await attempts_of(ctx, delivery.id)]
        assert outcomes == ["uncertain", "sent"]

    async def test_a_refusal_the_provider_answered_is_retried_without_asking(
        self, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        await self._one_code(ctx, world)
        sms = FakeSms(SendOutcome(accepted=False, retryable=True, reason="isv.BUSINESS_LIMIT"))
        await deliver_due(ctx, senders=Senders(sms=sms))
        clock.advance(timedelta(hours=1))
        await deliver_due(ctx, senders=Senders(sms=sms))
        assert len(sms.calls) == 2 and sms.questions == []

    async def test_a_break_after_the_provider_call_leaves_the_delivery_to_its_lease(
        self,
        ctx: AppContext,
        clock: FixedClock,
        world: World,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The database goes away while the provider's acceptance is being recorded.
        await self._one_code(ctx, world)
        record = delivery_module._record
        breaks = [RuntimeError("connection was closed in the middle of operation")]

        async def record_once_broken(*args: Any, **kwargs: Any) -> None:
            if breaks:
                raise breaks.pop()
            await record(*args, **kwargs)

        monkeypatch.setattr(delivery_module, "_record", record_once_broken)
        sms = FakeSms()
        report = await deliver_due(ctx, senders=Senders(sms=sms))
        assert report.left_leased == 1
        [delivery] = await deliveries(ctx)
        assert delivery.status == "sending"  # not queued for a plain retry
        sms.was_sent_answer = True
        clock.advance(timedelta(minutes=1))
        assert (await deliver_due(ctx, senders=Senders(sms=sms))).sent == 0  # lease holds
        clock.advance(rules.LEASE)
        assert (await deliver_due(ctx, senders=Senders(sms=sms))).sent == 1
        assert len(sms.calls) == 1
        [after] = await deliveries(ctx)
        assert after.status == "sent"

    async def test_through_the_alibaba_protocol_a_lost_answer_sends_one_text(
        self,
        ctx: AppContext,
        clock: FixedClock,
        world: World,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        templates = {MessageKind.SIGN_IN_CODE.value: "SMS_CODE"}
        monkeypatch.setattr(
            ctx, "settings", ctx.settings.model_copy(update={"sms_templates": templates})
        )
        provider = FakeAlibaba(
            access_keys={"key-id": "key-secret"},
            sign_names={"示例医院"},
            templates={"SMS_CODE": set()},
            now=clock.now,
        )
        with provider.running():
            sms = AlibabaSmsSender(
                access_key_id="key-id",
                access_key_secret="key-secret",
                sign_name="示例医院",
                endpoint=provider.endpoint,
                timeout_seconds=2,
            )
            try:
                await self._one_code(ctx, world)
                provider.lose_next_answer()
                await deliver_due(ctx, senders=Senders(sms=sms))
                assert len(provider.records) == 1
                clock.advance(timedelta(hours=1))
                await deliver_due(ctx, senders=Senders(sms=sms))
            finally:
                await sms.aclose()
        [delivery] = await deliveries(ctx)
        assert delivery.status == "sent"
        assert [r.out_id for r in provider.records] == [str(delivery.id)]


class TestReminders:
    async def test_a_booking_queues_the_reminders_not_yet_past(
        self, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        appointment = await book(ctx, world)
        async with ctx.db.read() as s:
            reminders = (
                await s.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.appointment_id == appointment.id,
                        OutboxMessage.kind == "reminder",
                    )
                )
            ).all()
        # Friday 10:00 for Monday 08:00: the 7- and 3-day reminders are past.
        assert [r.available_at for r in reminders] == [REMINDER_AT]
        sms = FakeSms()
        await deliver_due(ctx, senders=Senders(sms=sms))
        clock.set(REMINDER_AT + timedelta(minutes=1))
        await deliver_due(ctx, senders=Senders(sms=sms))
        assert len(sms.calls) == 2
        assert "提醒您" in sms.calls[1].text

    async def test_one_reminder_waits_at_a_time_and_carries_the_next(
        self, client: httpx.AsyncClient, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        auth = await staff_auth(client, ctx, world, Role.ADMIN)
        saved = await client.put(
            "/api/v1/notification-settings",
            json={
                "reminder_offsets_hours": [48, 24, 3],
                "quiet_hours_start": "22:00",
                "quiet_hours_end": "07:00",
            },
            headers=auth,
        )
        assert saved.status_code == 200, saved.text
        appointment = await book(ctx, world)
        saturday, sunday = REMINDER_AT - timedelta(days=1), REMINDER_AT
        monday_five = datetime(2026, 11, 22, 21, 0, tzinfo=UTC)  # 05:00 in Shanghai: quiet
        monday_seven = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)

        async def pending() -> list[tuple[datetime, str]]:
            async with ctx.db.read() as s:
                rows = await s.execute(
                    select(OutboxMessage.available_at, OutboxMessage.status)
                    .where(
                        OutboxMessage.appointment_id == appointment.id,
                        OutboxMessage.kind == "reminder",
                    )
                    .order_by(OutboxMessage.available_at)
                )
                return [(r[0], r[1]) for r in rows.all()]

        async def to_come() -> list[datetime]:
            async with ctx.db.read() as s:
                return await service.pending_reminders(s, appointment_id=appointment.id)

        # One row for three reminders; the pages still show all three to come.
        assert await pending() == [(saturday, "pending")]
        assert await to_come() == [saturday, sunday, monday_seven]
        assert monday_five < monday_seven  # the 3-hour one left the quiet hours
        sms = FakeSms()
        clock.set(saturday + timedelta(minutes=1))
        await deliver_due(ctx, senders=Senders(sms=sms))
        assert [status for _, status in await pending()] == ["dispatched", "pending"]
        assert await to_come() == [sunday, monday_seven]
        # The worker was away on Sunday: the Sunday reminder is not sent late on Monday
        # morning beside the Monday one.
        clock.set(monday_seven + timedelta(minutes=1))
        await deliver_due(ctx, senders=Senders(sms=sms))
        await deliver_due(ctx, senders=Senders(sms=sms))
        reminders = [m for m in sms.calls if "提醒您" in m.text]
        assert len(reminders) == 2
        assert [at for at, _ in await pending()] == [saturday, sunday]
        assert await to_come() == []

    async def test_cancelling_ends_the_chain_of_reminders(
        self, client: httpx.AsyncClient, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        auth = await staff_auth(client, ctx, world, Role.ADMIN)
        saved = await client.put(
            "/api/v1/notification-settings",
            json={
                "reminder_offsets_hours": [48, 24],
                "quiet_hours_start": "22:00",
                "quiet_hours_end": "07:00",
            },
            headers=auth,
        )
        assert saved.status_code == 200, saved.text
        appointment = await book(ctx, world)
        sms = FakeSms()
        clock.set(REMINDER_AT - timedelta(days=1, minutes=-1))
        await deliver_due(ctx, senders=Senders(sms=sms))

        async def cancel(session: AsyncSession) -> None:
            await booking_service.cancel(
                session,
                actor=app_actor(world),
                appointment_id=appointment.id,
                note=None,
                now=clock.now(),
            )

        await ctx.db.transact(cancel)
        clock.set(REMINDER_AT + timedelta(hours=1))
        await deliver_due(ctx, senders=Senders(sms=sms))
        assert sum("提醒您" in m.text for m in sms.calls) == 1
        async with ctx.db.read() as s:
            assert await service.pending_reminders(s, appointment_id=appointment.id) == []
            statuses = (
                await s.scalars(
                    select(OutboxMessage.status)
                    .where(
                        OutboxMessage.appointment_id == appointment.id,
                        OutboxMessage.kind == "reminder",
                    )
                    .order_by(OutboxMessage.available_at)
                )
            ).all()
        assert list(statuses) == ["dispatched", "withdrawn"]

    async def test_cancelling_withdraws_the_reminders_and_none_is_sent(
        self, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        appointment = await book(ctx, world)

        async def cancel(session: AsyncSession) -> None:
            await booking_service.cancel(
                session, actor=app_actor(world), appointment_id=appointment.id, note=None, now=NOW
            )

        await ctx.db.transact(cancel)
        clock.set(REMINDER_AT + timedelta(hours=1))
        sms = FakeSms()
        await deliver_due(ctx, senders=Senders(sms=sms))
        async with ctx.db.read() as s:
            statuses = dict(
                (await s.execute(select(OutboxMessage.kind, OutboxMessage.status))).all()
            )
        assert statuses["reminder"] == "withdrawn"
        assert len(sms.calls) == 2  # the confirmation and the cancellation
        assert all("提醒" not in m.text for m in sms.calls)

    async def test_the_worker_withdraws_a_claimed_reminder_of_a_visit_no_longer_booked(
        self, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        appointment = await book(ctx, world)
        clock.set(REMINDER_AT)
        sms = FakeSms()
        await fan_out_only(ctx)
        async with ctx.db.session_scope() as s:
            # Changed behind the booking service's back: only the worker's check is left.
            await s.execute(
                update(Appointment)
                .where(Appointment.id == appointment.id)
                .values(status=AppointmentStatus.NO_SHOW)
            )
        report = await deliver_due(ctx, senders=Senders(sms=sms))
        assert report.withdrawn >= 1
        assert all("提醒" not in m.text for m in sms.calls)

    async def test_quiet_hours_move_a_reminder_to_their_end(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await staff_auth(client, ctx, world, Role.ADMIN)
        saved = await client.put(
            "/api/v1/notification-settings",
            json={
                "reminder_offsets_hours": [24],
                "quiet_hours_start": "06:00",
                "quiet_hours_end": "09:30",
            },
            headers=auth,
        )
        assert saved.status_code == 200, saved.text
        appointment = await book(ctx, world)
        async with ctx.db.read() as s:
            at = await s.scalar(
                select(OutboxMessage.available_at).where(
                    OutboxMessage.appointment_id == appointment.id,
                    OutboxMessage.kind == "reminder",
                )
            )
        # Sunday 08:00 falls in 06:00–09:30: it waits until 09:30 (01:30 UTC).
        assert at == datetime(2026, 11, 22, 1, 30, tzinfo=UTC)


class TestTemplates:
    async def test_department_and_language_pick_the_wording(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await staff_auth(client, ctx, world, Role.ADMIN)
        for body in (
            {
                "kind": "booking_confirmed",
                "locale": "zh-CN",
                "subject": "挂号成功",
                "body": "{patient}，请于{date} {time}到{location}。",
            },
            {
                "kind": "booking_confirmed",
                "locale": "zh-CN",
                "department_id": str(world.department.id),
                "subject": "儿科挂号成功",
                "body": "{patient}，请携带儿童预防接种证和医保卡。凭证码{voucher_code}",
            },
        ):
            response = await client.put("/api/v1/message-templates", json=body, headers=auth)
            assert response.status_code == 200, response.text
        listed = (await client.get("/api/v1/message-templates", headers=auth)).json()
        mine = [t for t in listed if t["kind"] == "booking_confirmed" and t["custom"]]
        assert {t["subject"] for t in mine} == {"挂号成功", "儿科挂号成功"}
        await book(ctx, world)
        sms = FakeSms()
        await deliver_due(ctx, senders=Senders(sms=sms))
        assert sms.calls[0].text.startswith(f"{world.patient.name}，请携带儿童预防接种证")
        async with ctx.db.read() as s:
            [item] = await service.inbox_for_account(s, account_id=world.patient.account_id)
        assert item.title == "儿科挂号成功"

    async def test_where_to_go_names_the_clinic_room(self, ctx: AppContext, world: World) -> None:
        async with ctx.db.session_scope() as s:
            await s.execute(
                update(ClinicSession)
                .where(ClinicSession.id == world.session.id)
                .values(room="3诊室")
            )
            await s.execute(
                update(Department)
                .where(Department.id == world.department.id)
                .values(location="门诊楼2层A区")
            )
        await book(ctx, world)
        sms = FakeSms()
        await deliver_due(ctx, senders=Senders(sms=sms))
        [confirmation] = sms.calls
        assert "地点门诊楼2层A区 3诊室" in confirmation.text

    def test_the_place_is_the_location_and_the_room(self) -> None:
        assert rules.visit_place("门诊楼2层A区", "3诊室") == "门诊楼2层A区 3诊室"
        assert rules.visit_place("门诊楼2层A区", "") == "门诊楼2层A区"
        assert rules.visit_place("", "3诊室") == "3诊室"

    async def test_bad_templates_and_settings_are_refused_and_change_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await staff_auth(client, ctx, world, Role.ADMIN)
        before = await row_counts(ctx.db)
        unknown = await client.put(
            "/api/v1/message-templates",
            json={"kind": "reminder", "locale": "en", "subject": "x", "body": "{id_number}"},
            headers={**auth, "Accept-Language": "en"},
        )
        body = assert_problem(unknown, 422, "invalid_template")
        assert "id_number" in body["detail"] and "voucher_code" in body["allowed"]
        assert_problem(
            await client.put(
                "/api/v1/message-templates",
                json={"kind": "reminder", "locale": "fr", "subject": "x", "body": "y"},
                headers=auth,
            ),
            422,
            "unsupported_locale",
        )
        assert_problem(
            await client.put(
                "/api/v1/notification-settings",
                json={
                    "reminder_offsets_hours": [24, 24],
                    "quiet_hours_start": "21:00",
                    "quiet_hours_end": "08:00",
                },
                headers=auth,
            ),
            422,
            "invalid_notification_settings",
        )
        assert_problem(
            await client.put(
                "/api/v1/notification-settings",
                json={"reminder_offsets_hours": [24], "quiet_hours_start": "25:00"},
                headers=auth,
            ),
            422,
            "validation_error",
        )
        registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
        assert_problem(
            await client.get("/api/v1/notification-settings", headers=registrar), 403, "forbidden"
        )
        after = await row_counts(ctx.db)
        # Only the registrar signed in to try: a user and their session, nothing else.
        assert after == {
            **before,
            "staff_user": before["staff_user"] + 1,
            "staff_session": before["staff_session"] + 1,
        }


class TestConsole:
    async def test_demo_mode_shows_the_code_on_the_demo_phone(
        self, ctx: AppContext, world: World
    ) -> None:
        demo = dataclasses.replace(
            ctx, settings=ctx.settings.model_copy(update={"demo_mode": True})
        )
        await sign_in_codes(demo, world, 1)
        await deliver_due(demo, senders=Senders())
        async with ctx.db.read() as s:
            [shown] = await service.demo_phone_messages(s, hospital_id=world.hospital.id)
        assert "000000" in shown.body and shown.phone_masked == "139****0000"

    async def test_outside_demo_mode_the_console_keeps_nothing_and_hides_the_code(
        self, ctx: AppContext, world: World, caplog: pytest.LogCaptureFixture
    ) -> None:
        await sign_in_codes(ctx, world, 1)
        with caplog.at_level("INFO", logger="yuyue.notifications.delivery"):
            report = await deliver_due(ctx, senders=Senders())
        assert report.sent == 1
        assert "139****0000" in caplog.text and "******" in caplog.text
        assert "000000" not in caplog.text
        async with ctx.db.read() as s:
            assert await s.scalar(select(DemoPhoneMessage.id)) is None
            [delivery] = (await s.scalars(select(Delivery))).all()
        assert delivery.status == "sent"


class TestJobs:
    async def test_the_deliver_now_task_and_the_doorbell_deliver(
        self, ctx: AppContext, world: World, database_template: DatabaseTemplate
    ) -> None:
        sms = FakeSms()
        worker_dbs: list[Database] = []

        def make_context() -> AppContext:
            db = Database(ctx.db.url, connect_args=database_template.connect_args, pool_size=2)
            worker_dbs.append(db)
            return dataclasses.replace(ctx, db=db)

        jobs = Jobs(
            Settings(database_url=ctx.db.url, secret_key=SECRET),
            make_context=make_context,
            make_senders=lambda _settings: Senders(sms=sms),
            immediate=True,
        )
        try:
            await book(ctx, world)
            await asyncio.to_thread(jobs.deliver_now)
            assert len(sms.calls) == 1
            # The doorbell, as the routes ring it after a commit.
            await book(ctx, world, world.other_patient)
            attach(ctx, jobs)
            jobs.start_doorbell()
            request_delivery(ctx)
            deadline = wallclock.monotonic() + 10
            while len(sms.calls) < 2 and wallclock.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            assert len(sms.calls) == 2
        finally:
            detach(ctx)
            await asyncio.to_thread(jobs.close)
        assert len(worker_dbs) == 2  # the test's thread and the doorbell's thread
        request_delivery(ctx)  # detached: a no-op that does not raise

    async def test_the_expiry_job_returns_overdue_holds(
        self, ctx: AppContext, clock: FixedClock, world: World
    ) -> None:
        from yuyue.jobs import expire_holds_once

        assert await expire_holds_once(ctx) == []
