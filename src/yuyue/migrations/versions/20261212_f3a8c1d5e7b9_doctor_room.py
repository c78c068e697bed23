"""scheduling: a doctor's room (诊室), the room their new timetable rows start with

Revision ID: f3a8c1d5e7b9
Revises: f3a9c1e7b5d2
Create Date: 2026-12-12 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f3a8c1d5e7b9"
down_revision: str | None = "f3a9c1e7b5d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("doctor") as batch:
        batch.add_column(
            sa.Column("room", sa.String(length=100), server_default="", nullable=False)
        )
    # A doctor's room so far was the one their timetable rows name; keep the first of them.
    op.execute(
        """
        UPDATE doctor SET room = COALESCE((
            SELECT MIN(t.room) FROM schedule_template t
            WHERE t.doctor_id = doctor.id AND t.active AND t.room <> ''
        ), '')
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("doctor") as batch:
        batch.drop_column("room")
