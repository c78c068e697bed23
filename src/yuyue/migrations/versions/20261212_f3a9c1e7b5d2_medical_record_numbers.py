"""patients: medical record numbers (病历号), unique in a hospital, given to the patients
already registered in the order they registered (then by id), and the per-hospital row the
next number is taken from

Revision ID: f3a9c1e7b5d2
Revises: e4c1a7d9b5f2
Create Date: 2026-12-12 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f3a9c1e7b5d2"
down_revision: str | None = "e4c1a7d9b5f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# `patients.rules.record_number`: "MR" and the sequence padded to 8 digits.
_NUMBERED = (
    "SELECT id, ROW_NUMBER() OVER (PARTITION BY hospital_id ORDER BY created_at, id) AS n "
    "FROM patient"
)


def upgrade() -> None:
    op.create_table(
        "patient_record_sequence",
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_id"],
            ["hospital.id"],
            name=op.f("fk_patient_record_sequence_hospital_id_hospital"),
        ),
        sa.PrimaryKeyConstraint("hospital_id", name=op.f("pk_patient_record_sequence")),
    )
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_number", sa.String(length=24), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE patient SET record_number = 'MR' || "
            "CASE WHEN numbered.n < 100000000 THEN lpad(numbered.n::text, 8, '0') "
            "ELSE numbered.n::text END "
            f"FROM ({_NUMBERED}) AS numbered WHERE patient.id = numbered.id"
        )
    else:
        op.execute(
            "UPDATE patient SET record_number = printf('MR%08d', numbered.n) "
            f"FROM ({_NUMBERED}) AS numbered WHERE patient.id = numbered.id"
        )
    op.execute(
        "INSERT INTO patient_record_sequence (hospital_id, last_number) "
        "SELECT hospital_id, COUNT(*) FROM patient GROUP BY hospital_id"
    )
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.alter_column("record_number", existing_type=sa.String(length=24), nullable=False)
        batch_op.create_unique_constraint(
            "uq_patient_record_number", ["hospital_id", "record_number"]
        )


def downgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_constraint("uq_patient_record_number", type_="unique")
        batch_op.drop_column("record_number")
    op.drop_table("patient_record_sequence")
