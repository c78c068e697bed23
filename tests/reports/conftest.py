"""A hand-counted fixture for the reports: two clinic sessions of one department on Monday
2026-11-23, eight appointments in known states, two visits with known times, two payments
and a refund, two waitlist entries. Every figure the report tests expect is counted by hand
in docs/reports.md's example and in the comments here.

Times are Asia/Shanghai wall-clock (UTC+8), written as `local(...)`.

Session A (free level, 25 places: 15 appointment pool, 7 on-site, 3 reserved):
  1 app     completed  made Mon 11-16 08:05; checked in 23rd 08:10, called 08:30, done 08:45
  2 app     no_show    made Mon 11-16 08:20
  3 wechat  cancelled  made Tue 11-17 09:00, cancelled 11-18 09:00
  4 wechat  checked_in made Tue 11-17 09:30; checked in 23rd 09:05, called 09:15
  5 app     booked     made Wed 11-18 10:00
  6 window  expired    made Fri 11-20 10:00 (on-site pool), hold ran out 10:15
Session B (fee level 80.00, 2 places: 1 appointment pool, 1 on-site):
  8 wechat  cancelled  made Wed 11-18 20:00 (sells B out: its one remote place), paid by
                       Alipay 20:01, cancelled 21:00, refunded Thu 11-19 09:00
  7 app     booked     made Thu 11-19 08:00, paid by WeChat Pay 08:01
  waitlist on B: app accepted (Thu 09:00), wechat waiting (Thu 10:00)
Booking attempts (booking's counts of the booking POST, written by a DemandCounter flush):
  A  app     booked                  Mon 11-16 08:05, 08:20            (2)
  A  app     already_booked          Sun 11-22 10:00                   (1)
  B  wechat  booked                  Wed 11-18 20:00                   (1)
  B  app     sold_out                Wed 11-18 20:05, 20:20, 20:40     (3)
  B  wechat  sold_out                Wed 11-18 20:50                   (1)
  B  app     booked                  Thu 11-19 08:00                   (1)
  B  app     limit_exceeded          Thu 11-19 08:30                   (1)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from yuyue.booking.demand import DemandCounter
from yuyue.booking.models import Appointment
from yuyue.booking.waitlist.models import WaitlistEntry
from yuyue.payments.models import PaymentOrder, Refund
from yuyue.scheduling.models import ClinicSession, SlotPool
from yuyue.visits.models import Visit
from yuyue.web.context import AppContext

FEE = 8000


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A November 2026 Shanghai wall-clock time as an aware UTC instant."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@dataclass
class Fixture:
    world: World
    fee_session: ClinicSession
    appointments: dict[int, uuid.UUID]


async def _pool(s: AsyncSession, session_id: uuid.UUID, pool: str) -> SlotPool:
    found = (
        await s.scalars(
            select(SlotPool).where(SlotPool.session_id == session_id, SlotPool.pool == pool)
        )
    ).first()
    assert found is not None
    return found


async def build(ctx: AppContext, world: World) -> Fixture:
    ids: dict[int, uuid.UUID] = {}
    async with ctx.db.session_scope() as s:
        fee = await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.fee_level,
            doctor=world.doctor,
            day=VISIT_DAY,
            start=datetime(2026, 1, 1, 14).time(),
            end=datetime(2026, 1, 1, 15).time(),
            capacity=2,
            slot_minutes=60,
            now=NOW,
        )
        patients = [world.patient, world.other_patient]
        for name in ("王五", "赵六", "钱七", "孙八"):
            patients.append(
                await f.make_patient(
                    s, hospital=world.hospital, cipher=ctx.cipher, now=NOW, name=name
                )
            )
        a_remote = await _pool(s, world.session.id, "appointment")
        a_onsite = await _pool(s, world.session.id, "onsite")
        b_remote = await _pool(s, fee.id, "appointment")

        def appointment(
            number: int,
            *,
            clinic: ClinicSession,
            pool: SlotPool,
            patient: int,
            channel: str,
            status: str,
            made: datetime,
            cancelled: datetime | None = None,
            hold_expires: datetime | None = None,
        ) -> Appointment:
            row = Appointment(
                hospital_id=world.hospital.id,
                patient_id=patients[patient].id,
                session_id=clinic.id,
                slot_id=pool.slot_id,
                pool_id=pool.id,
                department_id=clinic.department_id,
                doctor_id=clinic.doctor_id,
                visit_date=VISIT_DAY,
                channel=channel,
                status=status,
                sequence_number=number,
                fee_fen=clinic.fee_fen,
                voucher_code=f"R{number:07d}",
                hold_expires_at=hold_expires,
                booked_at=None if status in ("expired",) else made,
                cancelled_at=cancelled,
                cancel_reason="patient" if cancelled else None,
                created_by="test",
                created_at=made,
                updated_at=made,
            )
            s.add(row)
            return row

        rows = {
            1: appointment(
                1,
                clinic=world.session,
                pool=a_remote,
                patient=0,
                channel="app",
                status="completed",
                made=local(16, 8, 5),
            ),
            2: appointment(
                2,
                clinic=world.session,
                pool=a_remote,
                patient=1,
                channel="app",
                status="no_show",
                made=local(16, 8, 20),
            ),
            3: appointment(
                3,
                clinic=world.session,
                pool=a_remote,
                patient=2,
                channel="wechat",
                status="cancelled",
                made=local(17, 9),
                cancelled=local(18, 9),
            ),
            4: appointment(
                4,
                clinic=world.session,
                pool=a_remote,
                patient=3,
                channel="wechat",
                status="checked_in",
                made=local(17, 9, 30),
            ),
            5: appointment(
                5,
                clinic=world.session,
                pool=a_remote,
                patient=4,
                channel="app",
                status="booked",
                made=local(18, 10),
            ),
            6: appointment(
                6,
                clinic=world.session,
                pool=a_onsite,
                patient=5,
                channel="window",
                status="expired",
                made=local(20, 10),
                hold_expires=local(20, 10, 15),
            ),
            8: appointment(
                20,
                clinic=fee,
                pool=b_remote,
                patient=2,
                channel="wechat",
                status="cancelled",
                made=local(18, 20),
                cancelled=local(18, 21),
            ),
            7: appointment(
                21,
                clinic=fee,
                pool=b_remote,
                patient=0,
                channel="app",
                status="booked",
                made=local(19, 8),
            ),
        }
        await s.flush()
        ids = {number: row.id for number, row in rows.items()}

        def visit(
            number: int,
            *,
            checked_in: datetime,
            called: datetime | None,
            finished: datetime | None,
            status: str,
        ) -> None:
            row = rows[number]
            s.add(
                Visit(
                    hospital_id=world.hospital.id,
                    appointment_id=row.id,
                    session_id=row.session_id,
                    patient_id=row.patient_id,
                    department_id=row.department_id,
                    doctor_id=row.doctor_id,
                    visit_date=VISIT_DAY,
                    queue_number=row.sequence_number,
                    slot_ordinal=0,
                    slot_start=datetime(2026, 1, 1, 8).time(),
                    status=status,
                    batch=0,
                    queued_at=checked_in,
                    checked_in_at=checked_in,
                    checked_in_by="test",
                    called_at=called,
                    call_count=1 if called else 0,
                    started_at=called,
                    finished_at=finished,
                    updated_at=checked_in,
                )
            )

        visit(
            1,
            checked_in=local(23, 8, 10),
            called=local(23, 8, 30),
            finished=local(23, 8, 45),
            status="finished",
        )
        visit(
            4,
            checked_in=local(23, 9, 5),
            called=local(23, 9, 15),
            finished=None,
            status="in_consultation",
        )

        def order(number: int, *, provider: str, paid: datetime, state: str) -> PaymentOrder:
            row = PaymentOrder(
                hospital_id=world.hospital.id,
                appointment_id=rows[number].id,
                patient_id=rows[number].patient_id,
                amount_fen=FEE,
                provider=provider,
                method="native",
                out_trade_no=f"T{number:09d}",
                state=state,
                paid_at=paid,
                created_by="test",
                created_at=paid,
                updated_at=paid,
            )
            s.add(row)
            return row

        order(7, provider="wechatpay", paid=local(19, 8, 1), state="paid")
        refunded = order(8, provider="alipay", paid=local(18, 20, 1), state="refunded")
        await s.flush()
        s.add(
            Refund(
                hospital_id=world.hospital.id,
                order_id=refunded.id,
                appointment_id=rows[8].id,
                provider="alipay",
                out_refund_no="RF000000008",
                amount_fen=FEE,
                reason="patient_cancel",
                state="succeeded",
                finished_at=local(19, 9),
                created_at=local(18, 21),
                updated_at=local(19, 9),
            )
        )
        for patient, channel, status, at in (
            (3, "app", "accepted", local(19, 9)),
            (4, "wechat", "waiting", local(19, 10)),
        ):
            s.add(
                WaitlistEntry(
                    hospital_id=world.hospital.id,
                    session_id=fee.id,
                    patient_id=patients[patient].id,
                    channel=channel,
                    status=status,
                    created_by="test",
                    created_at=at,
                    updated_at=at,
                )
            )
    counter = DemandCounter()
    for clinic, channel, outcome, at in (
        (world.session.id, "app", "booked", local(16, 8, 5)),
        (world.session.id, "app", "booked", local(16, 8, 20)),
        (world.session.id, "app", "already_booked", local(22, 10)),
        (fee.id, "wechat", "booked", local(18, 20)),
        (fee.id, "app", "sold_out", local(18, 20, 5)),
        (fee.id, "app", "sold_out", local(18, 20, 20)),
        (fee.id, "app", "sold_out", local(18, 20, 40)),
        (fee.id, "wechat", "sold_out", local(18, 20, 50)),
        (fee.id, "app", "booked", local(19, 8)),
        (fee.id, "app", "limit_exceeded", local(19, 8, 30)),
    ):
        counter.count(world.hospital.id, clinic, channel, outcome, at)
    await counter.flush(ctx.db)
    return Fixture(world, fee, ids)


@pytest_asyncio.fixture
async def books(ctx: AppContext, world: World) -> Fixture:
    return await build(ctx, world)


WEEK = (date(2026, 11, 16), date(2026, 11, 23))
