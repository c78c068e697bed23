"""medical insurance: pre-authorisation holds, payment settings, the split on appointments

Revision ID: 37f7990823fd
Revises: 5d8e2a7c41b9
Create Date: 2026-12-07 03:02:28.080509
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "37f7990823fd"
down_revision: str | None = "5d8e2a7c41b9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_settings",
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("insurance_settlement", sa.String(length=16), nullable=False),
        sa.Column("updated_by", sa.String(length=80), nullable=False),
        sa.Column("updated_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_payment_settings_hospital_id_hospital")
        ),
        sa.PrimaryKeyConstraint("hospital_id", name=op.f("pk_payment_settings")),
    )
    op.create_table(
        "insurance_hold",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("insured_cipher", sa.String(length=200), nullable=False),
        sa.Column("insured_masked", sa.String(length=40), nullable=False),
        sa.Column("auth_no", sa.String(length=64), nullable=True),
        sa.Column("held_fen", sa.Integer(), nullable=False),
        sa.Column("settle_due_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("settled_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("release_due_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("released_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_try_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tries", sa.SmallInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_insurance_hold_hospital_id_hospital")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["payment_order.id"],
            name=op.f("fk_insurance_hold_order_id_payment_order"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insurance_hold")),
        sa.UniqueConstraint("order_id", name=op.f("uq_insurance_hold_order_id")),
    )
    with op.batch_alter_table("insurance_hold", schema=None) as batch_op:
        batch_op.create_index("ix_insurance_hold_next_try_at", ["next_try_at"], unique=False)

    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("split_pool_fen", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("split_account_fen", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("split_self_pay_fen", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.drop_column("split_self_pay_fen")
        batch_op.drop_column("split_account_fen")
        batch_op.drop_column("split_pool_fen")

    with op.batch_alter_table("insurance_hold", schema=None) as batch_op:
        batch_op.drop_index("ix_insurance_hold_next_try_at")

    op.drop_table("insurance_hold")
    op.drop_table("payment_settings")
