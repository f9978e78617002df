"""Notifications per user, and the @mentions already notified (one notification per mention).

The tables are declared on the shared `schema.metadata` (so the migration check sees them);
the DDL lives in migration 0002.
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from ._access import EngineStore
from ._engine import dialect_insert
from .schema import UTCDateTime, metadata, note_permissions, notes, users

notifications = sa.Table(
    "notifications",
    metadata,
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
    sa.Column("read_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_notifications_user_created", "user_id", "created_at"),
    # purging a note deletes the notifications about it (`Store.delete_note`, `purge_trash`)
    sa.Index("ix_notifications_note_id", "note_id"),
)

note_mentions = sa.Table(
    "note_mentions",
    metadata,
    sa.Column("note_id", sa.Text, sa.ForeignKey("notes.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("notified_at", UTCDateTime, nullable=False),
)


@dataclass(frozen=True, slots=True)
class NewNotification:
    """What a notification says, before it is stored for its recipients."""

    type: str
    title: str
    message: str = ""
    category: str = "general"
    data: dict[str, Any] = field(default_factory=dict)
    note_id: str | None = None
    actor_id: str | None = None


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    id: str
    user_id: str
    type: str
    category: str
    title: str
    message: str
    data: dict[str, Any]
    note_id: str | None
    actor_id: str | None
    read: bool
    read_at: datetime | None
    created_at: datetime


#: notifications shown to their user: none about a note in the trash (they come back with
#: it, and go with it when it is purged)
_VISIBLE = ~sa.exists().where(notes.c.id == notifications.c.note_id, notes.c.deleted_at.isnot(None))


def _record(row: Row[Any]) -> NotificationRecord:
    return NotificationRecord(
        id=row.id,
        user_id=row.user_id,
        type=row.type,
        category=row.category,
        title=row.title,
        message=row.message,
        data=json.loads(row.data or "{}"),
        note_id=row.note_id,
        actor_id=row.actor_id,
        read=bool(row.is_read),
        read_at=row.read_at,
        created_at=row.created_at,
    )


async def _insert(
    conn: AsyncConnection, user_ids: Iterable[str], new: NewNotification
) -> list[NotificationRecord]:
    now = datetime.now(UTC)
    ids = {user_id: uuid.uuid4().hex for user_id in user_ids}
    rows = [
        {
            "id": ids[user_id],
            "user_id": user_id,
            "type": new.type,
            "category": new.category,
            "title": new.title,
            "message": new.message,
            "data": json.dumps(new.data),
            "note_id": new.note_id,
            "actor_id": new.actor_id,
            "is_read": False,
            "read_at": None,
            "created_at": now,
        }
        for user_id in ids
    ]
    if rows:
        await conn.execute(sa.insert(notifications), rows)
    return [
        NotificationRecord(
            id=ids[user_id],
            user_id=user_id,
            type=new.type,
            category=new.category,
            title=new.title,
            message=new.message,
            data=dict(new.data),
            note_id=new.note_id,
            actor_id=new.actor_id,
            read=False,
            read_at=None,
            created_at=now,
        )
        for user_id in ids
    ]


class NotificationStore(EngineStore):
    """Each method one transaction; errors as `StorageError` / `StorageUnavailable`."""

    async def create(
        self, user_ids: Iterable[str], new: NewNotification
    ) -> list[NotificationRecord]:
        """One notification per (distinct) user."""
        async with self._write() as conn:
            return await _insert(conn, user_ids, new)

    async def get(self, notification_id: str) -> NotificationRecord | None:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(notifications).where(notifications.c.id == notification_id)
                )
            ).first()
        return None if row is None else _record(row)

    async def list(
        self,
        user_id: str,
        *,
        limit: int = 50,
        category: str | None = None,
        unread: bool | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> tuple[list[NotificationRecord], int]:
        """Newest first, and the user's unread count (over every category); those about
        a note in the trash are left out of both.

        `after`: the (created_at, id) of the last notification of the previous page (a
        keyset cursor: pages neither skip nor repeat rows when new ones arrive meanwhile).
        """
        where = [notifications.c.user_id == user_id, _VISIBLE]
        if category is not None:
            where.append(notifications.c.category == category)
        if unread is not None:
            where.append(notifications.c.is_read == (not unread))
        if after is not None:
            created_at, last_id = after
            where.append(
                sa.or_(
                    notifications.c.created_at < created_at,
                    sa.and_(notifications.c.created_at == created_at, notifications.c.id > last_id),
                )
            )
        query = (
            sa.select(notifications)
            .where(*where)
            .order_by(notifications.c.created_at.desc(), notifications.c.id)
            .limit(max(limit, 0))
        )
        count = (
            sa.select(sa.func.count())
            .select_from(notifications)
            .where(
                notifications.c.user_id == user_id,
                notifications.c.is_read == sa.false(),
                _VISIBLE,
            )
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
            unread_count = await conn.scalar(count) or 0
        return [_record(row) for row in rows], unread_count

    async def mark_read(self, user_id: str, notification_id: str) -> NotificationRecord | None:
        """Mark one of the user's notifications read; None if it is not theirs."""
        async with self._write() as conn:
            await conn.execute(
                sa.update(notifications)
                .where(
                    notifications.c.id == notification_id,
                    notifications.c.user_id == user_id,
                    notifications.c.is_read == sa.false(),
                )
                .values(is_read=True, read_at=datetime.now(UTC))
            )
            row = (
                await conn.execute(
                    sa.select(notifications).where(
                        notifications.c.id == notification_id, notifications.c.user_id == user_id
                    )
                )
            ).first()
        return None if row is None else _record(row)

    async def delete(self, user_id: str, notification_id: str) -> bool:
        """Delete one of the user's notifications; False if there is none of theirs."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.delete(notifications).where(
                    notifications.c.id == notification_id, notifications.c.user_id == user_id
                )
            )
        return int(result.rowcount or 0) > 0

    async def mark_all_read(self, user_id: str, *, category: str | None = None) -> int:
        # the hidden ones (note in the trash) stay as they were, for when it comes back
        where = [
            notifications.c.user_id == user_id,
            notifications.c.is_read == sa.false(),
            _VISIBLE,
        ]
        if category is not None:
            where.append(notifications.c.category == category)
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(notifications)
                .where(*where)
                .values(is_read=True, read_at=datetime.now(UTC))
            )
        return int(result.rowcount or 0)

    async def delete_read_before(self, cutoff: datetime) -> int:
        """Drop read notifications created before `cutoff` (retention cleanup)."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.delete(notifications).where(
                    notifications.c.is_read == sa.true(), notifications.c.created_at < cutoff
                )
            )
        return int(result.rowcount or 0)

    async def notify_mentions(
        self, note_id: str, mentioned: Sequence[str], make: NewNotification, *, skip: str | None
    ) -> builtins.list[NotificationRecord]:
        """Notify the mentioned users not notified for this note before, once each.

        Only ids syncd knows as users (seen in a token) or that have rights on the note
        count, so a half-typed "@bo" on the way to "@bob" notifies nobody. Recording the
        mention and creating the notification share one transaction, and the primary key
        of `note_mentions` makes two instances checkpointing the same doc notify once.
        `skip` (the doc's last editor, likely the author) is left out this time, neither
        notified nor recorded: with several editors between two checkpoints the mention
        may be someone else's, and a later checkpoint with another last editor notifies.
        """
        if not mentioned:
            return []
        async with self._write() as conn:
            candidates = await _known(conn, note_id, mentioned) - {skip}
            if not candidates:
                return []
            rows = [
                {"note_id": note_id, "user_id": u, "notified_at": datetime.now(UTC)}
                for u in sorted(candidates)
            ]
            inserted = await conn.execute(
                dialect_insert(conn)(note_mentions)
                .values(rows)
                .on_conflict_do_nothing()
                .returning(note_mentions.c.user_id)
            )
            return await _insert(conn, sorted(inserted.scalars().all()), make)

    async def mentioned_users(self, note_id: str) -> set[str]:
        async with self._read() as conn:
            result = await conn.execute(
                sa.select(note_mentions.c.user_id).where(note_mentions.c.note_id == note_id)
            )
            return set(result.scalars().all())


async def _known(conn: AsyncConnection, note_id: str, ids: Sequence[str]) -> set[str]:
    """The ids among `ids` that are users, owners or grantees of the note."""
    wanted = list(dict.fromkeys(ids))[:1000]
    seen = await conn.execute(sa.select(users.c.id).where(users.c.id.in_(wanted)))
    granted = await conn.execute(
        sa.select(note_permissions.c.user_id).where(
            note_permissions.c.note_id == note_id, note_permissions.c.user_id.in_(wanted)
        )
    )
    owner = await conn.scalar(sa.select(notes.c.created_by).where(notes.c.id == note_id))
    if owner is None:
        return set()  # the note is gone
    found = set(seen.scalars().all()) | set(granted.scalars().all())
    if owner in wanted:
        found.add(owner)
    return found
