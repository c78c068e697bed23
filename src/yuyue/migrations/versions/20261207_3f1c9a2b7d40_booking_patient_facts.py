"""booking's hot path: lock a patient and read their facts in one call (PostgreSQL)

Revision ID: 3f1c9a2b7d40
Revises: 0a1b2c3d4e5f
Create Date: 2026-12-07 00:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3f1c9a2b7d40"
down_revision: str | None = "0a1b2c3d4e5f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One round trip instead of two: the lock, then the reads. Inside a PL/pgSQL function each
# statement takes a fresh snapshot, so the reads see everything committed by whoever held
# the patient's lock before us (one statement doing both would read the snapshot it took
# before waiting for the lock). Rows: kind 0 the patient, 1 a blacklist entry in force,
# 2 a recent or active appointment. SQLite needs no function: its writer holds the lock.
PATIENT_FACTS = """
CREATE FUNCTION yuyue_patient_facts(
    p_patient uuid, p_hospital uuid, p_now timestamptz, p_since timestamptz
) RETURNS TABLE (
    kind smallint, id uuid, day date, sex text, t1 timestamptz, t2 timestamptz,
    t3 timestamptz, note text, session_id uuid, department_id uuid, doctor_id uuid,
    status text
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM patient p WHERE p.id = p_patient AND p.hospital_id = p_hospital
        FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT 0::smallint, p.id, p.birth_date, p.sex::text, NULL::timestamptz,
            NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::uuid, NULL::uuid,
            NULL::uuid, NULL::text
        FROM patient p WHERE p.id = p_patient
        UNION ALL
        SELECT 1::smallint, b.id, NULL::date, NULL::text, b.starts_at, b.ends_at,
            b.lifted_at, b.reason, NULL::uuid, NULL::uuid, NULL::uuid, NULL::text
        FROM blacklist_entry b WHERE b.patient_id = p_patient AND b.ends_at > p_now
        UNION ALL
        SELECT 2::smallint, a.id, a.visit_date, NULL::text, a.created_at, NULL::timestamptz,
            NULL::timestamptz, a.cancel_reason::text, a.session_id, a.department_id,
            a.doctor_id, a.status::text
        FROM appointment a
        WHERE a.patient_id = p_patient
          AND (a.created_at > p_since OR a.status IN ('held', 'booked', 'checked_in'));
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PATIENT_FACTS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION yuyue_patient_facts(uuid, uuid, timestamptz, timestamptz)")
