"""Note versions (full Yjs state per version) and refresh-token records.

Revision ID: 0003
Revises: 0002
Create Date: 2024-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "note_versions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "note_id", sa.Text, sa.ForeignKey("notes.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("label", sa.Text),
        sa.Column("automatic", sa.Boolean, nullable=False),
        sa.Column("restored_from", sa.Integer),
        sa.Column("created_by", sa.Text),
        sa.Column("authors", sa.Text, nullable=False, server_default="[]"),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("state_vector", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_note_versions_note_id_number", "note_versions", ["note_id", "number"], unique=True
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("jti", sa.Text, primary_key=True),
        sa.Column("family_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_table("refresh_tokens")
    op.drop_table("note_versions")
