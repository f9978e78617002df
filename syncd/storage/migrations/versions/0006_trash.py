"""The trash (`notes.deleted_at`) and the per-user e-mail opt-out (`users.email_notifications`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD COLUMN of a nullable column, or one with a constant default, is plain DDL on
    # both dialects (no SQLite table rebuild needed)
    op.add_column("notes", sa.Column("deleted_at", sa.DateTime(timezone=True)))
    # the purge job looks for the oldest trashed notes
    op.create_index("ix_notes_deleted_at", "notes", ["deleted_at"])
    op.add_column(
        "users",
        sa.Column("email_notifications", sa.Boolean, nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.drop_column("email_notifications")
    op.drop_index("ix_notes_deleted_at", table_name="notes")
    with op.batch_alter_table("notes") as notes:
        notes.drop_column("deleted_at")
