"""booking's hot path: the patient's facts and the claim of a place in one call (PostgreSQL)

Revision ID: e1c7a3f5b9d2
Revises: e4c1a7b9d2f5
Create Date: 2026-12-11 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e1c7a3f5b9d2"
down_revision: str | None = "e4c1a7b9d2f5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# `yuyue_patient_facts` and then the claim, in one round trip. Each statement of a PL/pgSQL
# function takes a fresh snapshot: the reads after the patient's lock see what the lock's
# previous holder committed, and the used numbers read after the claim's row lock see every
# appointment of the pool (whoever numbers a place of the pool holds that lock until they
# commit). Rows: kind 0 the patient, 1 a blacklist entry in force, 2 a recent or active
# appointment, 3 the place claimed (none when no place of the pools is free). The caller
# checks its rules on the facts and gives the place back when one refuses.
FACTS_AND_CLAIM = """
CREATE FUNCTION yuyue_facts_and_claim(
    p_patient uuid, p_hospital uuid, p_now timestamptz, p_since timestamptz,
    p_session uuid, p_pools text[], p_slot uuid
) RETURNS TABLE (
    kind smallint, id uuid, day date, sex text, t1 timestamptz, t2 timestamptz,
    t3 timestamptz, note text, session_id uuid, department_id uuid, doctor_id uuid,
    status text, slot_id uuid, first_number integer, capacity integer,
    slot_start time, slot_end time, used integer[]
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_pool uuid;
    v_slot uuid;
    v_first integer;
    v_capacity integer;
    v_start time;
    v_end time;
BEGIN
    PERFORM 1 FROM patient p WHERE p.id = p_patient AND p.hospital_id = p_hospital
        FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT 0::smallint, p.id, p.birth_date, p.sex::text, NULL::timestamptz,
            NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::uuid, NULL::uuid,
            NULL::uuid, NULL::text, NULL::uuid, NULL::integer, NULL::integer, NULL::time,
            NULL::time, NULL::integer[]
        FROM patient p WHERE p.id = p_patient
        UNION ALL
        SELECT 1::smallint, b.id, NULL::date, NULL::text, b.starts_at, b.ends_at,
            b.lifted_at, b.reason, NULL::uuid, NULL::uuid, NULL::uuid, NULL::text,
            NULL::uuid, NULL::integer, NULL::integer, NULL::time, NULL::time,
            NULL::integer[]
        FROM blacklist_entry b WHERE b.patient_id = p_patient AND b.ends_at > p_now
        UNION ALL
        SELECT 2::smallint, a.id, a.visit_date, NULL::text, a.created_at, NULL::timestamptz,
            NULL::timestamptz, a.cancel_reason::text, a.session_id, a.department_id,
            a.doctor_id, a.status::text, NULL::uuid, NULL::integer, NULL::integer,
            NULL::time, NULL::time, NULL::integer[]
        FROM appointment a
        WHERE a.patient_id = p_patient
          AND (a.created_at > p_since OR a.status IN ('held', 'booked', 'checked_in'));
    -- A row that fills between the pick and its lock updates nothing: look again unless
    -- nothing of the pools is free at all.
    FOR attempt IN 1..256 LOOP
        UPDATE slot_pool sp SET taken = sp.taken + 1
        WHERE sp.id = (
            SELECT c.id FROM slot_pool c
            WHERE c.session_id = p_session AND c.pool = ANY(p_pools)
              AND c.taken < c.capacity AND c.is_open
              AND (p_slot IS NULL OR c.slot_id = p_slot)
            ORDER BY c.slot_ordinal, c.first_number
            LIMIT 1
        ) AND sp.taken < sp.capacity AND sp.is_open
        RETURNING sp.id, sp.slot_id, sp.first_number, sp.capacity, sp.slot_start, sp.slot_end
        INTO v_pool, v_slot, v_first, v_capacity, v_start, v_end;
        IF FOUND THEN
            RETURN QUERY
                SELECT 3::smallint, v_pool, NULL::date, NULL::text, NULL::timestamptz,
                    NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::uuid,
                    NULL::uuid, NULL::uuid, NULL::text, v_slot, v_first, v_capacity,
                    v_start, v_end,
                    ARRAY(SELECT a.sequence_number::integer FROM appointment a
                          WHERE a.pool_id = v_pool
                            AND a.status IN ('held', 'booked', 'checked_in'));
            RETURN;
        END IF;
        PERFORM 1 FROM slot_pool c
        WHERE c.session_id = p_session AND c.pool = ANY(p_pools)
          AND c.taken < c.capacity AND c.is_open
          AND (p_slot IS NULL OR c.slot_id = p_slot)
        LIMIT 1;
        IF NOT FOUND THEN
            RETURN;
        END IF;
    END LOOP;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FACTS_AND_CLAIM)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION yuyue_facts_and_claim(uuid, uuid, timestamptz, timestamptz, uuid,"
            " text[], uuid)"
        )
