"""kiosk short codes: count wrong phone digits per code, so a code locks and a kiosk slows

Revision ID: 5c2e8d1f4a90
Revises: 3f1c9a2b7d40
Create Date: 2026-12-07 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c2e8d1f4a90"
down_revision: str | None = "3f1c9a2b7d40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("check_in_failure") as table:
        table.add_column(sa.Column("code", sa.String(length=20), nullable=True))
    op.create_index("ix_check_in_failure_code_at", "check_in_failure", ["code", "at"])


def downgrade() -> None:
    op.drop_index("ix_check_in_failure_code_at", table_name="check_in_failure")
    with op.batch_alter_table("check_in_failure") as table:
        table.drop_column("code")
