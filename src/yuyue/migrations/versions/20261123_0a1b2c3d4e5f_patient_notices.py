"""the patient's phone: come back when few are ahead, leave home in time

Revision ID: 0a1b2c3d4e5f
Revises: f1e2d3c4b5a6
Create Date: 2026-11-23 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0a1b2c3d4e5f"
down_revision: str | None = "f1e2d3c4b5a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visit_policy", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "come_back_ahead", sa.SmallInteger(), server_default=sa.text("3"), nullable=False
            )
        )
        batch_op.add_column(
            sa.Column(
                "travel_minutes", sa.SmallInteger(), server_default=sa.text("0"), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("visit_policy", schema=None) as batch_op:
        batch_op.drop_column("travel_minutes")
        batch_op.drop_column("come_back_ahead")
