"""patients: the channels that know a patient (what a channel key may read), carried over from
the appointments booked through each channel; the window's reads of patients under one
`read.` family of audit actions

Revision ID: e4c1a7b9d2f5
Revises: d2b6f1a9c3e8
Create Date: 2026-12-11 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "e4c1a7b9d2f5"
down_revision: str | None = "d2b6f1a9c3e8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The audit actions the window wrote for reads before they had their own family.
_RENAMED = (("patient.looked_up", "read.lookup"), ("patient.viewed", "read.record"))


def upgrade() -> None:
    op.create_table(
        "patient_channel",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("since", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_patient_channel_hospital_id_hospital")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_patient_channel_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("patient_id", "channel", name=op.f("pk_patient_channel")),
    )
    # Partners keep reading the patients they booked for before this rule: each remote
    # channel that booked a patient knows them from its first booking on.
    op.execute(
        "INSERT INTO patient_channel (patient_id, channel, hospital_id, since) "
        "SELECT patient_id, channel, hospital_id, MIN(created_at) FROM appointment "
        "WHERE channel NOT IN ('kiosk', 'window') GROUP BY patient_id, channel, hospital_id"
    )
    for old, new in _RENAMED:
        op.execute(
            sa.text("UPDATE audit_entry SET action = :new WHERE action = :old").bindparams(
                old=old, new=new
            )
        )


def downgrade() -> None:
    for old, new in _RENAMED:
        op.execute(
            sa.text("UPDATE audit_entry SET action = :old WHERE action = :new").bindparams(
                old=old, new=new
            )
        )
    op.drop_table("patient_channel")
