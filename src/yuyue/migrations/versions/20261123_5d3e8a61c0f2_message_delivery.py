"""message delivery: deliveries and attempts, inbox, demo phone, templates, settings

Revision ID: 5d3e8a61c0f2
Revises: 622c5e0a8f7c
Create Date: 2026-11-23 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "5d3e8a61c0f2"
down_revision: str | None = "622c5e0a8f7c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "demo_phone_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("phone_masked", sa.String(length=20), nullable=False),
        sa.Column("phone_index", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_id"],
            ["hospital.id"],
            name=op.f("fk_demo_phone_message_hospital_id_hospital"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demo_phone_message")),
    )
    with op.batch_alter_table("demo_phone_message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_demo_phone_message_hospital_created", ["hospital_id", "created_at"], unique=False
        )

    op.create_table(
        "notification_settings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("reminder_offsets_hours", sa.JSON(), nullable=False),
        sa.Column("quiet_hours_start", sa.Time(), nullable=False),
        sa.Column("quiet_hours_end", sa.Time(), nullable=False),
        sa.Column("updated_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_id"],
            ["hospital.id"],
            name=op.f("fk_notification_settings_hospital_id_hospital"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_settings")),
        sa.UniqueConstraint("hospital_id", name=op.f("uq_notification_settings_hospital_id")),
    )
    op.create_table(
        "message_template",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("department_id", sa.Uuid(), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_message_template_department_id_department"),
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_message_template_hospital_id_hospital")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_template")),
    )
    with op.batch_alter_table("message_template", schema=None) as batch_op:
        batch_op.create_index(
            "uq_message_template_hospital_default",
            ["hospital_id", "kind", "locale"],
            unique=True,
            postgresql_where=sa.text("department_id IS NULL"),
            sqlite_where=sa.text("department_id IS NULL"),
        )
        batch_op.create_index(
            "uq_message_template_hospital_department",
            ["hospital_id", "kind", "locale", "department_id"],
            unique=True,
            postgresql_where=sa.text("department_id IS NOT NULL"),
            sqlite_where=sa.text("department_id IS NOT NULL"),
        )

    op.create_table(
        "delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("next_attempt_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("lease_until", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("provider_id", sa.String(length=100), nullable=True),
        sa.Column("sent_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_delivery_hospital_id_hospital")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbox_message.id"],
            name=op.f("fk_delivery_message_id_outbox_message"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery")),
        sa.UniqueConstraint("message_id", "channel", name=op.f("uq_delivery_message_id_channel")),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "delivery_attempt",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.SmallInteger(), nullable=False),
        sa.Column("started_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("provider_id", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["delivery.id"], name=op.f("fk_delivery_attempt_delivery_id_delivery")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempt")),
    )
    with op.batch_alter_table("delivery_attempt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_attempt_delivery_id"), ["delivery_id"], unique=False
        )

    op.create_table(
        "inbox_item",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("delivery_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=300), nullable=True),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_inbox_item_account_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
            name=op.f("fk_inbox_item_appointment_id_appointment"),
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["delivery.id"], name=op.f("fk_inbox_item_delivery_id_delivery")
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_inbox_item_hospital_id_hospital")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_inbox_item_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_item")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_inbox_item_delivery_id")),
    )
    with op.batch_alter_table("inbox_item", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbox_item_account_created", ["account_id", "created_at"], unique=False
        )

    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.add_column(
            sa.Column("locale", sa.String(length=8), server_default="zh-CN", nullable=False)
        )

    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("to_phone_cipher", sa.String(length=200), nullable=True))
        batch_op.create_index(
            "ix_outbox_message_appointment_kind", ["appointment_id", "kind"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_message_account_id_account"), "account", ["account_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_outbox_message_account_id_account"), type_="foreignkey"
        )
        batch_op.drop_index("ix_outbox_message_appointment_kind")
        batch_op.drop_column("to_phone_cipher")
        batch_op.drop_column("account_id")

    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_column("locale")
        batch_op.drop_column("email")

    with op.batch_alter_table("inbox_item", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_item_account_created")

    op.drop_table("inbox_item")
    with op.batch_alter_table("delivery_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_attempt_delivery_id"))

    op.drop_table("delivery_attempt")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_status_next_attempt_at")

    op.drop_table("delivery")
    with op.batch_alter_table("message_template", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_message_template_hospital_department",
            postgresql_where=sa.text("department_id IS NOT NULL"),
            sqlite_where=sa.text("department_id IS NOT NULL"),
        )
        batch_op.drop_index(
            "uq_message_template_hospital_default",
            postgresql_where=sa.text("department_id IS NULL"),
            sqlite_where=sa.text("department_id IS NULL"),
        )

    op.drop_table("message_template")
    op.drop_table("notification_settings")
    with op.batch_alter_table("demo_phone_message", schema=None) as batch_op:
        batch_op.drop_index("ix_demo_phone_message_hospital_created")

    op.drop_table("demo_phone_message")
