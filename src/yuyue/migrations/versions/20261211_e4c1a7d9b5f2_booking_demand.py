"""booking: attempts per session, channel, local hour and outcome (the demand heat map's
refused attempts); reports: attempts, refusals and the doctor in report_demand

Revision ID: e4c1a7d9b5f2
Revises: e1c7a3f5b9d2
Create Date: 2026-12-11 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e4c1a7d9b5f2"
down_revision: str | None = "e1c7a3f5b9d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REPORT_COUNTS = ("attempts", "sold_out_refusals", "other_refusals")


def upgrade() -> None:
    op.create_table(
        "booking_demand",
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "hospital_id",
            "session_id",
            "channel",
            "day",
            "hour",
            "outcome",
            name=op.f("pk_booking_demand"),
        ),
    )
    # Rows written before this revision have no attempts (none were counted) and no doctor
    # (`yuyue reports refresh --from … --to …` rebuilds them with one).
    with op.batch_alter_table("report_demand", schema=None) as batch_op:
        for name in _REPORT_COUNTS:
            batch_op.add_column(
                sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0"))
            )


def downgrade() -> None:
    with op.batch_alter_table("report_demand", schema=None) as batch_op:
        for name in reversed(_REPORT_COUNTS):
            batch_op.drop_column(name)
    op.drop_table("booking_demand")
