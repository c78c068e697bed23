"""reports: one summary row per clinic session (places kept per pool, release and sell-out), for
the quota advice and the sell-out report

Revision ID: d2b6f1a9c3e8
Revises: d2b4f6a8c0e1
Create Date: 2026-12-10 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "d2b6f1a9c3e8"
down_revision: str | None = "d2b4f6a8c0e1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_session",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("level_id", sa.Uuid(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("remote_capacity", sa.Integer(), nullable=False),
        sa.Column("remote_used", sa.Integer(), nullable=False),
        sa.Column("local_used", sa.Integer(), nullable=False),
        sa.Column("attended", sa.Integer(), nullable=False),
        sa.Column("no_show", sa.Integer(), nullable=False),
        sa.Column("waitlist_joined", sa.Integer(), nullable=False),
        sa.Column("waitlist_accepted", sa.Integer(), nullable=False),
        sa.Column("released_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sold_out_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sellout_minutes", sa.Integer(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("campus_id", sa.Uuid(), nullable=True),
        sa.Column("department_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_session")),
    )
    with op.batch_alter_table("report_session", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_session_hospital_day", ["hospital_id", "day"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("report_session", schema=None) as batch_op:
        batch_op.drop_index("ix_report_session_hospital_day")

    op.drop_table("report_session")
