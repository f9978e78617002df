"""Note operations shared by the REST API and the WebSocket endpoint.

This is where storage (metadata, rights), rooms (live docs) and content (ProseMirror JSON,
plain text) meet, so that the transport and API modules stay thin: they authenticate,
call one method here, and map its exceptions to status or close codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from syncd import metrics
from syncd.auth import Access, AuthError, Principal, TokenVerifier, grant_access, resolve_access
from syncd.bus import LocalEvents
from syncd.cache import NoteCache
from syncd.content import (
    EMPTY_UPDATE,
    check_update_safe,
    doc_to_json,
    doc_to_text,
    write_json,
)
from syncd.ids import is_note_id
from syncd.note_events import NoteListener
from syncd.room import Peer, Room, RoomRegistry
from syncd.storage import (
    UNSET,
    NoteExists,
    NoteMetadata,
    NoteRecord,
    Permissions,
    Store,
    UserRecord,
)
from syncd.versions import VersionService

log = logging.getLogger(__name__)

#: a user record this process stored is not stored again for this long unless it changed
USER_RECORD_TTL = 600.0
USER_RECORD_MAX = 10_000

CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
EVENT_ACCESS = "access"
EVENT_DELETED = "deleted"


class NoteNotFound(LookupError):
    """No such note (HTTP 404, close 4404)."""


class Forbidden(PermissionError):
    """The caller lacks the right for this operation (HTTP 403, close 4403)."""


@dataclass(frozen=True, slots=True)
class NoteView:
    """A note with its live content, as `GET /:id` shows it."""

    record: NoteRecord
    text: str
    json: dict[str, object]


class NoteService:
    """Use cases over notes; one instance per process."""

    def __init__(
        self,
        store: Store,
        rooms: RoomRegistry,
        verifier: TokenVerifier,
        events: LocalEvents,
        *,
        field: str = "prosemirror",
        auto_create: bool = False,
        cache: NoteCache | None = None,
        versions: VersionService | None = None,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._verifier = verifier
        #: rights changes and deletions reach every instance through these events
        self._events = events
        events.handler = self.handle_event
        self._field = field
        self._auto_create = auto_create
        self._cache = cache or NoteCache(None)
        #: version history: told who edits and when a room's last peer leaves
        self.versions = versions
        self._background: set[asyncio.Task[None]] = set()
        self._recorded_users: dict[str, tuple[UserRecord, float]] = {}
        #: presence, sessions, notifications: told about peers, shares and stored docs
        self.listeners: list[NoteListener] = []

    # -- identity and rights -------------------------------------------------------------

    def verify_token(self, token: str | None) -> Principal:
        return self._verifier.verify(token)

    async def access(self, principal: Principal, note_id: str) -> tuple[Access, bool]:
        """(level, may delete) of `principal` on `note_id`; raises `NoteNotFound`."""
        grant = await self._cache.access(
            note_id, principal.user_id, lambda: self._store.get_access(note_id, principal.user_id)
        )
        if grant is None:
            raise NoteNotFound(note_id)
        return resolve_access(principal, grant)

    async def require(self, principal: Principal, note_id: str, level: Access) -> None:
        access, _ = await self.access(principal, note_id)
        if access < level:
            raise Forbidden(f"{level.name.lower()} permission required")

    async def connect_access(self, principal: Principal, note_id: str) -> Access:
        """Rights for a WebSocket connection; creates the note when auto-create is on."""
        self._remember_user(principal)
        try:
            access, _ = await self.access(principal, note_id)
        except NoteNotFound:
            if not self._auto_create or not is_note_id(note_id):
                raise
            with contextlib.suppress(NoteExists):  # a concurrent connection created it
                await self._store.create_note(
                    note_id=note_id, title="Untitled", created_by=principal.user_id
                )
            access, _ = await self.access(principal, note_id)
        return access

    def _remember_user(self, principal: Principal) -> None:
        """Record the user seen in a token, off the connection's critical path.

        Skipped when this process stored the same record within `USER_RECORD_TTL`: a
        write per connection (a tab reconnecting, a join storm) cost a write transaction
        each and held the database's write lock in front of the update log.
        """
        user = UserRecord(
            id=principal.user_id, name=principal.name, email=principal.email, roles=principal.roles
        )
        now = time.monotonic()
        seen = self._recorded_users.get(user.id)
        if seen is not None and seen[0] == user and now - seen[1] < USER_RECORD_TTL:
            return
        if len(self._recorded_users) >= USER_RECORD_MAX:
            self._recorded_users.clear()
        self._recorded_users[user.id] = (user, now)
        task = asyncio.get_running_loop().create_task(self._store.upsert_user(user))
        self._background.add(task)
        task.add_done_callback(lambda done: self._background_done(done, user.id))

    def _background_done(self, task: asyncio.Task[None], user_id: str) -> None:
        self._background.discard(task)
        if task.cancelled() or task.exception() is not None:
            self._recorded_users.pop(user_id, None)  # not stored: the next connection retries
            if not task.cancelled():
                log.warning("recording a user failed: %s", task.exception())

    # -- peers (hooks for presence and sessions) -----------------------------------------

    def peer_joined(self, room: Room, peer: Peer) -> None:
        log.debug("user %s joined note %s", peer.user_id, room.doc_id)
        for listener in self.listeners:
            try:
                listener.peer_joined(room, peer)
            except Exception:
                log.exception("a listener failed on a peer joining note %s", room.doc_id)
                metrics.ERRORS.labels("note_listener").inc()

    def peer_left(self, room: Room, peer: Peer) -> None:
        log.debug("user %s left note %s", peer.user_id, room.doc_id)
        for listener in self.listeners:
            try:
                listener.peer_left(room, peer)
            except Exception:
                log.exception("a listener failed on a peer leaving note %s", room.doc_id)
                metrics.ERRORS.labels("note_listener").inc()
        if self.versions is not None:
            self.versions.peer_left(room, peer)

    # -- notes ---------------------------------------------------------------------------

    async def create(
        self,
        principal: Principal,
        *,
        title: str,
        lead_id: str | None,
        permissions: Permissions,
        metadata: NoteMetadata,
        content_json: dict[str, object] | None,
        note_id: str | None = None,
    ) -> NoteView:
        record = await self._store.create_note(
            note_id=note_id,
            title=title,
            created_by=principal.user_id,
            lead_id=lead_id,
            permissions=permissions,
            metadata=metadata,
        )
        await self._shared(record, _granted(permissions) - {principal.user_id}, principal)
        if content_json is not None:
            await self._write_content(record.id, content_json, principal.user_id)
        return await self.view(record.id)

    async def record(self, note_id: str) -> NoteRecord | None:
        """The note's metadata (cached; every write below invalidates it)."""
        return await self._cache.note(note_id, lambda: self._store.get_note(note_id))

    async def view(self, note_id: str) -> NoteView:
        """The note with the content of its live doc (loaded for the call if needed)."""
        async with self._rooms.borrow(note_id) as room:
            text = doc_to_text(room.doc, self._field)
            content = doc_to_json(room.doc, self._field)
        record = await self.record(note_id)
        if record is None:
            raise NoteNotFound(note_id)
        return NoteView(record=record, text=text, json=content)

    async def update(
        self,
        principal: Principal,
        note_id: str,
        *,
        title: object = UNSET,
        lead_id: object = UNSET,
        permissions: object = UNSET,
        metadata: object = UNSET,
        content_json: dict[str, object] | None = None,
    ) -> NoteView:
        """Change metadata and/or content; rights changes reach open connections at once."""
        changes = {
            key: value
            for key, value in {
                "title": title,
                "lead_id": lead_id,
                "permissions": permissions,
                "metadata": metadata,
            }.items()
            if value is not UNSET
        }
        before = await self._store.get_note(note_id) if "permissions" in changes else None
        record = await self._store.update_note(note_id, updated_by=principal.user_id, **changes)
        if record is None:
            raise NoteNotFound(note_id)
        if before is not None:
            added = _granted(record.permissions) - _granted(before.permissions)
            await self._shared(record, added - {record.created_by, principal.user_id}, principal)
        await self._cache.invalidate(note_id)
        if "permissions" in changes:
            await self._events.publish(EVENT_ACCESS, note_id)
        if content_json is not None:
            await self._write_content(note_id, content_json, principal.user_id)
        return await self.view(note_id)

    async def delete(self, note_id: str) -> None:
        if not await self._store.delete_note(note_id):
            raise NoteNotFound(note_id)
        await self._cache.invalidate(note_id)
        await self._events.publish(EVENT_DELETED, note_id)

    async def handle_event(self, kind: str, note_id: str) -> None:
        """A note event from this or another instance: act on the local connections."""
        if kind == EVENT_ACCESS:
            await self.reauthorize(note_id)
        elif kind == EVENT_DELETED:
            room = self._rooms.get(note_id)
            if room is not None:
                room.gone = True
                await room.close_peers(CLOSE_NOT_FOUND, "note deleted", lambda _: True)
        else:
            log.warning("ignoring unknown note event %r", kind)
            return
        for listener in self.listeners:
            try:
                if kind == EVENT_ACCESS:
                    await listener.rights_changed(note_id)
                else:
                    await listener.note_deleted(note_id)
            except Exception:
                log.exception("a listener failed on the %s event of note %s", kind, note_id)
                metrics.ERRORS.labels("note_listener").inc()

    async def apply_update(self, note_id: str, update: bytes, editor: str) -> None:
        """Apply a client-made Yjs update server-side (raises `ProtocolError` if invalid,
        `UnsafeContent` if it brings content outside the safe schema)."""
        async with self._rooms.borrow(note_id) as room:
            check_update_safe(room.doc, update, self._field, "/contentJson")
            room.apply(update, editor=editor)
            await room.wait_durable()
        if self.versions is not None:
            self.versions.edited(note_id, editor)

    async def _write_content(self, note_id: str, content: dict[str, object], editor: str) -> None:
        async with self._rooms.borrow(note_id) as room:
            update = write_json(room.doc, content, self._field)
            if update != EMPTY_UPDATE:
                room.record_local(update, editor=editor)
                await room.wait_durable()
                if self.versions is not None:
                    self.versions.edited(note_id, editor)

    async def reauthorize(self, note_id: str) -> None:
        """Re-check every open connection to `note_id` after its rights changed."""
        room = self._rooms.get(note_id)
        if room is None:
            return
        for peer in list(room.peers):
            if peer.privileged:
                continue
            level, _ = grant_access(await self._store.get_access(note_id, peer.user_id))
            if level < Access.VIEW:
                await peer.channel.close(CLOSE_FORBIDDEN, "view permission revoked")
            else:
                peer.can_write = level >= Access.EDIT
                peer.denied_sent = False

    async def on_checkpoint(self, room: Room) -> None:
        """A room's state was stored: move the note's version, lastModified and text."""
        await self._store.record_doc_change(
            room.doc_id,
            updated_by=room.last_editor,
            content_text=doc_to_text(room.doc, self._field),
        )
        await self._cache.invalidate(room.doc_id)
        for listener in self.listeners:
            try:
                await listener.doc_stored(room)
            except Exception:
                log.exception("a listener failed on the stored doc of note %s", room.doc_id)
                metrics.ERRORS.labels("note_listener").inc()

    async def _shared(self, record: NoteRecord, users: set[str], by: Principal) -> None:
        """Tell listeners (notifications) who gained access; never fails the caller."""
        if not users:
            return
        for listener in self.listeners:
            try:
                await listener.note_shared(record, sorted(users), by)
            except Exception:
                log.exception("a listener failed on note %s being shared", record.id)
                metrics.ERRORS.labels("note_listener").inc()


def _granted(permissions: Permissions) -> set[str]:
    """Users who may at least view (edit implies view)."""
    return set(permissions.can_view) | set(permissions.can_edit)


__all__ = ["AuthError", "Forbidden", "NoteNotFound", "NoteService", "NoteView"]
