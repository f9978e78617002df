"""Initial schema: users, notes (+ tags, permissions), doc snapshots and update log.

Revision ID: 0001
Revises:
Create Date: 2024-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def _note_fk() -> sa.ForeignKey:
    return sa.ForeignKey("notes.id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("roles", sa.Text, nullable=False, server_default="[]"),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
    )
    op.create_table(
        "notes",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("lead_id", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("updated_by", sa.Text),
        sa.Column("category", sa.Text),
        sa.Column("priority", sa.Text),
        sa.Column("due_date", sa.Text),
        sa.Column("content_text", sa.Text, nullable=False, server_default=""),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_modified", _TS, nullable=False),
    )
    op.create_index("ix_notes_lead_id", "notes", ["lead_id"])
    op.create_table(
        "note_tags",
        sa.Column("note_id", sa.Text, _note_fk(), primary_key=True),
        sa.Column("tag", sa.Text, primary_key=True),
    )
    op.create_index("ix_note_tags_tag", "note_tags", ["tag"])
    op.create_table(
        "note_permissions",
        sa.Column("note_id", sa.Text, _note_fk(), primary_key=True),
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("can_view", sa.Boolean, nullable=False),
        sa.Column("can_edit", sa.Boolean, nullable=False),
        sa.Column("can_delete", sa.Boolean, nullable=False),
    )
    op.create_index("ix_note_permissions_user_id", "note_permissions", ["user_id"])
    op.create_table(
        "doc_snapshots",
        sa.Column("doc_id", sa.Text, _note_fk(), primary_key=True),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("state_vector", sa.LargeBinary, nullable=False),
        sa.Column("position", sa.Text, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "doc_updates",
        # INTEGER (not BIGINT) on SQLite so seq is the rowid; AUTOINCREMENT so
        # a seq is never handed out twice, even after compaction empties the log.
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("doc_id", sa.Text, _note_fk(), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_doc_updates_doc_id_seq", "doc_updates", ["doc_id", "seq"])


def downgrade() -> None:
    for table in (
        "doc_updates",
        "doc_snapshots",
        "note_permissions",
        "note_tags",
        "notes",
        "users",
    ):
        op.drop_table(table)
