"""What `NoteService` tells the features built beside it (presence, sessions,
notifications). Listeners subclass `NoteListener` and override what they need; a failing
listener is logged by the service and never fails the operation that triggered it."""

from __future__ import annotations

from collections.abc import Sequence

from syncd.auth import Principal
from syncd.room import Peer, Room
from syncd.storage import NoteRecord


class NoteListener:
    def peer_joined(self, room: Room, peer: Peer) -> None:
        """A y-websocket connection joined the note's room on this instance (sync: it
        must not delay the handshake; queue any I/O)."""

    def peer_left(self, room: Room, peer: Peer) -> None:
        """The connection left (closed, dropped or revoked)."""

    async def note_shared(self, record: NoteRecord, user_ids: Sequence[str], by: Principal) -> None:
        """Users gained view or edit rights (created with them, or added by an update)."""

    async def doc_stored(self, room: Room) -> None:
        """A checkpoint stored the room's doc (at most every `SYNCD_COMPACT_INTERVAL` and
        when the last peer leaves): the point to look at its content."""

    async def rights_changed(self, note_id: str) -> None:
        """The note's permissions changed (on this or another instance): re-check whoever
        is connected to it here."""

    async def note_deleted(self, note_id: str) -> None:
        """The note was deleted (on this or another instance)."""

    async def note_changed(
        self, kind: str, record: NoteRecord, before: NoteRecord | None = None
    ) -> None:
        """The note was created, its metadata updated or it was deleted, on this instance
        (`kind`: created, updated, deleted); `record` after the change (deleted: as it
        was); `before`: the record before a rights change, else None."""
