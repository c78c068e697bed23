"""The failover drill: a primary with a synchronous standby, patients booking at a steady
rate, the primary killed, the standby promoted, yuyue reconnecting by itself through its
multi-host connection string. Afterwards every booking answered 201 exists exactly once,
every retry with its Idempotency-Key returns the first answer, no place is overbooked, and
the outbox sends each message once (two delivery workers run through the failover against a
local server that plays Alibaba Cloud SMS), and the pause is measured."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from tests import factories as f
from tests.conftest import NOW, SECRET, VISIT_DAY
from tests.notifications.fake_providers import FakeAlibaba
from tests.ops import pgcluster as pg
from yuyue.booking.models import Appointment
from yuyue.booking.states import ACTIVE_STATUSES
from yuyue.config import Settings
from yuyue.kit import migrate
from yuyue.kit.clock import FixedClock
from yuyue.kit.crypto import FieldCipher, load_master_secret
from yuyue.kit.db import Database
from yuyue.notifications import rules as message_rules
from yuyue.notifications.channels.alibaba import AlibabaSmsSender
from yuyue.notifications.delivery import Senders, deliver_due
from yuyue.notifications.models import Delivery, DeliveryStatus
from yuyue.scheduling.models import SlotPool
from yuyue.web.app import create_app
from yuyue.web.context import AppContext

SMS_KEY_ID, SMS_SECRET, SMS_SIGN = "drill-key", "drill-secret", "示例医院"


async def _deliver_until_stopped(
    ctx: AppContext, senders: Senders, stop: asyncio.Event, broken: list[str]
) -> None:
    """A delivery worker's loop: a pass that breaks (the database went away mid-pass) is
    logged and the next pass starts a moment later, as the job runner does."""
    while not stop.is_set():
        try:
            await deliver_due(ctx, senders=senders, limit=10)
        except Exception as error:
            broken.append(type(error).__name__)
        await asyncio.sleep(0.03)


@dataclass
class Tally:
    answered: dict[str, str] = field(default_factory=dict)  # idempotency key -> appointment
    bodies: dict[str, dict[str, str]] = field(default_factory=dict)
    twenty: asyncio.Event = field(default_factory=asyncio.Event)
    successes: list[float] = field(default_factory=list)
    failures: int = 0


async def _book_until_answered(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, str], tally: Tally
) -> None:
    key = f"drill-{uuid.uuid4()}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            answer = await client.post(
                "/api/v1/appointments", json=body, headers={**auth, "Idempotency-Key": key}
            )
        except Exception:  # the connection broke mid-request: retry with the same key
            answer = None
        if answer is not None and answer.status_code == 201:
            tally.answered[key] = answer.json()["id"]
            tally.bodies[key] = body
            if len(tally.answered) >= 20:
                tally.twenty.set()
            tally.successes.append(time.monotonic())
            return
        assert answer is None or answer.status_code in (500, 503), answer.text
        tally.failures += 1
        await asyncio.sleep(0.05)
    raise AssertionError("a booking was not answered within 90 s of the failover")


async def test_the_standby_takes_over_and_no_acknowledged_booking_is_lost(
    cluster_root: Path,
) -> None:
    primary = pg.new_primary(cluster_root)
    primary.configure(synchronous_standby_names="standby1", synchronous_commit="on")
    primary.start()
    standby = pg.Server(cluster_root / "standby", pg.free_port())
    with pg.running(primary, standby):
        pg.run(
            pg.BIN / "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            standby.data,
            "-X",
            "stream",
            "--checkpoint=fast",
            "-R",
        )
        standby.configure(
            port=str(standby.port),
            primary_conninfo=(
                f"host=127.0.0.1 port={primary.port} user=postgres application_name=standby1"
            ),
            # Once promoted it has no standby of its own: waiting for one would hold every
            # commit forever (what Patroni's synchronous mode turns off when none is left).
            synchronous_standby_names="",
        )
        standby.start()
        for _ in range(200):
            if primary.sql("SELECT sync_state FROM pg_stat_replication") == "sync":
                break
            await asyncio.sleep(0.1)
        assert primary.sql("SELECT sync_state FROM pg_stat_replication") == "sync"

        await migrate.upgrade(primary.url)
        setup = Database(primary.url)
        cipher = FieldCipher(load_master_secret(SECRET))
        async with setup.session_scope() as s:
            hospital = await f.make_hospital(s, now=NOW)
            department = await f.make_department(s, hospital=hospital)
            level = await f.make_level(s, hospital=hospital, fee_fen=0)
            doctor = await f.make_doctor(s, hospital=hospital, department=department, level=level)
            clinic = await f.make_session(
                s,
                hospital=hospital,
                department=department,
                level=level,
                doctor=doctor,
                day=VISIT_DAY,
                capacity=200,
                now=NOW,
            )
            patients = [
                await f.make_patient(s, hospital=hospital, cipher=cipher, now=NOW)
                for _ in range(60)
            ]
            key = await f.make_api_key(s, hospital=hospital, now=NOW)
        await setup.dispose()
        await setup.write_engine.dispose()

        both = (
            "postgresql+asyncpg://postgres@/postgres"
            f"?host=127.0.0.1:{primary.port}&host=127.0.0.1:{standby.port}"
            "&target_session_attrs=read-write"
        )
        clock = FixedClock(NOW)
        provider = FakeAlibaba(
            access_keys={SMS_KEY_ID: SMS_SECRET},
            sign_names={SMS_SIGN},
            templates={"SMS_BOOKED": set()},
            now=clock.now,
        )
        settings = Settings(
            database_url=both,
            secret_key=SECRET,
            worker_in_process=False,
            db_pool_size=9,
            sms_templates={"booking_confirmed": "SMS_BOOKED"},
        )
        app = create_app(settings, clock=clock, run_worker=False)
        auth = {"Authorization": f"Bearer {key}"}
        tally = Tally()
        stop_delivering = asyncio.Event()
        broken_passes: list[str] = []
        with provider.running():
            async with app.router.lifespan_context(app):
                ctx: AppContext = app.state.ctx
                sms = AlibabaSmsSender(
                    access_key_id=SMS_KEY_ID,
                    access_key_secret=SMS_SECRET,
                    sign_name=SMS_SIGN,
                    endpoint=provider.endpoint,
                    timeout_seconds=2,
                )
                senders = Senders(sms=sms)
                workers = [
                    asyncio.create_task(
                        _deliver_until_stopped(ctx, senders, stop_delivering, broken_passes)
                    )
                    for _ in range(2)
                ]
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://drill"
                ) as client:

                    async def patient(i: int) -> None:
                        body = {"patient_id": str(patients[i].id), "session_id": str(clinic.id)}
                        await _book_until_answered(client, auth, body, tally)

                    # A steady stream: four patients at a time, 60 in all; the primary dies
                    # after the first twenty are answered.
                    async def stream() -> None:
                        for start in range(0, 60, 4):
                            await asyncio.gather(*(patient(i) for i in range(start, start + 4)))
                            await asyncio.sleep(0.02)

                    booking = asyncio.create_task(stream())
                    await tally.twenty.wait()
                    killed_at = time.monotonic()
                    primary.stop("immediate")
                    pg.run(pg.BIN / "pg_ctl", "-D", standby.data, "-w", "promote")
                    await booking

                    # Retries after the failover return the first answers. A connection the
                    # pool still held to the dead primary answers 503 once (nothing changed);
                    # a client retries that as it retries any 503.
                    for key_used, first in tally.answered.items():
                        for _ in range(50):
                            again = await client.post(
                                "/api/v1/appointments",
                                json=tally.bodies[key_used],
                                headers={**auth, "Idempotency-Key": key_used},
                            )
                            if again.status_code != 503:
                                break
                            await asyncio.sleep(0.05)
                        assert again.status_code == 201, again.text
                        assert again.headers["Idempotent-Replayed"] == "true"
                        assert again.json()["id"] == first

                # Deliveries a worker had taken when the primary died are recovered once their
                # lease runs out: the provider is asked whether they went out before any is
                # sent again.
                stop_delivering.set()
                await asyncio.gather(*workers)
                clock.advance(message_rules.LEASE + timedelta(minutes=1))
                for _ in range(20):
                    report = await deliver_due(ctx, senders=senders)
                    if not (report.fanned_out or report.sent or report.retried):
                        break
                    clock.advance(timedelta(minutes=10))  # past any retry back-off
                await sms.aclose()

        kept = Database(standby.url)
        try:
            async with kept.read() as s:
                active = (
                    await s.scalars(
                        select(Appointment.id).where(
                            Appointment.session_id == clinic.id,
                            Appointment.status.in_(ACTIVE_STATUSES),
                        )
                    )
                ).all()
                taken = await s.scalar(
                    select(func.sum(SlotPool.taken)).where(SlotPool.session_id == clinic.id)
                )
                numbers = (
                    await s.scalars(
                        select(Appointment.sequence_number).where(
                            Appointment.session_id == clinic.id
                        )
                    )
                ).all()
                texts = (
                    await s.execute(
                        select(Delivery.id, Delivery.status).where(Delivery.channel == "sms")
                    )
                ).all()
        finally:
            await kept.dispose()
            await kept.write_engine.dispose()
    answered = sorted(tally.answered.values())
    assert len(answered) == 60 and len(set(answered)) == 60
    assert sorted(str(a) for a in active) == answered  # every 201 kept, exactly once
    assert taken == 60 and len(set(numbers)) == len(numbers) == 60
    # Each booking's confirmation went out exactly once, however the failover cut its way.
    assert len(texts) == 60
    assert {status for _, status in texts} == {DeliveryStatus.SENT}
    sent_to_provider = Counter(record.out_id for record in provider.records)
    assert sent_to_provider == Counter(str(delivery_id) for delivery_id, _ in texts)
    after = [t for t in tally.successes if t > killed_at]
    pause = after[0] - killed_at if after else float("inf")
    print(
        f"failover pause: {pause:.2f} s, {tally.failures} refused attempts retried, "
        f"{len(broken_passes)} delivery passes broken by the failover"
    )
    assert pause < 30
