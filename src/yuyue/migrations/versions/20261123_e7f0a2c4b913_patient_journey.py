"""patient journey: sign-in, message delivery and the waitlist joined into one line

Revision ID: e7f0a2c4b913
Revises: b1a7c3d94e20, 5d3e8a61c0f2, 4c2e9b7a1d05
Create Date: 2026-11-23 07:00:00
"""

from collections.abc import Sequence

revision: str = "e7f0a2c4b913"
down_revision: str | Sequence[str] | None = ("b1a7c3d94e20", "5d3e8a61c0f2", "4c2e9b7a1d05")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The three branches touch different tables; nothing to reconcile.
    pass


def downgrade() -> None:
    pass
