"""The tables of collaborative sessions and what records activity in them: opening,
joining and adding statistics in one transaction (`SessionStore.record`, `open`).

Activity with users is one upsert on the partial unique index of active sessions per note
(see `syncd.storage.sessions`); activity without users (a connection's leave: statistics
only) is an update of the active session, else of the note's latest one, and never opens
a session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ._engine import dialect_insert
from .schema import UTCDateTime, metadata, notes

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


#: rows per statement: asyncpg takes at most 32767 parameters, SQLite 32766
_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class SessionActivity:
    """What happened on one note since it was last recorded: users who joined its session
    and the updates and bytes they sent (without users: statistics only, of connections
    that left; they never open a session)."""

    note_id: str
    users: tuple[str, ...] = ()
    updates: int = 0
    size: int = 0


def chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


async def record_activity(
    conn: AsyncConnection, items: Sequence[SessionActivity], *, open_empty: bool = False
) -> dict[str, str]:
    """Upsert the notes' active sessions and their participants (see `record`); activity
    without users only adds to a session unless `open_empty`."""
    merged: dict[str, tuple[set[str], int, int]] = {}
    for item in items:  # one row per note: ON CONFLICT may touch a row only once
        users, updates, size = merged.get(item.note_id, (set(), 0, 0))
        merged[item.note_id] = (users | set(item.users), updates + item.updates, size + item.size)
    now = datetime.now(UTC)
    sessions: dict[str, str] = {}
    if not open_empty:
        counted = {n: (u, b) for n, (people, u, b) in merged.items() if not people}
        for note_id in counted:
            del merged[note_id]
        sessions.update(await _add_statistics(conn, counted, now))
    # Sorted, so two instances recording overlapping notes lock their rows in one order.
    for chunk in chunks(sorted(merged)):
        # Lock the notes against deletion until commit (Postgres `FOR KEY SHARE`, what a
        # foreign key check takes; SQLite's one writer needs none): a note deleted
        # meanwhile is left out rather than failing the whole batch.
        alive = set(
            (
                await conn.execute(
                    sa.select(notes.c.id)
                    .where(notes.c.id.in_(chunk))
                    .with_for_update(read=True, key_share=True)
                )
            ).scalars()
        )
        rows = [
            {
                "id": uuid.uuid4().hex,
                "note_id": note_id,
                "is_active": True,
                "started_at": now,
                "last_activity": now,
                "updates": merged[note_id][1],
                "bytes": merged[note_id][2],
            }
            for note_id in chunk
            if note_id in alive
        ]
        if not rows:
            continue
        # One statement executed with many parameter sets: compiled once and cached
        # (a VALUES list with the rows in it was compiled afresh each time, 2/3 of the
        # CPU of a refresh), and sent as one multi-row statement by insertmanyvalues.
        found = await conn.execute(_session_upsert(conn), rows)
        sessions.update({note_id: session_id for note_id, session_id in found})
    await _join_many(
        conn,
        [
            (sessions[note_id], tuple(sorted(merged[note_id][0])))
            for note_id in sorted(sessions)
            if note_id in merged
        ],
        now,
    )
    return sessions


async def _add_statistics(
    conn: AsyncConnection, counted: dict[str, tuple[int, int]], now: datetime
) -> dict[str, str]:
    """Add updates and bytes to the notes' active sessions (touched now), or, where a
    note has none, to its latest session; returns note id -> active session id."""
    active: dict[str, str] = {}
    for note_id in sorted(counted):  # few: the notes a connection left in one pass
        updates, size = counted[note_id]
        found = await conn.execute(
            sa.update(collab_sessions)
            .where(_s.is_active == sa.true(), _s.note_id == note_id)
            .values(updates=_s.updates + updates, bytes=_s.bytes + size, last_activity=now)
            .returning(_s.id)
        )
        session_id = found.scalar()
        if session_id is not None:
            active[note_id] = session_id
        elif updates or size:
            latest = (
                sa.select(_s.id)
                .where(_s.note_id == note_id)
                .order_by(_s.started_at.desc(), _s.id)
                .limit(1)
                .scalar_subquery()
            )
            await conn.execute(
                sa.update(collab_sessions)
                .where(_s.id == latest)
                .values(updates=_s.updates + updates, bytes=_s.bytes + size)
            )
    return active


#: the two upserts of a pass, per dialect name, built once (a presence pass records the
#: sessions of the connections that joined since the last; building both per pass was a
#: quarter of `record_activity`'s CPU in the loop thread, py-spy of bench/connect_cost.py)
_UPSERTS: dict[tuple[str, str], Any] = {}


def _built(conn: AsyncConnection, name: str, build: Any) -> Any:
    key = (conn.dialect.name, name)
    statement = _UPSERTS.get(key)
    if statement is None:
        statement = _UPSERTS[key] = build(dialect_insert(conn))
    return statement


def _session_upsert(conn: AsyncConnection) -> Any:
    """Open a note's active session or add to it (a parameterised statement)."""
    return _built(conn, "session", _build_session_upsert)


def _build_session_upsert(insert_of: Any) -> Any:
    insert = insert_of(collab_sessions)
    return insert.on_conflict_do_update(
        index_elements=[_s.note_id],
        index_where=sa.text("is_active"),
        set_={
            "last_activity": insert.excluded.last_activity,
            "updates": _s.updates + insert.excluded.updates,
            "bytes": _s.bytes + insert.excluded.bytes,
        },
    ).returning(_s.note_id, _s.id)


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
    upsert = _built(conn, "participants", _build_participants_upsert)
    for chunk in chunks(rows):  # one parameterised statement, many parameter sets
        await conn.execute(upsert, list(chunk))


def _build_participants_upsert(insert_of: Any) -> Any:
    insert = insert_of(collab_session_participants)
    return insert.on_conflict_do_update(
        index_elements=[_p.session_id, _p.user_id],
        set_={"last_seen": insert.excluded.last_seen},
    )
