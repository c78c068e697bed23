"""announcements: notices shown to patients and waiting rooms, and who was texted

Revision ID: c5a8e2d7f316
Revises: b7e3f9a1c2d4
Create Date: 2026-12-09 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "c5a8e2d7f316"
down_revision: str | None = "b7e3f9a1c2d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "announcement",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("title", sa.String(length=60), nullable=False),
        sa.Column("title_en", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_en", sa.Text(), nullable=False),
        sa.Column("campus_id", sa.Uuid(), nullable=True),
        sa.Column("department_id", sa.Uuid(), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("starts_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notified", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "kind IN ('maintenance', 'clinic_delayed', 'campus_closed', 'general')",
            name=op.f("ck_announcement_kind"),
        ),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'urgent')", name=op.f("ck_announcement_severity")
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_announcement_window")),
        sa.ForeignKeyConstraint(
            ["campus_id"], ["campus.id"], name=op.f("fk_announcement_campus_id_campus")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_announcement_department_id_department"),
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_announcement_hospital_id_hospital")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["clinic_session.id"],
            name=op.f("fk_announcement_session_id_clinic_session"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcement")),
        sa.UniqueConstraint(
            "hospital_id",
            "idempotency_key",
            name=op.f("uq_announcement_hospital_id_idempotency_key"),
        ),
    )
    op.create_index(
        "ix_announcement_hospital_ends", "announcement", ["hospital_id", "ends_at"], unique=False
    )
    op.create_table(
        "announcement_recipient",
        sa.Column("announcement_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["announcement_id"],
            ["announcement.id"],
            name=op.f("fk_announcement_recipient_announcement_id_announcement"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_announcement_recipient_patient_id_patient"),
        ),
        sa.PrimaryKeyConstraint(
            "announcement_id", "patient_id", name=op.f("pk_announcement_recipient")
        ),
    )


def downgrade() -> None:
    op.drop_table("announcement_recipient")
    op.drop_index("ix_announcement_hospital_ends", table_name="announcement")
    op.drop_table("announcement")
