"""visit day: check-in and queues, no-shows and appeals, and the reserved hand-over joined

Revision ID: f1e2d3c4b5a6
Revises: a9d4c6e8f031, 8b4d2f6a0c17, c3d5e7f9a1b2
Create Date: 2026-11-23 07:50:00
"""

from collections.abc import Sequence

revision: str = "f1e2d3c4b5a6"
down_revision: str | Sequence[str] | None = ("a9d4c6e8f031", "8b4d2f6a0c17", "c3d5e7f9a1b2")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The three branches touch different tables; nothing to reconcile.
    pass


def downgrade() -> None:
    pass
