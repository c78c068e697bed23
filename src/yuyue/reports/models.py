"""The summary tables the reports context owns, one per grain, filled a whole visit day at a
time by `service.refresh_days` (delete the day's rows, insert them again, in one
transaction). Reports read only these. What each count means: docs/reports.md.

No foreign keys on purpose: the rows are derived data, a day is thrown away and rebuilt,
and a department or doctor removed later must not stop the refresh or the history."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from yuyue.kit.db import Base
from yuyue.kit.ids import new_id


class _Row:
    """Every summary row: its id, its hospital and its visit day (the refresh partition)."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID]
    day: Mapped[date] = mapped_column(Date)
    campus_id: Mapped[uuid.UUID | None]
    department_id: Mapped[uuid.UUID]
    doctor_id: Mapped[uuid.UUID | None]


def _count() -> Mapped[int]:
    return mapped_column(Integer, default=0)


class ReportDay(_Row, Base):
    """Appointments and waitlist entries of a visit day, per department, doctor, level and
    channel, by the state they are in at the refresh."""

    __tablename__ = "report_day"
    __table_args__ = (Index("ix_report_day_hospital_day", "hospital_id", "day"),)

    level_id: Mapped[uuid.UUID]
    channel: Mapped[str] = mapped_column(String(16))
    made: Mapped[int] = _count()
    held: Mapped[int] = _count()
    booked: Mapped[int] = _count()
    checked_in: Mapped[int] = _count()
    completed: Mapped[int] = _count()
    no_show: Mapped[int] = _count()
    cancelled: Mapped[int] = _count()
    expired: Mapped[int] = _count()
    waitlist_joined: Mapped[int] = _count()
    waitlist_accepted: Mapped[int] = _count()


class ReportPlaces(_Row, Base):
    """Clinic sessions and their places on a visit day, per department, doctor and level."""

    __tablename__ = "report_places"
    __table_args__ = (Index("ix_report_places_hospital_day", "hospital_id", "day"),)

    level_id: Mapped[uuid.UUID]
    sessions: Mapped[int] = _count()
    stopped_sessions: Mapped[int] = _count()
    capacity: Mapped[int] = _count()
    remote_capacity: Mapped[int] = _count()


class ReportDemand(_Row, Base):
    """When the requests for a visit day's places came: per local day and hour of the
    request, department, doctor and channel. `day` is the visit day (the partition); reports
    filter on `request_day`. Sell-outs are the session's, on rows with the channel ''.
    Attempts are booking's counts of the booking POST (`booking.demand`): every attempt,
    and of those the ones refused as sold out and refused otherwise."""

    __tablename__ = "report_demand"
    __table_args__ = (
        Index("ix_report_demand_hospital_day", "hospital_id", "day"),
        Index("ix_report_demand_hospital_request_day", "hospital_id", "request_day"),
    )

    request_day: Mapped[date] = mapped_column(Date)
    weekday: Mapped[int] = mapped_column(SmallInteger)
    hour: Mapped[int] = mapped_column(SmallInteger)
    channel: Mapped[str] = mapped_column(String(16))
    requests: Mapped[int] = _count()
    waitlist_joins: Mapped[int] = _count()
    sellouts: Mapped[int] = _count()
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sold_out_refusals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    other_refusals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ReportWaits(_Row, Base):
    """Waits of a visit day's checked-in patients, per department, doctor and the local hour
    of check-in."""

    __tablename__ = "report_waits"
    __table_args__ = (Index("ix_report_waits_hospital_day", "hospital_id", "day"),)

    hour: Mapped[int] = mapped_column(SmallInteger)
    visits: Mapped[int] = _count()
    called: Mapped[int] = _count()
    wait_seconds: Mapped[int] = _count()
    finished: Mapped[int] = _count()
    consult_seconds: Mapped[int] = _count()


class ReportMoney(_Row, Base):
    """Money taken and refunded for a visit day's appointments, per local day the money
    moved (`money_day`, which reports filter on), department, doctor, level, channel and
    provider."""

    __tablename__ = "report_money"
    __table_args__ = (
        Index("ix_report_money_hospital_day", "hospital_id", "day"),
        Index("ix_report_money_hospital_money_day", "hospital_id", "money_day"),
    )

    money_day: Mapped[date] = mapped_column(Date)
    level_id: Mapped[uuid.UUID]
    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16))
    payments: Mapped[int] = _count()
    paid_fen: Mapped[int] = mapped_column(Integer, default=0)
    refunds: Mapped[int] = _count()
    refund_fen: Mapped[int] = mapped_column(Integer, default=0)


class ReportSession(_Row, Base):
    """One row per clinic session of a visit day that was not stopped: its places, how many
    were kept from the remote pools and from the local ones (on-site and reserved), its
    outcomes and waitlist, and when it was released and sold out. The quota advice and the
    sell-out report read it; nothing sums it over days without grouping."""

    __tablename__ = "report_session"
    __table_args__ = (Index("ix_report_session_hospital_day", "hospital_id", "day"),)

    session_id: Mapped[uuid.UUID]
    level_id: Mapped[uuid.UUID]
    capacity: Mapped[int] = _count()
    remote_capacity: Mapped[int] = _count()
    remote_used: Mapped[int] = _count()
    local_used: Mapped[int] = _count()
    attended: Mapped[int] = _count()
    no_show: Mapped[int] = _count()
    waitlist_joined: Mapped[int] = _count()
    waitlist_accepted: Mapped[int] = _count()
    released_at: Mapped[datetime | None]
    sold_out_at: Mapped[datetime | None]
    # Minutes from the release to the sell-out (None: it never sold out).
    sellout_minutes: Mapped[int | None] = mapped_column(Integer)


class ReportRefresh(Base):
    """When each visit day's rows were last rebuilt (the reports say how fresh they are)."""

    __tablename__ = "report_refresh"

    hospital_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    refreshed_at: Mapped[datetime]
