"""Collaborative sessions (+ participants), notifications and the mentions already notified.

Revision ID: 0002
Revises: 0001
Create Date: 2024-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def _note_fk() -> sa.ForeignKey:
    return sa.ForeignKey("notes.id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "collab_sessions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("note_id", sa.Text, _note_fk(), nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("ended_at", _TS),
        sa.Column("last_activity", _TS, nullable=False),
        sa.Column("updates", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index("ix_collab_sessions_note_id", "collab_sessions", ["note_id"])
    # At most one active session per note, however many instances open one at once.
    op.create_index(
        "uq_collab_sessions_active_note",
        "collab_sessions",
        ["note_id"],
        unique=True,
        sqlite_where=sa.text("is_active"),
        postgresql_where=sa.text("is_active"),
    )
    op.create_table(
        "collab_session_participants",
        sa.Column(
            "session_id",
            sa.Text,
            sa.ForeignKey("collab_sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("joined_at", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
        sa.Column("note_id", sa.Text),
        sa.Column("actor_id", sa.Text),
        sa.Column("is_read", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("read_at", _TS),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_notifications_user_created", "notifications", ["user_id", "created_at"])
    op.create_table(
        "note_mentions",
        sa.Column("note_id", sa.Text, _note_fk(), primary_key=True),
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("notified_at", _TS, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "note_mentions",
        "notifications",
        "collab_session_participants",
        "collab_sessions",
    ):
        op.drop_table(table)
