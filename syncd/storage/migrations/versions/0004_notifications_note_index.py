"""An index on notifications.note_id: deleting a note deletes the notifications about it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_notifications_note_id", "notifications", ["note_id"])


def downgrade() -> None:
    op.drop_index("ix_notifications_note_id", table_name="notifications")
