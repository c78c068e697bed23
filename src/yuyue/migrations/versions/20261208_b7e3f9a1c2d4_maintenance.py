"""maintenance mode: a notice per hospital while new bookings are paused

Revision ID: b7e3f9a1c2d4
Revises: a4d1c7e9b2f3
Create Date: 2026-12-08 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "b7e3f9a1c2d4"
down_revision: str | None = "a4d1c7e9b2f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "maintenance",
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("message_en", sa.String(length=300), nullable=False),
        sa.Column("started_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_maintenance_hospital_id_hospital")
        ),
        sa.PrimaryKeyConstraint("hospital_id", name=op.f("pk_maintenance")),
    )


def downgrade() -> None:
    op.drop_table("maintenance")
