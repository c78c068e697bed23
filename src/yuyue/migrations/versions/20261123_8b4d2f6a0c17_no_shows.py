"""no-show policy, the no-shows each ban counted, and appeals against bans

Revision ID: 8b4d2f6a0c17
Revises: e7f0a2c4b913
Create Date: 2026-11-23 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "8b4d2f6a0c17"
down_revision: str | None = "e7f0a2c4b913"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "no_show_policy",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("threshold", sa.SmallInteger(), nullable=False),
        sa.Column("window_days", sa.SmallInteger(), nullable=False),
        sa.Column("ban_days", sa.JSON(), nullable=False),
        sa.Column("grace_minutes", sa.SmallInteger(), nullable=False),
        sa.Column("updated_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "grace_minutes BETWEEN 0 AND 1440", name=op.f("ck_no_show_policy_grace_minutes")
        ),
        sa.CheckConstraint("threshold BETWEEN 1 AND 20", name=op.f("ck_no_show_policy_threshold")),
        sa.CheckConstraint(
            "window_days BETWEEN 1 AND 730", name=op.f("ck_no_show_policy_window_days")
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_no_show_policy_hospital_id_hospital")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_no_show_policy")),
        sa.UniqueConstraint("hospital_id", name=op.f("uq_no_show_policy_hospital_id")),
    )
    op.create_table(
        "blacklist_appeal",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('submitted', 'accepted', 'rejected')",
            name=op.f("ck_blacklist_appeal_status"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_blacklist_appeal_account_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["blacklist_entry.id"],
            name=op.f("fk_blacklist_appeal_entry_id_blacklist_entry"),
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_blacklist_appeal_hospital_id_hospital")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_blacklist_appeal_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blacklist_appeal")),
    )
    with op.batch_alter_table("blacklist_appeal", schema=None) as batch_op:
        batch_op.create_index("ix_blacklist_appeal_patient", ["patient_id"], unique=False)
        batch_op.create_index(
            "ix_blacklist_appeal_status_created",
            ["hospital_id", "status", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "uq_blacklist_appeal_open_entry",
            ["entry_id"],
            unique=True,
            postgresql_where=sa.text("status = 'submitted'"),
            sqlite_where=sa.text("status = 'submitted'"),
        )

    op.create_table(
        "no_show_ban",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_ids", sa.JSON(), nullable=False),
        sa.Column("visit_dates", sa.JSON(), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False),
        sa.Column("window_days", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["blacklist_entry.id"],
            name=op.f("fk_no_show_ban_entry_id_blacklist_entry"),
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_no_show_ban_hospital_id_hospital")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_no_show_ban_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_no_show_ban")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_no_show_ban_entry_id")),
    )
    with op.batch_alter_table("no_show_ban", schema=None) as batch_op:
        batch_op.create_index("ix_no_show_ban_patient", ["patient_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("no_show_ban", schema=None) as batch_op:
        batch_op.drop_index("ix_no_show_ban_patient")

    op.drop_table("no_show_ban")
    with op.batch_alter_table("blacklist_appeal", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_blacklist_appeal_open_entry",
            postgresql_where=sa.text("status = 'submitted'"),
            sqlite_where=sa.text("status = 'submitted'"),
        )
        batch_op.drop_index("ix_blacklist_appeal_status_created")
        batch_op.drop_index("ix_blacklist_appeal_patient")

    op.drop_table("blacklist_appeal")
    op.drop_table("no_show_policy")
