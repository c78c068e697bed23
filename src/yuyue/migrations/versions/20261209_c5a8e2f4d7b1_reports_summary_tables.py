"""reports: the daily summary tables the reports read (one per grain), rebuilt a visit day at a time

Revision ID: c5a8e2f4d7b1
Revises: c5a8e2d7f316
Create Date: 2026-12-09 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "c5a8e2f4d7b1"
down_revision: str | None = "c5a8e2d7f316"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_day",
        sa.Column("level_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("made", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.Column("checked_in", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("no_show", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.Column("expired", sa.Integer(), nullable=False),
        sa.Column("waitlist_joined", sa.Integer(), nullable=False),
        sa.Column("waitlist_accepted", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("campus_id", sa.Uuid(), nullable=True),
        sa.Column("department_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_day")),
    )
    with op.batch_alter_table("report_day", schema=None) as batch_op:
        batch_op.create_index("ix_report_day_hospital_day", ["hospital_id", "day"], unique=False)

    op.create_table(
        "report_demand",
        sa.Column("request_day", sa.Date(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("waitlist_joins", sa.Integer(), nullable=False),
        sa.Column("sellouts", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("campus_id", sa.Uuid(), nullable=True),
        sa.Column("department_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_demand")),
    )
    with op.batch_alter_table("report_demand", schema=None) as batch_op:
        batch_op.create_index("ix_report_demand_hospital_day", ["hospital_id", "day"], unique=False)
        batch_op.create_index(
            "ix_report_demand_hospital_request_day", ["hospital_id", "request_day"], unique=False
        )

    op.create_table(
        "report_money",
        sa.Column("money_day", sa.Date(), nullable=False),
        sa.Column("level_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("payments", sa.Integer(), nullable=False),
        sa.Column("paid_fen", sa.Integer(), nullable=False),
        sa.Column("refunds", sa.Integer(), nullable=False),
        sa.Column("refund_fen", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("campus_id", sa.Uuid(), nullable=True),
        sa.Column("department_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_money")),
    )
    with op.batch_alter_table("report_money", schema=None) as batch_op:
        batch_op.create_index("ix_report_money_hospital_day", ["hospital_id", "day"], unique=False)
        batch_op.create_index(
            "ix_report_money_hospital_money_day", ["hospital_id", "money_day"], unique=False
        )

    op.create_table(
        "report_places",
        sa.Column("level_id", sa.Uuid(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("stopped_sessions", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("remote_capacity", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("campus_id", sa.Uuid(), nullable=True),
        sa.Column("department_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_places")),
    )
    with op.batch_alter_table("report_places", schema=None) as batch_op:
        batch_op.create_index("ix_report_places_hospital_day", ["hospital_id", "day"], unique=False)

    op.create_table(
        "report_refresh",
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("refreshed_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hospital_id", "day", name=op.f("pk_report_refresh")),
    )
    op.create_table(
        "report_waits",
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("called", sa.Integer(), nullable=False),
        sa.Column("wait_seconds", sa.Integer(), nullable=False),
        sa.Column("finished", sa.Integer(), nullable=False),
        sa.Column("consult_seconds", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("campus_id", sa.Uuid(), nullable=True),
        sa.Column("department_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_waits")),
    )
    with op.batch_alter_table("report_waits", schema=None) as batch_op:
        batch_op.create_index("ix_report_waits_hospital_day", ["hospital_id", "day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_waits", schema=None) as batch_op:
        batch_op.drop_index("ix_report_waits_hospital_day")

    op.drop_table("report_waits")
    op.drop_table("report_refresh")
    with op.batch_alter_table("report_places", schema=None) as batch_op:
        batch_op.drop_index("ix_report_places_hospital_day")

    op.drop_table("report_places")
    with op.batch_alter_table("report_money", schema=None) as batch_op:
        batch_op.drop_index("ix_report_money_hospital_money_day")
        batch_op.drop_index("ix_report_money_hospital_day")

    op.drop_table("report_money")
    with op.batch_alter_table("report_demand", schema=None) as batch_op:
        batch_op.drop_index("ix_report_demand_hospital_request_day")
        batch_op.drop_index("ix_report_demand_hospital_day")

    op.drop_table("report_demand")
    with op.batch_alter_table("report_day", schema=None) as batch_op:
        batch_op.drop_index("ix_report_day_hospital_day")

    op.drop_table("report_day")
