"""Table definitions for queries (Core). Migrations spell the DDL out on their own.

Keep this in step with `migrations/versions/`; `tests/storage` checks that the
migrated database matches these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC in and out on both dialects.

    Postgres stores `timestamptz`; SQLite stores naive text, which is only
    correct because every value is converted to UTC on the way in.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to storage; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        return stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)


# SQLite needs the exact type INTEGER for a rowid alias; AUTOINCREMENT (below)
# then guarantees a seq is never reused after compaction empties the log.
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("roles", sa.Text, nullable=False, server_default="[]"),
    #: the user's opt-out of notification e-mail (set over `PUT /api/users/...`)
    sa.Column("email_notifications", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
)

notes = sa.Table(
    "notes",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("lead_id", sa.Text, index=True),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("updated_by", sa.Text),
    sa.Column("category", sa.Text),
    sa.Column("priority", sa.Text),
    sa.Column("due_date", sa.Text),
    sa.Column("content_text", sa.Text, nullable=False, server_default=""),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_modified", UTCDateTime, nullable=False),
    #: set: the note is in the trash (hidden everywhere but the trash list; purged later)
    sa.Column("deleted_at", UTCDateTime, index=True),
)


note_tags = sa.Table(
    "note_tags",
    metadata,
    sa.Column("note_id", sa.Text, sa.ForeignKey("notes.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.Text, primary_key=True, index=True),
)

note_permissions = sa.Table(
    "note_permissions",
    metadata,
    sa.Column("note_id", sa.Text, sa.ForeignKey("notes.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.Text, primary_key=True, index=True),
    sa.Column("can_view", sa.Boolean, nullable=False),
    sa.Column("can_edit", sa.Boolean, nullable=False),
    sa.Column("can_delete", sa.Boolean, nullable=False),
)

doc_snapshots = sa.Table(
    "doc_snapshots",
    metadata,
    sa.Column("doc_id", sa.Text, sa.ForeignKey("notes.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("state", sa.LargeBinary, nullable=False),
    sa.Column("state_vector", sa.LargeBinary, nullable=False),
    sa.Column("position", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

doc_updates = sa.Table(
    "doc_updates",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("doc_id", sa.Text, sa.ForeignKey("notes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_doc_updates_doc_id_seq", "doc_id", "seq"),
    sqlite_autoincrement=True,
)
