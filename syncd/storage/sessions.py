"""Collaborative sessions: one active session per note while anyone is connected to it.

A partial unique index keeps at most one active session per note, so instances that open
one at the same moment end up sharing it. Participants are rows (one per session and
user), so concurrent joins never overwrite each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ._access import EngineStore
from ._engine import dialect_insert
from .schema import UTCDateTime, metadata

collab_sessions = sa.Table(
    "collab_sessions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column(
        "note_id",
        sa.Text,
        sa.ForeignKey("notes.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("is_active", sa.Boolean, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("last_activity", UTCDateTime, nullable=False),
    sa.Column("updates", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index(
        "uq_collab_sessions_active_note",
        "note_id",
        unique=True,
        sqlite_where=sa.text("is_active"),
        postgresql_where=sa.text("is_active"),
    ),
)

collab_session_participants = sa.Table(
    "collab_session_participants",
    metadata,
    sa.Column(
        "session_id",
        sa.Text,
        sa.ForeignKey("collab_sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("joined_at", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
)

_s = collab_sessions.c
_p = collab_session_participants.c


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    note_id: str
    active: bool
    started_at: datetime
    ended_at: datetime | None
    last_activity: datetime
    updates: int
    bytes: int
    participants: tuple[str, ...]


async def _fetch(conn: AsyncConnection, where: Any, limit: int = 1) -> list[SessionRecord]:
    rows = (
        await conn.execute(
            sa.select(collab_sessions)
            .where(where)
            .order_by(_s.started_at.desc(), _s.id)
            .limit(limit)
        )
    ).all()
    if not rows:
        return []
    people: dict[str, list[str]] = {row.id: [] for row in rows}
    found = await conn.execute(
        sa.select(_p.session_id, _p.user_id)
        .where(_p.session_id.in_(list(people)))
        .order_by(_p.joined_at, _p.user_id)
    )
    for session_id, user_id in found:
        people[session_id].append(user_id)
    return [
        SessionRecord(
            id=row.id,
            note_id=row.note_id,
            active=bool(row.is_active),
            started_at=row.started_at,
            ended_at=row.ended_at,
            last_activity=row.last_activity,
            updates=int(row.updates),
            bytes=int(row.bytes),
            participants=tuple(people[row.id]),
        )
        for row in rows
    ]


class SessionStore(EngineStore):
    """Each method one transaction; errors as `StorageError` / `StorageUnavailable`."""

    async def open(
        self, note_id: str, user_ids: tuple[str, ...] = (), *, updates: int = 0, size: int = 0
    ) -> SessionRecord:
        """The note's active session, opened now if there is none. `user_ids` join it, and
        `updates` and `size` (bytes) since the last call are added to its statistics.

        Raises `StorageError` (foreign key) if the note is gone.
        """
        now = datetime.now(UTC)
        async with self._write() as conn:
            await conn.execute(
                dialect_insert(conn)(collab_sessions)
                .values(
                    id=uuid.uuid4().hex,
                    note_id=note_id,
                    is_active=True,
                    started_at=now,
                    last_activity=now,
                    updates=0,
                    bytes=0,
                )
                .on_conflict_do_nothing()
            )
            session_id = await conn.scalar(
                sa.select(_s.id).where(_s.note_id == note_id, _s.is_active == sa.true())
            )
            assert session_id is not None
            await conn.execute(
                sa.update(collab_sessions)
                .where(_s.id == session_id)
                .values(last_activity=now, updates=_s.updates + updates, bytes=_s.bytes + size)
            )
            await _join(conn, session_id, user_ids, now)
            return (await _fetch(conn, _s.id == session_id))[0]

    async def touch_many(self, items: Sequence[tuple[str, tuple[str, ...], int, int]]) -> list[str]:
        """Keep the active sessions of many notes alive in one transaction (the periodic
        refresh): `items` are (note id, users present, updates, bytes since the last
        call). Three statements whatever the number of notes, instead of five per note:
        the SQLite write lock they hold is the one the update log queues on. Returns the
        notes that have no active session (the caller opens those)."""
        if not items:
            return []
        now = datetime.now(UTC)
        async with self._write() as conn:
            found = await conn.execute(
                sa.select(_s.note_id, _s.id).where(
                    _s.is_active == sa.true(), _s.note_id.in_([item[0] for item in items])
                )
            )
            sessions = {note_id: session_id for note_id, session_id in found}
            touched = [item for item in items if item[0] in sessions]
            if touched:
                await conn.execute(
                    sa.update(collab_sessions)
                    .where(_s.id == sa.bindparam("session"))
                    .values(
                        last_activity=now,
                        updates=_s.updates + sa.bindparam("more"),
                        bytes=_s.bytes + sa.bindparam("extra"),
                    ),
                    [
                        {"session": sessions[note_id], "more": updates, "extra": size}
                        for note_id, _, updates, size in touched
                    ],
                )
                await _join_many(
                    conn, [(sessions[note_id], users) for note_id, users, _, _ in touched], now
                )
        return [item[0] for item in items if item[0] not in sessions]

    async def close(self, note_id: str) -> SessionRecord | None:
        """End the note's active session; None if there was none."""
        now = datetime.now(UTC)
        async with self._write() as conn:
            session_id = await conn.scalar(
                sa.select(_s.id).where(_s.note_id == note_id, _s.is_active == sa.true())
            )
            if session_id is None:
                return None
            await conn.execute(
                sa.update(collab_sessions)
                .where(_s.id == session_id)
                .values(is_active=False, ended_at=now, last_activity=now)
            )
            return (await _fetch(conn, _s.id == session_id))[0]

    async def active(self, note_id: str) -> SessionRecord | None:
        async with self._read() as conn:
            found = await _fetch(conn, sa.and_(_s.note_id == note_id, _s.is_active == sa.true()))
        return found[0] if found else None

    async def list(self, note_id: str, *, limit: int = 50) -> list[SessionRecord]:
        """The note's sessions, newest first."""
        async with self._read() as conn:
            return await _fetch(conn, _s.note_id == note_id, limit)

    async def close_idle(self, before: datetime) -> list[str]:
        """End active sessions with no activity since `before` (their instance died);
        returns the note ids."""
        async with self._write() as conn:
            stale = (
                await conn.execute(
                    sa.select(_s.id, _s.note_id).where(
                        _s.is_active == sa.true(), _s.last_activity < before
                    )
                )
            ).all()
            if stale:
                await conn.execute(
                    sa.update(collab_sessions)
                    .where(_s.id.in_([row.id for row in stale]))
                    .values(is_active=False, ended_at=_s.last_activity)
                )
        return [row.note_id for row in stale]


async def _join(
    conn: AsyncConnection, session_id: str, user_ids: tuple[str, ...], now: datetime
) -> None:
    await _join_many(conn, [(session_id, user_ids)], now)


async def _join_many(
    conn: AsyncConnection, joins: Sequence[tuple[str, tuple[str, ...]]], now: datetime
) -> None:
    rows = [
        {"session_id": session_id, "user_id": u, "joined_at": now, "last_seen": now}
        for session_id, user_ids in joins
        for u in dict.fromkeys(user_ids)
    ]
    if not rows:
        return
    insert = dialect_insert(conn)(collab_session_participants).values(rows)
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=[_p.session_id, _p.user_id],
            set_={"last_seen": insert.excluded.last_seen},
        )
    )
