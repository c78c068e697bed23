"""payments: orders, attempts, refunds, reconciliation; what the appointment shows of its money

Revision ID: 7c2d9e4a1b60
Revises: 5c2e8d1f4a90
Create Date: 2026-12-07 02:41:41.528471
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "7c2d9e4a1b60"
down_revision: str | None = "5c2e8d1f4a90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("local_count", sa.Integer(), nullable=False),
        sa.Column("provider_count", sa.Integer(), nullable=False),
        sa.Column("local_total_fen", sa.Integer(), nullable=False),
        sa.Column("provider_total_fen", sa.Integer(), nullable=False),
        sa.Column("mismatches", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["hospital_id"],
            ["hospital.id"],
            name=op.f("fk_reconciliation_run_hospital_id_hospital"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_run")),
        sa.UniqueConstraint(
            "hospital_id",
            "provider",
            "business_day",
            name=op.f("uq_reconciliation_run_hospital_id_provider_business_day"),
        ),
    )
    op.create_table(
        "reconciliation_item",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("out_trade_no", sa.String(length=32), nullable=False),
        sa.Column("out_refund_no", sa.String(length=64), nullable=True),
        sa.Column("transaction_id", sa.String(length=64), nullable=True),
        sa.Column("local_fen", sa.Integer(), nullable=True),
        sa.Column("provider_fen", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=True),
        sa.Column("handled_by", sa.String(length=80), nullable=True),
        sa.Column("handled_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["reconciliation_run.id"],
            name=op.f("fk_reconciliation_item_run_id_reconciliation_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_item")),
    )
    with op.batch_alter_table("reconciliation_item", schema=None) as batch_op:
        batch_op.create_index("ix_reconciliation_item_run", ["run_id", "kind"], unique=False)

    op.create_table(
        "payment_order",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("out_trade_no", sa.String(length=32), nullable=False),
        sa.Column("transaction_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("expires_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checkout", sa.JSON(), nullable=True),
        sa.Column("paid_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("provider_closed_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("invoice_printed_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("receipt_no", sa.String(length=40), nullable=True),
        sa.Column("pool_fen", sa.Integer(), nullable=True),
        sa.Column("account_fen", sa.Integer(), nullable=True),
        sa.Column("self_pay_fen", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_payment_order_amount_positive")),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
            name=op.f("fk_payment_order_appointment_id_appointment"),
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_payment_order_hospital_id_hospital")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_payment_order_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_order")),
        sa.UniqueConstraint("out_trade_no", name=op.f("uq_payment_order_out_trade_no")),
    )
    with op.batch_alter_table("payment_order", schema=None) as batch_op:
        batch_op.create_index("ix_payment_order_appointment", ["appointment_id"], unique=False)
        batch_op.create_index(
            "ix_payment_order_state_expires_at", ["state", "expires_at"], unique=False
        )
        batch_op.create_index("ix_payment_order_transaction_id", ["transaction_id"], unique=False)
        batch_op.create_index(
            "uq_payment_order_open",
            ["appointment_id", "provider", "method"],
            unique=True,
            postgresql_where=sa.text("state = 'created'"),
            sqlite_where=sa.text("state = 'created'"),
        )

    op.create_table(
        "refund",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("out_refund_no", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("provider_refund_id", sa.String(length=64), nullable=True),
        sa.Column("tries", sa.SmallInteger(), nullable=False),
        sa.Column("next_try_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("finished_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("window_receipt_no", sa.String(length=40), nullable=True),
        sa.Column("handled_by", sa.String(length=80), nullable=True),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_refund_amount_positive")),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
            name=op.f("fk_refund_appointment_id_appointment"),
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_refund_hospital_id_hospital")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["payment_order.id"], name=op.f("fk_refund_order_id_payment_order")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund")),
        sa.UniqueConstraint("order_id", name=op.f("uq_refund_order_id")),
        sa.UniqueConstraint("out_refund_no", name=op.f("uq_refund_out_refund_no")),
    )
    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.create_index("ix_refund_state_next_try_at", ["state", "next_try_at"], unique=False)

    op.create_table(
        "payment_attempt",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("refund_id", sa.Uuid(), nullable=True),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("body_digest", sa.String(length=64), nullable=True),
        sa.Column("at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_payment_attempt_hospital_id_hospital")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["payment_order.id"],
            name=op.f("fk_payment_attempt_order_id_payment_order"),
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["refund.id"], name=op.f("fk_payment_attempt_refund_id_refund")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_attempt")),
    )
    with op.batch_alter_table("payment_attempt", schema=None) as batch_op:
        batch_op.create_index("ix_payment_attempt_event", ["provider", "event_id"], unique=False)
        batch_op.create_index("ix_payment_attempt_order", ["order_id", "at"], unique=False)

    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paid_fen", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("payment_provider", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("refund_state", sa.String(length=16), server_default="none", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.drop_column("refund_state")
        batch_op.drop_column("payment_provider")
        batch_op.drop_column("paid_fen")

    with op.batch_alter_table("payment_attempt", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_attempt_order")
        batch_op.drop_index("ix_payment_attempt_event")

    op.drop_table("payment_attempt")
    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.drop_index("ix_refund_state_next_try_at")

    op.drop_table("refund")
    with op.batch_alter_table("payment_order", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_payment_order_open",
            postgresql_where=sa.text("state = 'created'"),
            sqlite_where=sa.text("state = 'created'"),
        )
        batch_op.drop_index("ix_payment_order_transaction_id")
        batch_op.drop_index("ix_payment_order_state_expires_at")
        batch_op.drop_index("ix_payment_order_appointment")

    op.drop_table("payment_order")
    with op.batch_alter_table("reconciliation_item", schema=None) as batch_op:
        batch_op.drop_index("ix_reconciliation_item_run")

    op.drop_table("reconciliation_item")
    op.drop_table("reconciliation_run")
