"""Collaborative sessions: one active session per note while anyone is connected to it.

A partial unique index keeps at most one active session per note, so instances that open
one at the same moment end up sharing it. Participants are rows (one per session and
user), so concurrent joins never overwrite each other.

Opening is one upsert on that index (`INSERT ... ON CONFLICT (note_id) WHERE is_active DO
UPDATE ... RETURNING id`): insert-or-nothing followed by a select would leave a gap in
which another instance ends the session or the note is deleted, and find nothing.
Closing is one `UPDATE ... WHERE is_active RETURNING`, so a session is ended (and its
end reported) by exactly one caller.

Instances decide that a note's session is over from presence that lives elsewhere (Redis),
so the decision and the end must not be apart: a pass that looked, then ended "the note's
active session" a moment later, ended the *next* session when another instance had opened
it meanwhile. `close_many(..., confirm=...)` therefore locks the active session rows first
(`FOR UPDATE`, in note order like `record`) and asks `confirm` which of them are still
over while they are locked: an instance that opens or joins one of them waits on that lock
and, if the session was ended, opens a new one after the commit; one that published its
connection before recording it is seen by `confirm`. And statistics alone (a connection
that left: `SessionActivity` without users) never open a session: they go to the active
one, or to the note's latest one that another instance just ended, so a leave that lost
the race to the end does not start a session nobody is in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ._access import EngineStore
from ._errors import NoteNotFound
from ._session_activity import (
    SessionActivity,
    chunks,
    collab_session_participants,
    collab_sessions,
    record_activity,
)

__all__ = [
    "SessionActivity",
    "SessionRecord",
    "SessionStore",
    "collab_session_participants",
    "collab_sessions",
]

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


async def _fetch(conn: AsyncConnection, where: Any, limit: int | None = 1) -> list[SessionRecord]:
    query = sa.select(collab_sessions).where(where).order_by(_s.started_at.desc(), _s.id)
    rows = (await conn.execute(query if limit is None else query.limit(limit))).all()
    if not rows:
        return []
    people: dict[str, list[str]] = {row.id: [] for row in rows}
    for chunk in chunks(list(people)):
        found = await conn.execute(
            sa.select(_p.session_id, _p.user_id)
            .where(_p.session_id.in_(chunk))
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


async def _fetch_ids(conn: AsyncConnection, ids: Sequence[str]) -> list[SessionRecord]:
    found: list[SessionRecord] = []
    for chunk in chunks(ids):
        found += await _fetch(conn, _s.id.in_(chunk), limit=None)
    return found


class SessionStore(EngineStore):
    """Each method one transaction; errors as `StorageError` / `StorageUnavailable`."""

    async def open(
        self, note_id: str, user_ids: tuple[str, ...] = (), *, updates: int = 0, size: int = 0
    ) -> SessionRecord:
        """The note's active session, opened now if there is none. `user_ids` join it, and
        `updates` and `size` (bytes) since the last call are added to its statistics.

        Raises `NoteNotFound` if the note is gone.
        """
        activity = [SessionActivity(note_id, user_ids, updates, size)]
        async with self._write() as conn:
            sessions = await record_activity(conn, activity, open_empty=True)
            if note_id not in sessions:
                raise NoteNotFound(f"note {note_id} does not exist")
            return (await _fetch(conn, _s.id == sessions[note_id]))[0]

    async def record(self, items: Sequence[SessionActivity]) -> dict[str, str]:
        """Open, join and keep alive the sessions of many notes in one transaction: each
        note's active session (opened if there is none) gets the activity's users as
        participants and its statistics added, and its `last_activity` moves to now.
        Activity without users never opens one: with no active session, its statistics go
        to the note's latest session (ended meanwhile by another instance), left out of
        the result. Returns note id -> active session id; notes that no longer exist are
        left out."""
        if not items:
            return {}
        async with self._write() as conn:
            return await record_activity(conn, items)

    async def end(self, note_id: str) -> SessionRecord | None:
        """End the note's active session; None if there was none."""
        ended = await self.close_many([note_id])
        return ended[0] if ended else None

    async def close_many(
        self,
        note_ids: Sequence[str],
        *,
        confirm: Callable[[list[str]], Awaitable[Collection[str]]] | None = None,
    ) -> list[SessionRecord]:
        """End the active sessions of these notes (one transaction); returns those ended.

        With `confirm`, the active sessions are locked first and `confirm` (called once,
        with the notes that have one) returns the notes whose session is still to end:
        only those sessions, as locked, are ended (see the module docstring)."""
        if not note_ids:
            return []
        now = datetime.now(UTC)
        async with self._write() as conn:
            locked: dict[str, str] = {}
            for chunk in chunks(sorted(set(note_ids))):
                found = await conn.execute(
                    sa.select(_s.note_id, _s.id)
                    .where(_s.is_active == sa.true(), _s.note_id.in_(chunk))
                    .order_by(_s.note_id)
                    .with_for_update()
                )
                locked.update({note_id: session_id for note_id, session_id in found})
            if confirm is not None and locked:
                confirmed = set(await confirm(sorted(locked)))
                locked = {n: i for n, i in locked.items() if n in confirmed}
            ids: list[str] = []
            for chunk in chunks(sorted(locked.values())):
                ids += (
                    await conn.execute(
                        sa.update(collab_sessions)
                        .where(_s.is_active == sa.true(), _s.id.in_(chunk))
                        .values(is_active=False, ended_at=now, last_activity=now)
                        .returning(_s.id)
                    )
                ).scalars()
            return await _fetch_ids(conn, ids)

    async def close_stale(self, before: datetime | None = None) -> list[SessionRecord]:
        """End active sessions with no activity since `before` (None: every active one),
        as of their last activity: their instance stopped without ending them."""
        where = _s.is_active == sa.true()
        if before is not None:
            where = sa.and_(where, _s.last_activity < before)
        async with self._write() as conn:
            ids = (
                await conn.execute(
                    sa.update(collab_sessions)
                    .where(where)
                    .values(is_active=False, ended_at=_s.last_activity)
                    .returning(_s.id)
                )
            ).scalars()
            return await _fetch_ids(conn, list(ids))

    async def active(self, note_id: str) -> SessionRecord | None:
        async with self._read() as conn:
            found = await _fetch(conn, sa.and_(_s.note_id == note_id, _s.is_active == sa.true()))
        return found[0] if found else None

    async def list(self, note_id: str, *, limit: int = 50) -> list[SessionRecord]:
        """The note's sessions, newest first."""
        async with self._read() as conn:
            return await _fetch(conn, _s.note_id == note_id, limit)
