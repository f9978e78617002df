"""Collaborative sessions: a session lasts while anyone is connected to its note.

The realtime hub opens (or joins) the note's session when connections arrive, adds their
statistics while they stay, and ends it when the last connection anywhere leaves. REST can
start and end one explicitly. Whoever needs to act when a session ends (e.g. taking a
version) registers on `on_ended`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd import metrics
from syncd.storage import SessionRecord, SessionStore, StorageError

log = logging.getLogger(__name__)

SessionEnded = Callable[[SessionRecord], Awaitable[None]]


class SessionService:
    def __init__(self, store: SessionStore) -> None:
        self._store = store
        #: told after a session ended (by the last connection leaving, REST or cleanup)
        self.on_ended: list[SessionEnded] = []

    async def start(
        self, note_id: str, user_ids: tuple[str, ...] = (), *, updates: int = 0, size: int = 0
    ) -> SessionRecord:
        """Open the note's session if none is active, join `user_ids`, add statistics."""
        return await self._store.open(note_id, user_ids, updates=updates, size=size)

    async def touch_many(self, items: Sequence[tuple[str, tuple[str, ...], int, int]]) -> None:
        """Keep these notes' sessions alive with new statistics (one transaction); open a
        session for any note that has none. `items`: (note, users, updates, bytes)."""
        missing = set(await self._store.touch_many(items))
        for note_id, users, updates, size in items:
            if note_id not in missing:
                continue
            try:
                await self._store.open(note_id, users, updates=updates, size=size)
            except StorageError as exc:  # e.g. the note was deleted meanwhile: the others go on
                log.warning("opening the session of note %s failed: %s", note_id, exc)
                metrics.ERRORS.labels("sessions").inc()

    async def end(self, note_id: str) -> SessionRecord | None:
        ended = await self._store.close(note_id)
        if ended is not None:
            await self._ended(ended)
        return ended

    async def active(self, note_id: str) -> SessionRecord | None:
        return await self._store.active(note_id)

    async def history(self, note_id: str, *, limit: int = 50) -> list[SessionRecord]:
        return await self._store.list(note_id, limit=limit)

    async def end_idle(self, idle_for: float) -> int:
        """End sessions without activity for `idle_for` seconds: every live session is
        touched each presence refresh, so these belong to instances that died."""
        notes = await self._store.close_idle(datetime.now(UTC) - timedelta(seconds=idle_for))
        for note_id in notes:
            log.info("ended the idle session of note %s", note_id)
        return len(notes)

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
