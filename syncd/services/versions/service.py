"""Version history use cases: take, list, read, diff and restore versions of a note.

A version is the doc's full state at one moment. One is taken when asked for (REST), when a
collaborative session ends (the last connection here leaves: `peer_left`; or a stale
session is ended: `session_ended`), and while a note keeps changing for longer than the
configured interval. Automatic versions are skipped when nothing changed since the newest
version, and thinned by the retention policy after each one is stored; every version
stored is published (`VersionTaken`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pycrdt import Doc

from syncd import metrics
from syncd.content import doc_to_json, doc_to_text, write_json
from syncd.room import Peer, Room, RoomRegistry
from syncd.services.events import ContentEdited, EventBus, PeerLeft, SessionEnded, VersionTaken
from syncd.services.versions.diff import text_diff
from syncd.services.versions.records import VersionContent, VersionDiff, VersionNotFound
from syncd.services.versions.retention import versions_to_drop
from syncd.settings import VersionSettings
from syncd.storage import NoteNotFound, VersionRecord, VersionStore
from syncd.storage.versions import same_state
from syncd.updates import EMPTY_UPDATE

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Capture:
    state: bytes
    state_vector: bytes
    authors: frozenset[str]


class VersionService:
    """One per process; an async context manager (runs the long-editing ticker)."""

    def __init__(
        self,
        store: VersionStore,
        rooms: RoomRegistry,
        events: EventBus,
        *,
        field: str = "prosemirror",
        policy: VersionSettings | None = None,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._events = events
        self._field = field
        self.policy = policy or VersionSettings()
        #: per note: a lock and how many hold or wait for it (dropped at zero)
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        #: users who changed a note since its newest version and are not connected now
        self._authors: dict[str, set[str]] = {}
        #: a connected peer's update count when it was last credited in a version
        self._credited: dict[Peer, int] = {}
        #: monotonic time an unversioned change of a loaded note was first seen
        self._changed_since: dict[str, float] = {}
        self._vectors: dict[str, bytes] = {}
        #: notes with an automatic version under way (the ticker does not stack them)
        self._in_flight: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> VersionService:
        if self.policy.interval > 0:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._background:
            await asyncio.wait(self._background, timeout=10)

    # -- subscribers (registered in syncd.wiring) -------------------------------------------

    def edited(self, event: ContentEdited) -> None:
        """A server-side edit: credit its editor in the next version."""
        self._credit(event.note_id, event.editor)

    def _credit(self, note_id: str, user_id: str | None) -> None:
        if user_id is not None:
            self._authors.setdefault(note_id, set()).add(user_id)

    def peer_left(self, event: PeerLeft) -> None:
        """Credit a leaving writer; when the room is empty, the session ended: version it."""
        room, peer = event.room, event.peer
        if peer.updates_in > self._credited.pop(peer, 0):
            self._authors.setdefault(room.doc_id, set()).add(peer.user_id)
        if not room.peers and not room.gone:
            self._spawn_automatic(room)

    async def session_ended(self, event: SessionEnded) -> None:
        """A stale session was ended (no live connection backs it): the version its last
        connection leaving would have taken (skipped if nothing changed)."""
        if not event.stale:
            return  # a live end: `peer_left` versioned it where its last peer left
        try:
            await self.take_version(event.note_id, automatic=True)
        except NoteNotFound:
            log.info("note %s was deleted: no version of its stale session", event.note_id)

    # -- taking versions -------------------------------------------------------------------

    async def take_version(
        self,
        note_id: str,
        *,
        label: str | None = None,
        automatic: bool = False,
        created_by: str | None = None,
        restored_from: int | None = None,
    ) -> VersionRecord | None:
        """Store the note's current content as a version (None: automatic and unchanged).

        Raises `syncd.storage.NoteNotFound` for an unknown note.
        """
        async with self._rooms.borrow(note_id) as room:
            return await self._version_room(
                room,
                label=label,
                automatic=automatic,
                created_by=created_by,
                restored_from=restored_from,
            )

    async def _version_room(
        self,
        room: Room,
        *,
        label: str | None = None,
        automatic: bool = False,
        created_by: str | None = None,
        restored_from: int | None = None,
    ) -> VersionRecord | None:
        note_id = room.doc_id
        async with self._locked(note_id):
            capture = self._capture(room)
            # A version never holds what a crash could still take back.
            await room.wait_durable()
            record = await self._store.add(
                note_id,
                state=capture.state,
                state_vector=capture.state_vector,
                label=label,
                automatic=automatic,
                restored_from=restored_from,
                created_by=created_by,
                authors=capture.authors,
                skip_if_unchanged=automatic,
            )
            if self._ticker is not None and self._rooms.get(note_id) is room:
                # only the ticker reads it, and only for loaded rooms (it prunes the rest);
                # without a ticker an entry per note ever versioned would stay for good
                self._vectors[note_id] = capture.state_vector
            self._changed_since.pop(note_id, None)
            self._authors.pop(note_id, None)
            if record is None:
                return None
            kind = "restore" if restored_from else "automatic" if automatic else "manual"
            metrics.VERSIONS.labels(kind).inc()
            if automatic:
                await self._thin(note_id)
        await self._events.publish(VersionTaken(note_id, record))
        return record

    def _capture(self, room: Room) -> _Capture:
        authors = set(self._authors.get(room.doc_id, ()))
        for peer in room.peers:
            if peer.updates_in > self._credited.get(peer, 0):
                authors.add(peer.user_id)
                self._credited[peer] = peer.updates_in
        doc = room.doc
        return _Capture(doc.get_update(), doc.get_state(), frozenset(authors))

    async def _thin(self, note_id: str) -> None:
        drop = versions_to_drop(
            await self._store.list(note_id),
            now=datetime.now(UTC),
            keep_recent=self.policy.keep_recent,
            max_age_days=self.policy.max_age_days,
        )
        if drop:
            await self._store.delete(note_id, drop)
            log.info("note %s: retention dropped versions %s", note_id, drop)

    @contextlib.asynccontextmanager
    async def _locked(self, note_id: str) -> AsyncIterator[None]:
        """One version of a note at a time (numbering, capture and retention in order)."""
        entry = self._locks.get(note_id)
        if entry is None:
            entry = self._locks[note_id] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[note_id]

    def _spawn_automatic(self, room: Room) -> None:
        self._in_flight.add(room.doc_id)
        task = asyncio.get_running_loop().create_task(self._automatic(room))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _automatic(self, room: Room) -> None:
        try:
            await self._version_room(room, automatic=True)
        except NoteNotFound:
            self._authors.pop(room.doc_id, None)  # deleted meanwhile: nothing to version
        except Exception:
            metrics.ERRORS.labels("versions").inc()
            log.exception("taking an automatic version of note %s failed", room.doc_id)
        finally:
            self._in_flight.discard(room.doc_id)

    # -- long editing ----------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        period = min(max(self.policy.interval / 4, 0.1), 30.0)
        while True:
            await asyncio.sleep(period)
            try:
                await self.tick()
            except Exception:
                metrics.ERRORS.labels("versions").inc()
                log.exception("version ticker failed")

    async def tick(self, now: float | None = None) -> None:
        """One pass: version loaded notes whose unversioned changes are `interval` old."""
        now = time.monotonic() if now is None else now
        loaded = {room.doc_id: room for room in self._rooms.rooms()}
        for stale in set(self._vectors) - loaded.keys():
            self._vectors.pop(stale, None)
            self._changed_since.pop(stale, None)
        for note_id, room in loaded.items():
            if room.gone:
                continue
            if note_id not in self._vectors:
                stored = await self._store.latest_state_vector(note_id)
                self._vectors[note_id] = stored if stored is not None else b"\x00"
            if same_state(room.doc.get_state(), self._vectors[note_id]):
                self._changed_since.pop(note_id, None)
                continue
            first = self._changed_since.setdefault(note_id, now)
            if now - first >= self.policy.interval and note_id not in self._in_flight:
                self._spawn_automatic(room)

    # -- reading and restoring -------------------------------------------------------------

    async def list(self, note_id: str) -> list[VersionRecord]:
        return await self._store.list(note_id)

    async def content(self, note_id: str, number: int) -> VersionContent:
        record, doc = await self._load(note_id, number)
        return VersionContent(record, doc_to_text(doc, self._field), doc_to_json(doc, self._field))

    async def diff(self, note_id: str, number: int, against: int | None) -> VersionDiff:
        """What changed going from `against` (None: the current content) to `number`."""
        _, doc = await self._load(note_id, number)
        new_text = doc_to_text(doc, self._field)
        if against is None:
            async with self._rooms.borrow(note_id) as room:
                old_text = doc_to_text(room.doc, self._field)
            old_name = "current"
        else:
            _, old_doc = await self._load(note_id, against)
            old_text = doc_to_text(old_doc, self._field)
            old_name = f"version {against}"
        diff = text_diff(old_text, new_text, old_name=old_name, new_name=f"version {number}")
        return VersionDiff(number, against, diff)

    async def restore(
        self, note_id: str, number: int, *, editor: str, label: str | None = None
    ) -> VersionRecord:
        """Make the current content equal the version's, as one CRDT update sent live to
        every editor, and store the result as a new version."""
        _, doc = await self._load(note_id, number)
        target = doc_to_json(doc, self._field)
        async with self._rooms.borrow(note_id) as room:
            update = write_json(room.doc, target, self._field)
            if update != EMPTY_UPDATE:
                room.record_local(update, editor=editor)
                self._credit(note_id, editor)
            record = await self._version_room(
                room, label=label, created_by=editor, restored_from=number
            )
        assert record is not None  # only automatic versions are ever skipped
        return record

    async def _load(self, note_id: str, number: int) -> tuple[VersionRecord, Doc[Any]]:
        found = await self._store.get(note_id, number)
        if found is None:
            raise VersionNotFound(f"note {note_id} has no version {number}")
        record, state = found
        doc: Doc[Any] = Doc()
        doc.apply_update(state)
        return record, doc
