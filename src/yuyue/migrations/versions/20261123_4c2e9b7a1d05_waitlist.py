"""waitlist entries and the waitlist policy

Revision ID: 4c2e9b7a1d05
Revises: 622c5e0a8f7c
Create Date: 2026-11-23 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "4c2e9b7a1d05"
down_revision: str | None = "622c5e0a8f7c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = sa.text("status IN ('waiting', 'offered')")
_STATUSES = (
    "status IN ('waiting', 'offered', 'accepted', 'declined', 'lapsed', 'left', 'closed', "
    "'skipped')"
)


def upgrade() -> None:
    # Plain ADD COLUMN with a constant default: SQLite does it in place, no table rebuild.
    with op.batch_alter_table("booking_policy", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("waitlist_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "waitlist_closes_minutes",
                sa.SmallInteger(),
                server_default=sa.text("120"),
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "waitlist_offer_minutes",
                sa.SmallInteger(),
                server_default=sa.text("30"),
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "waitlist_max_active",
                sa.SmallInteger(),
                server_default=sa.text("3"),
                nullable=False,
            )
        )
    op.create_table(
        "waitlist_entry",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("offer_appointment_id", sa.Uuid(), nullable=True),
        sa.Column("offer_expires_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_STATUSES, name=op.f("ck_waitlist_entry_status")),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_waitlist_entry_hospital_id_hospital")
        ),
        sa.ForeignKeyConstraint(
            ["offer_appointment_id"],
            ["appointment.id"],
            name=op.f("fk_waitlist_entry_offer_appointment_id_appointment"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_waitlist_entry_patient_id_patient")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["clinic_session.id"],
            name=op.f("fk_waitlist_entry_session_id_clinic_session"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entry")),
    )
    with op.batch_alter_table("waitlist_entry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_waitlist_entry_offer_appointment_id", ["offer_appointment_id"], unique=False
        )
        batch_op.create_index(
            "ix_waitlist_entry_patient_status", ["patient_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_waitlist_entry_session_status",
            ["session_id", "status", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "uq_waitlist_entry_active_patient_session",
            ["patient_id", "session_id"],
            unique=True,
            postgresql_where=_ACTIVE,
            sqlite_where=_ACTIVE,
        )


def downgrade() -> None:
    with op.batch_alter_table("waitlist_entry", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_waitlist_entry_active_patient_session",
            postgresql_where=_ACTIVE,
            sqlite_where=_ACTIVE,
        )
        batch_op.drop_index("ix_waitlist_entry_session_status")
        batch_op.drop_index("ix_waitlist_entry_patient_status")
        batch_op.drop_index("ix_waitlist_entry_offer_appointment_id")
    op.drop_table("waitlist_entry")
    with op.batch_alter_table("booking_policy", schema=None) as batch_op:
        batch_op.drop_column("waitlist_max_active")
        batch_op.drop_column("waitlist_offer_minutes")
        batch_op.drop_column("waitlist_closes_minutes")
        batch_op.drop_column("waitlist_enabled")
