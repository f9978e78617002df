"""Socket.IO events for list views: `note:created`, `note:updated` (metadata: title,
lead, rights, tags...) and `note:deleted`, sent to every user who may view the note (its
owner and the users of `canView` / `canEdit`), so a notes list stays current without
polling. A user who loses the right to view gets `note:deleted`: for their list it is gone.

One hook, `note_changed`, called once per change on the instance that made it; the
Socket.IO emitter (Redis manager when scaled) carries it to the users' sockets on every
instance. Users with role admin or service, who see every note, are not tracked here.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from syncd import metrics
from syncd.api.note_shapes import note_json
from syncd.note_events import NoteListener
from syncd.storage import NoteRecord

log = logging.getLogger(__name__)



class UserEmitter(Protocol):
    async def emit_to_user(self, user_id: str, event: str, data: dict[str, Any]) -> None: ...


def viewers(record: NoteRecord) -> set[str]:
    """Who may view the note (edit implies view; the owner has every right)."""
    return {record.created_by, *record.permissions.can_view, *record.permissions.can_edit}


class ListEvents(NoteListener):
    def __init__(self, emitter: UserEmitter) -> None:
        self._emitter = emitter

    async def note_changed(
        self, kind: str, record: NoteRecord, before: NoteRecord | None = None
    ) -> None:
        """`record` after the change (for `deleted`, as it was); `before`, when the
        rights changed, the record before it."""
        if kind == "deleted":
            await self._emit(viewers(record), "note:deleted", {"id": record.id})
            return
        payload = note_json(record, content=record.content_text)
        now = viewers(record)
        await self._emit(now, f"note:{kind}", payload)
        if before is not None:
            await self._emit(viewers(before) - now, "note:deleted", {"id": record.id})

    async def _emit(self, users: set[str], event: str, data: dict[str, Any]) -> None:
        for user_id in sorted(users):
            try:
                await self._emitter.emit_to_user(user_id, event, data)
            except Exception:
                log.exception("sending %s to user %s failed", event, user_id)
                metrics.ERRORS.labels("socketio").inc()
