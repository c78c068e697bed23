"""the visit day: visits (check-in, the queue, calling), the visit policy and failed
short-code check-ins

Revision ID: a9d4c6e8f031
Revises: e7f0a2c4b913
Create Date: 2026-11-23 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "a9d4c6e8f031"
down_revision: str | None = "e7f0a2c4b913"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "check_in_failure",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("client", sa.String(length=120), nullable=False),
        sa.Column("at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_check_in_failure_hospital_id_hospital")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_in_failure")),
    )
    with op.batch_alter_table("check_in_failure", schema=None) as batch_op:
        batch_op.create_index("ix_check_in_failure_client_at", ["client", "at"], unique=False)

    op.create_table(
        "visit_policy",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("check_in_minutes_before", sa.SmallInteger(), nullable=False),
        sa.Column("late_grace_minutes", sa.SmallInteger(), nullable=False),
        sa.Column("batch_slots", sa.SmallInteger(), nullable=False),
        sa.Column("elderly_age", sa.SmallInteger(), nullable=False),
        sa.Column("priority_classes", sa.JSON(), nullable=False),
        sa.Column("estimate_min_samples", sa.SmallInteger(), nullable=False),
        sa.Column("code_attempts_max", sa.SmallInteger(), nullable=False),
        sa.Column("code_lockout_minutes", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint("batch_slots >= 1", name=op.f("ck_visit_policy_batch_slots")),
        sa.CheckConstraint(
            "check_in_minutes_before BETWEEN 0 AND 1440",
            name=op.f("ck_visit_policy_check_in_minutes"),
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_visit_policy_hospital_id_hospital")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_policy")),
        sa.UniqueConstraint("hospital_id", name=op.f("uq_visit_policy_hospital_id")),
    )
    op.create_table(
        "visit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("department_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=True),
        sa.Column("visit_date", sa.Date(), nullable=False),
        sa.Column("queue_number", sa.SmallInteger(), nullable=False),
        sa.Column("slot_ordinal", sa.SmallInteger(), nullable=False),
        sa.Column("slot_start", sa.Time(), nullable=False),
        sa.Column("walk_in", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=True),
        sa.Column("priority_reason", sa.Text(), nullable=True),
        sa.Column("batch", sa.SmallInteger(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("queued_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=True),
        sa.Column("checked_in_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_in_by", sa.String(length=80), nullable=False),
        sa.Column("called_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("call_count", sa.SmallInteger(), nullable=False),
        sa.Column("skip_count", sa.SmallInteger(), nullable=False),
        sa.Column("started_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("return_visit_needed", sa.Boolean(), nullable=False),
        sa.Column("moved_reason", sa.Text(), nullable=True),
        sa.Column("moved_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('waiting', 'called', 'in_consultation', 'skipped', 'finished')",
            name=op.f("ck_visit_status"),
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointment.id"], name=op.f("fk_visit_appointment_id_appointment")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["department.id"], name=op.f("fk_visit_department_id_department")
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["doctor.id"], name=op.f("fk_visit_doctor_id_doctor")
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_visit_hospital_id_hospital")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_visit_patient_id_patient")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["clinic_session.id"], name=op.f("fk_visit_session_id_clinic_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_visit_appointment_id")),
    )
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.create_index(
            "ix_visit_department_date", ["department_id", "visit_date"], unique=False
        )
        batch_op.create_index("ix_visit_doctor_date", ["doctor_id", "visit_date"], unique=False)
        batch_op.create_index("ix_visit_session_status", ["session_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.drop_index("ix_visit_session_status")
        batch_op.drop_index("ix_visit_doctor_date")
        batch_op.drop_index("ix_visit_department_date")

    op.drop_table("visit")
    op.drop_table("visit_policy")
    with op.batch_alter_table("check_in_failure", schema=None) as batch_op:
        batch_op.drop_index("ix_check_in_failure_client_at")

    op.drop_table("check_in_failure")
