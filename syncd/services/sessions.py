"""Collaborative sessions: a session lasts while anyone is connected to its note.

The realtime hub opens (or joins) the note's session when connections arrive, adds their
statistics while they stay, and ends it when the last connection anywhere leaves, in
batches (`record`, `end_many`). REST can start and end one explicitly. Whoever needs to
act when a session ends registers on `on_ended`.

A session can also outlive its connections: its instance was killed, or stopped before
its bookkeeping was done. Such a session is stale once no live connection backs it; it
is then ended as of its last activity (`end_stale`), and `settle` takes the version the
normal path would have taken when its last connection left (`take_version`). Who finds
them: an embedded instance at start (it is the only instance, and nothing is connected
yet, so every active session is stale), and in scaled mode any instance, for sessions
that missed three presence refreshes (live ones are touched every refresh): at start,
one refresh-TTL later, and in the periodic cleanup job.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd import metrics
from syncd.storage import (
    NoteNotFound,
    SessionActivity,
    SessionRecord,
    SessionStore,
)

log = logging.getLogger(__name__)

SessionEnded = Callable[[SessionRecord], Awaitable[None]]
TakeVersion = Callable[[str], Awaitable[object]]


class SessionService:
    def __init__(self, store: SessionStore, *, take_version: TakeVersion | None = None) -> None:
        self._store = store
        #: stores an automatic version of a note (None where no rooms are loaded: `syncd
        #: worker`; stale sessions it ends then get no version)
        self._take_version = take_version
        #: told after a session ended (by the last connection leaving, REST or cleanup)
        self.on_ended: list[SessionEnded] = []

    async def start(
        self, note_id: str, user_ids: tuple[str, ...] = (), *, updates: int = 0, size: int = 0
    ) -> SessionRecord:
        """Open the note's session if none is active, join `user_ids`, add statistics.

        Raises `NoteNotFound` if the note is gone."""
        return await self._store.open(note_id, user_ids, updates=updates, size=size)

    async def record(self, items: Sequence[SessionActivity]) -> dict[str, str]:
        """Open, join and keep alive many notes' sessions in one transaction (notes gone
        meanwhile are left out); returns note id -> session id."""
        return await self._store.record(items)

    async def end(self, note_id: str) -> SessionRecord | None:
        ended = await self._store.end(note_id)
        if ended is not None:
            await self._ended(ended)
        return ended

    async def end_many(self, note_ids: Sequence[str]) -> list[SessionRecord]:
        """End these notes' active sessions in one transaction, then tell `on_ended`."""
        ended = await self._store.close_many(note_ids)
        for record in ended:
            await self._ended(record)
        return ended

    async def active(self, note_id: str) -> SessionRecord | None:
        return await self._store.active(note_id)

    async def history(self, note_id: str, *, limit: int = 50) -> list[SessionRecord]:
        return await self._store.list(note_id, limit=limit)

    async def end_stale(self, idle_for: float | None) -> list[SessionRecord]:
        """End the sessions no live connection backs (see the module docstring): those
        idle for `idle_for` seconds, or every active one (None). Call `settle` after."""
        before = None if idle_for is None else datetime.now(UTC) - timedelta(seconds=idle_for)
        ended = await self._store.close_stale(before)
        for record in ended:
            log.info("ended the stale session %s of note %s", record.id, record.note_id)
        return ended

    async def settle(self, ended: Sequence[SessionRecord]) -> None:
        """What ending these stale sessions owes: `on_ended`, and the version at their end
        (automatic: skipped if the note did not change since its newest version)."""
        for record in ended:
            await self._ended(record)
            if self._take_version is None:
                continue
            try:
                await self._take_version(record.note_id)
            except NoteNotFound:
                log.info("note %s was deleted: no version of its stale session", record.note_id)
            except Exception:
                log.exception("versioning the stale session of note %s failed", record.note_id)
                metrics.ERRORS.labels("sessions").inc()

    async def end_idle(self, idle_for: float) -> int:
        """The cleanup job's step: end and settle sessions idle for `idle_for` seconds."""
        ended = await self.end_stale(idle_for)
        await self.settle(ended)
        return len(ended)

    async def _ended(self, record: SessionRecord) -> None:
        for hook in self.on_ended:
            try:
                await hook(record)
            except Exception:
                log.exception("a session-ended hook failed for note %s", record.note_id)
                metrics.ERRORS.labels("sessions").inc()


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def session_json(record: SessionRecord) -> dict[str, Any]:
    """The seed's CollaborativeSession shape (statistics under `metadata`)."""
    end = record.ended_at or datetime.now(UTC)
    return {
        "id": record.id,
        "sessionId": record.id,
        "noteId": record.note_id,
        "participants": list(record.participants),
        "isActive": record.active,
        "startedAt": _timestamp(record.started_at),
        "endedAt": _timestamp(record.ended_at),
        "lastActivity": _timestamp(record.last_activity),
        "metadata": {
            "updates": record.updates,
            "bytes": record.bytes,
            "participantCount": len(record.participants),
            "durationSeconds": round((end - record.started_at).total_seconds(), 3),
        },
    }
