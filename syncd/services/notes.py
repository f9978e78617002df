"""Note operations shared by the REST API and the WebSocket endpoint.

This is where storage (metadata, rights), rooms (live docs) and content (ProseMirror JSON,
plain text) meet, so that the transport and API modules stay thin: they authenticate,
call one method here, and map its exceptions to status or close codes. What happens to a
note is published on the events bus (`syncd.services.events`); the features beside this
one (versions, notifications, presence, Socket.IO, the cache) subscribe in `syncd.wiring`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from syncd.auth import Access, AuthError, Principal, TokenVerifier, grant_access, resolve_access
from syncd.content import (
    check_update_safe,
    doc_to_json,
    doc_to_text,
    json_to_text,
    sanitize,
    write_json,
)
from syncd.ids import is_note_id
from syncd.protocol.close_codes import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND
from syncd.room import Room, RoomRegistry
from syncd.services.cache import NoteCache
from syncd.services.events import (
    ContentChanged,
    ContentEdited,
    EventBus,
    NoteCreated,
    NoteDeleted,
    NoteRestored,
    NoteShared,
    NoteUpdated,
    PermissionsChanged,
)
from syncd.storage import (
    UNSET,
    NoteAccess,
    NoteExists,
    NoteMetadata,
    NoteNotFound,
    NoteRecord,
    Permissions,
    Store,
    UserRecord,
)
from syncd.updates import EMPTY_UPDATE

log = logging.getLogger(__name__)

#: the grant `Store.get_access` answers a note's creator
_CREATOR = NoteAccess(owner=True, can_view=True, can_edit=True, can_delete=True)

#: a user record this process stored is not stored again for this long unless it changed
USER_RECORD_TTL = 600.0
USER_RECORD_MAX = 10_000


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
        events: EventBus,
        *,
        field: str = "prosemirror",
        auto_create: bool = False,
        cache: NoteCache | None = None,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._verifier = verifier
        self._events = events
        self._field = field
        self._auto_create = auto_create
        self._cache = cache or NoteCache(None)
        self._background: set[asyncio.Task[None]] = set()
        self._recorded_users: dict[str, tuple[UserRecord, float]] = {}

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

    async def connect_access(self, principal: Principal, note_id: str) -> Access:
        """Rights for a WebSocket connection; creates the note when auto-create is on."""
        self.remember_user(principal)
        user_id = principal.user_id

        async def create() -> NoteAccess | None:
            try:
                await self._store.create_note(note_id=note_id, title="Untitled", created_by=user_id)
            except NoteExists:  # a concurrent connection created it: its grant, read
                return await self._store.get_access(note_id, user_id)
            return _CREATOR  # what `get_access` answers the note's creator, without the read

        grant = await self._cache.access(
            note_id,
            user_id,
            lambda: self._store.get_access(note_id, user_id),
            create=create if self._auto_create and is_note_id(note_id) else None,
        )
        if grant is None:
            raise NoteNotFound(note_id)
        return resolve_access(principal, grant)[0]

    def remember_user(self, principal: Principal) -> None:
        """Record the user seen in a token, off the connection's critical path.

        Skipped when this process stored the same record within `USER_RECORD_TTL`: a
        write per connection (a tab reconnecting, a join storm) cost a write transaction
        each and held the database's write lock in front of the update log.
        """
        now = time.monotonic()
        seen = self._recorded_users.get(principal.user_id)
        if seen is not None and now - seen[1] < USER_RECORD_TTL:
            # compared field by field: no record is built for a user already stored
            # (the usual connect, and every one of a join storm)
            known = seen[0]
            if (
                known.name == principal.name
                and known.email == principal.email
                and known.roles == principal.roles
                and known.email_notifications
            ):
                return
        user = UserRecord(
            id=principal.user_id, name=principal.name, email=principal.email, roles=principal.roles
        )
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
        await self._events.publish(NoteCreated(record.id, record, principal))
        await self._shared(record, _granted(permissions) - {principal.user_id}, principal)
        return await self._with_content(record, content_json, principal.user_id)

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
        """Change metadata and/or content, as `principal`: `NoteNotFound` for no such note,
        `Forbidden` without edit right (view included, as DESIGN.md's contract says) or,
        for permissions, unless owner or admin. Rights changes reach open connections at
        once. The note is read once (uncached: a write decides on the row itself), and its
        room borrowed once for the content written and shown."""
        before = await self._store.get_note(note_id)
        if before is None:
            raise NoteNotFound(note_id)
        access, _ = resolve_access(principal, _grant(before, principal.user_id))
        if access < Access.EDIT:
            raise Forbidden("edit permission required")
        if (
            permissions is not UNSET
            and before.created_by != principal.user_id
            and not principal.privileged
        ):
            raise Forbidden("only the owner or an admin may change permissions")
        changes: dict[str, Any] = {
            key: value
            for key, value in {
                "title": title,
                "lead_id": lead_id,
                "permissions": permissions,
                "metadata": metadata,
            }.items()
            if value is not UNSET
        }
        record = await self._store.update_note(note_id, updated_by=principal.user_id, **changes)
        if record is None:
            raise NoteNotFound(note_id)
        await self._events.publish(NoteUpdated(note_id, record, before))
        if "permissions" in changes:
            added = _granted(record.permissions) - _granted(before.permissions)
            await self._shared(record, added - {record.created_by, principal.user_id}, principal)
            await self._events.publish(PermissionsChanged(note_id))
        return await self._with_content(record, content_json, principal.user_id)

    async def delete(self, note_id: str) -> None:
        """Move the note to the trash (`NoteNotFound` if there is no such live note): to
        every reader it is gone, and its connections close 4404 on every instance, as for
        a purge; its content, versions and rights wait for `restore` or the purge job."""
        record = await self._store.trash_note(note_id)
        if record is None:
            raise NoteNotFound(note_id)
        await self._events.publish(NoteDeleted(note_id, record=record))

    async def purge(self, note_id: str) -> None:
        """Delete the note for good, from the trash or live (`NoteNotFound` if neither)."""
        # read first: the event names who could view the note (their lists drop it)
        record = await self._store.get_note(note_id, trashed=None)
        if record is None or not await self._store.delete_note(note_id):
            raise NoteNotFound(note_id)
        await self._events.publish(NoteDeleted(note_id, record=record, permanent=True))

    async def trash_access(self, principal: Principal, note_id: str) -> bool:
        """May `principal` restore (delete) the note in the trash? `NoteNotFound` if it is
        not in the trash. Uncached: the cache holds live notes only."""
        grant = await self._store.get_access(note_id, principal.user_id, trashed=True)
        if grant is None:
            raise NoteNotFound(note_id)
        return resolve_access(principal, grant)[1]

    async def restore(self, principal: Principal, note_id: str) -> NoteView:
        """Bring the note back from the trash (`NoteNotFound` if it is not there) with its
        content, versions and rights; its users may connect again at once."""
        record = await self._store.restore_note(note_id)
        if record is None:
            raise NoteNotFound(note_id)
        await self._events.publish(NoteRestored(note_id, record=record, by=principal))
        return await self._with_content(record, None, principal.user_id)

    async def apply_update(self, note_id: str, update: bytes, editor: str) -> None:
        """Apply a client-made Yjs update server-side (raises `ProtocolError` if invalid,
        `UnsafeContent` if it brings content outside the safe schema)."""
        async with self._rooms.borrow(note_id) as room:
            room.check(update)  # walked before any pycrdt doc, the guard's scratch one too
            check_update_safe(room.doc, update, self._field, "/contentJson")
            room.apply(update, editor=editor)
            await room.wait_durable()
        await self._events.publish(ContentEdited(note_id, editor))

    async def _with_content(
        self, record: NoteRecord, content: dict[str, object] | None, editor: str
    ) -> NoteView:
        """Write `content` (if any) into the note's live doc, durably, and show the note."""
        edited = False
        async with self._rooms.borrow(record.id) as room:
            if content is not None:
                update = write_json(room.doc, content, self._field)
                if update != EMPTY_UPDATE:
                    room.record_local(update, editor=editor)
                    await room.wait_durable()
                    edited = True
            view = NoteView(
                record=record,
                text=doc_to_text(room.doc, self._field),
                json=doc_to_json(room.doc, self._field),
            )
        if edited:
            await self._events.publish(ContentEdited(record.id, editor))
        return view

    # -- subscribers (registered in syncd.wiring) -----------------------------------------

    async def reauthorize(self, event: PermissionsChanged) -> None:
        """Re-check every open connection to the note after its rights changed (here or on
        another instance)."""
        room = self._rooms.get(event.note_id)
        if room is None:
            return
        for peer in list(room.peers):
            if peer.privileged:
                continue
            level, _ = grant_access(await self._store.get_access(event.note_id, peer.user_id))
            if level < Access.VIEW:
                await peer.channel.close(CLOSE_FORBIDDEN, "view permission revoked")
            else:
                peer.can_write = level >= Access.EDIT
                peer.denied_sent = False

    async def close_deleted(self, event: NoteDeleted) -> None:
        """The note was deleted (here or on another instance): its connections close 4404."""
        room = self._rooms.get(event.note_id)
        if room is not None:
            room.gone = True
            await room.close_peers(CLOSE_NOT_FOUND, "note deleted", lambda _: True)

    def reopen(self, event: NoteRestored) -> None:
        """The note came back (here or on another instance): a room that its deletion marked
        gone and that has not unloaded yet serves again (its doc is the stored one: a
        trashed note's updates were all stored before the room was marked)."""
        room = self._rooms.get(event.note_id)
        if room is not None:
            room.gone = False

    async def _shared(self, record: NoteRecord, users: set[str], by: Principal) -> None:
        if users:
            await self._events.publish(NoteShared(record.id, record, tuple(sorted(users)), by))


class ContentRecorder:
    """The registry's checkpoint hook: a stored doc moves the note's version, lastModified
    and text (that of its sanitised content), then `ContentChanged` is published. A failure
    here fails the checkpoint (it is retried); a failing subscriber does not."""

    def __init__(
        self, store: Store, cache: NoteCache, events: EventBus, *, field: str = "prosemirror"
    ) -> None:
        self._store = store
        self._cache = cache
        self._events = events
        self._field = field

    async def __call__(self, room: Room) -> None:
        await self._store.record_doc_change(
            room.doc_id,
            updated_by=room.last_editor,
            # the text lists and searches show: that of the safe content, as every output
            content_text=json_to_text(sanitize(doc_to_json(room.doc, self._field))),
        )
        await self._cache.invalidate(room.doc_id)
        await self._events.publish(ContentChanged(room.doc_id, room))


def _granted(permissions: Permissions) -> set[str]:
    """Users who may at least view (edit implies view)."""
    return set(permissions.can_view) | set(permissions.can_edit)


def _grant(record: NoteRecord, user_id: str) -> NoteAccess:
    """`user_id`'s rights from the note's own row (what `Store.get_access` reads apart)."""
    rights = record.permissions
    return NoteAccess(
        owner=record.created_by == user_id,
        can_view=user_id in rights.can_view,
        can_edit=user_id in rights.can_edit,
        can_delete=user_id in rights.can_delete,
    )


__all__ = ["AuthError", "ContentRecorder", "Forbidden", "NoteNotFound", "NoteService", "NoteView"]
