"""Collaborative sessions: a session lasts while anyone is connected to its note.

The realtime hub opens (or joins) the note's session when connections arrive, adds their
statistics while they stay, and ends it when the last connection anywhere leaves, in
batches (`record`, `end_many`). REST can start and end one explicitly. Starts and ends
are published on the events bus (`SessionStarted`, `SessionEnded`).

A session can also outlive its connections: its instance was killed, or stopped before
its bookkeeping was done. Such a session is stale once no live connection backs it; it
is then ended as of its last activity (`end_stale`), and `settle` publishes its end as
stale, so that the versions service takes the version the normal path would have taken
when its last connection left. Who finds
them: an embedded instance at start (it is the only instance, and nothing is connected
yet, so every active session is stale), and in scaled mode any instance, for sessions
that missed three presence refreshes (live ones are touched every refresh): at start,
one refresh-TTL later, and in the periodic cleanup job.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd.services.events import EventBus, SessionEnded, SessionStarted
from syncd.storage import SessionActivity, SessionRecord, SessionStore

log = logging.getLogger(__name__)

#: session ids this process announced as started (bounded: an old one is long ended)
_ANNOUNCED_MAX = 10_000


class SessionService:
    def __init__(self, store: SessionStore, events: EventBus) -> None:
        self._store = store
        self._events = events
        self._announced: OrderedDict[str, None] = OrderedDict()

    async def start(
        self, note_id: str, user_ids: tuple[str, ...] = (), *, updates: int = 0, size: int = 0
    ) -> SessionRecord:
        """Open the note's session if none is active, join `user_ids`, add statistics.

        Raises `NoteNotFound` if the note is gone."""
        record = await self._store.open(note_id, user_ids, updates=updates, size=size)
        await self._started(note_id, record.id)
        return record

    async def record(self, items: Sequence[SessionActivity]) -> dict[str, str]:
        """Open, join and keep alive many notes' sessions in one transaction (notes gone
        meanwhile are left out); returns note id -> session id."""
        sessions = await self._store.record(items)
        for note_id, session_id in sessions.items():
            await self._started(note_id, session_id)
        return sessions

    async def end(self, note_id: str) -> SessionRecord | None:
        ended = await self._store.end(note_id)
        if ended is not None:
            await self._ended(ended)
        return ended

    async def end_many(
        self,
        note_ids: Sequence[str],
        *,
        confirm: Callable[[list[str]], Awaitable[Collection[str]]] | None = None,
    ) -> list[SessionRecord]:
        """End these notes' active sessions in one transaction, then publish their ends.

        `confirm` is asked, while those sessions are locked, which notes are still
        without anyone (`SessionStore.close_many`): only their sessions end."""
        ended = await self._store.close_many(note_ids, confirm=confirm)
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
        """What ending these stale sessions owes: their ends published as stale (the
        versions service, where rooms are loaded, takes the version at their end)."""
        for record in ended:
            await self._ended(record, stale=True)

    async def end_idle(self, idle_for: float) -> int:
        """The cleanup job's step: end and settle sessions idle for `idle_for` seconds."""
        ended = await self.end_stale(idle_for)
        await self.settle(ended)
        return len(ended)

    async def _started(self, note_id: str, session_id: str) -> None:
        """Publish `SessionStarted` the first time this process sees the session (another
        instance that joins it may announce it too: at least once per session; its outgoing
        message has one id per session, so receivers keep one: `events.payloads`)."""
        if session_id in self._announced:
            return
        self._announced[session_id] = None
        while len(self._announced) > _ANNOUNCED_MAX:
            self._announced.popitem(last=False)
        await self._events.publish(SessionStarted(note_id, session_id))

    async def _ended(self, record: SessionRecord, *, stale: bool = False) -> None:
        self._announced.pop(record.id, None)
        await self._events.publish(SessionEnded(record.note_id, record, stale=stale))


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
