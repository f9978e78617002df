"""Socket.IO events for list views: `note:created`, `note:updated` (metadata: title,
lead, rights, tags...) and `note:deleted`, sent to every user who may view the note (its
owner and the users of `canView` / `canEdit`), so a notes list stays current without
polling. A user who loses the right to view gets `note:deleted`: for their list it is gone.

A queued subscriber of `NoteCreated`, `NoteUpdated` and `NoteDeleted` (see
`syncd.wiring`): a REST call does not wait for one emit per viewer, and one queue keeps the
events of a note in order. Those kinds are published only on the instance that made the
change (a relayed deletion, `remote`, is skipped); the Socket.IO emitter (Redis manager
when scaled) carries them to the users' sockets on every instance. Users with role admin or
service, who see every note, are not tracked here.

The payload is the note as the REST API lists it; `shape` is given by the wiring, since
the transport does not import the API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from syncd import metrics
from syncd.services.events import NoteCreated, NoteDeleted, NoteRestored, NoteUpdated
from syncd.storage import NoteRecord

log = logging.getLogger(__name__)

Shape = Callable[[NoteRecord], dict[str, Any]]


class UserEmitter(Protocol):
    async def emit_to_user(self, user_id: str, event: str, data: dict[str, Any]) -> None: ...


def viewers(record: NoteRecord) -> set[str]:
    """Who may view the note (edit implies view; the owner has every right)."""
    return {record.created_by, *record.permissions.can_view, *record.permissions.can_edit}


class ListEvents:
    def __init__(self, emitter: UserEmitter, shape: Shape) -> None:
        self._emitter = emitter
        self._shape = shape

    async def note_changed(
        self, event: NoteCreated | NoteUpdated | NoteDeleted | NoteRestored
    ) -> None:
        """The subscriber (one handler for the four kinds: one queue, in publish order). A
        note back from the trash is `note:created` again for the lists it left."""
        if isinstance(event, NoteDeleted | NoteRestored):
            if event.record is None:  # relayed from the instance that emitted
                return
            if isinstance(event, NoteRestored):
                await self._emit(viewers(event.record), "note:created", self._shape(event.record))
            else:
                await self._emit(viewers(event.record), "note:deleted", {"id": event.note_id})
            return
        now = viewers(event.record)
        kind = "note:created" if isinstance(event, NoteCreated) else "note:updated"
        await self._emit(now, kind, self._shape(event.record))
        if isinstance(event, NoteUpdated):
            await self._emit(viewers(event.before) - now, "note:deleted", {"id": event.note_id})

    async def _emit(self, users: set[str], event: str, data: dict[str, Any]) -> None:
        for user_id in sorted(users):
            try:
                await self._emitter.emit_to_user(user_id, event, data)
            except Exception:
                log.exception("sending %s to user %s failed", event, user_id)
                metrics.ERRORS.labels("socketio").inc()
