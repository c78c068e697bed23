"""sign-in codes and web sessions

Revision ID: b1a7c3d94e20
Revises: 622c5e0a8f7c
Create Date: 2026-11-23 10:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yuyue.kit.db

revision: str = "b1a7c3d94e20"
down_revision: str | None = "622c5e0a8f7c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_code",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("phone_index", sa.String(length=64), nullable=False),
        sa.Column("client_index", sa.String(length=64), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("wrong_attempts", sa.SmallInteger(), nullable=False),
        sa.Column("expires_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_sign_in_code_hospital_id_hospital")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_code")),
    )
    op.create_index(
        "ix_sign_in_code_client",
        "sign_in_code",
        ["hospital_id", "client_index", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_sign_in_code_phone",
        "sign_in_code",
        ["hospital_id", "phone_index", "created_at"],
        unique=False,
    )
    op.create_table(
        "web_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hospital_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", yuyue.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_web_session_account_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"], ["hospital.id"], name=op.f("fk_web_session_hospital_id_hospital")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_session")),
    )
    op.create_index(op.f("ix_web_session_account_id"), "web_session", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_web_session_account_id"), table_name="web_session")
    op.drop_table("web_session")
    op.drop_index("ix_sign_in_code_phone", table_name="sign_in_code")
    op.drop_index("ix_sign_in_code_client", table_name="sign_in_code")
    op.drop_table("sign_in_code")
