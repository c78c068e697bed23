"""reserved places go to on-site registration at a set time on the visit day

Revision ID: c3d5e7f9a1b2
Revises: e7f0a2c4b913
Create Date: 2026-11-23 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3d5e7f9a1b2"
down_revision: str | None = "e7f0a2c4b913"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN with a constant default: SQLite does it in place.
    with op.batch_alter_table("booking_policy", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "reserved_release_time",
                sa.Time(),
                server_default=sa.text("'07:00:00'"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("booking_policy", schema=None) as batch_op:
        batch_op.drop_column("reserved_release_time")
