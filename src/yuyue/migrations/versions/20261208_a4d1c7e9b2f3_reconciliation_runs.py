"""reconciliation: refunds of charges with no order, waiting runs, what each item found

A provider-only charge (money the provider took for an order we never had) is refunded
through the same refund rows as every other refund, so a refund may have no order and no
appointment: it then carries the provider, the provider's out_trade_no and the charge's
total. A run waits and is retried while the provider's statement is not ready; its items
keep the line's kind and time, the automatic refund they started and its amount.

Revision ID: a4d1c7e9b2f3
Revises: 37f7990823fd
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "a4d1c7e9b2f3"
down_revision: str | None = "37f7990823fd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.alter_column("order_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.alter_column("appointment_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column("provider", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("out_trade_no", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("total_fen", sa.Integer(), nullable=True))

    with op.batch_alter_table("reconciliation_run", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("local_refund_fen", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("provider_refund_fen", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("tries", sa.SmallInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("next_try_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("reconciliation_item", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("line_kind", sa.String(length=8), server_default="payment", nullable=False)
        )
        batch_op.add_column(sa.Column("at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("appointment_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("refund_fen", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("refund_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_reconciliation_item_appointment_id_appointment"),
            "appointment",
            ["appointment_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_reconciliation_item_refund_id_refund"), "refund", ["refund_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_item", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_reconciliation_item_refund_id_refund"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_reconciliation_item_appointment_id_appointment"), type_="foreignkey"
        )
        batch_op.drop_column("refund_id")
        batch_op.drop_column("refund_fen")
        batch_op.drop_column("appointment_id")
        batch_op.drop_column("at")
        batch_op.drop_column("line_kind")

    with op.batch_alter_table("reconciliation_run", schema=None) as batch_op:
        batch_op.drop_column("next_try_at")
        batch_op.drop_column("tries")
        batch_op.drop_column("provider_refund_fen")
        batch_op.drop_column("local_refund_fen")

    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.drop_column("total_fen")
        batch_op.drop_column("out_trade_no")
        batch_op.drop_column("provider")
        batch_op.alter_column("appointment_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.alter_column("order_id", existing_type=sa.Uuid(), nullable=False)
