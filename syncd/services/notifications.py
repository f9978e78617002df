"""Notifications: stored per user, then delivered by a job (Socket.IO to the user's room,
e-mail when they are offline).

syncd creates them itself when a note is shared with a user and when a user is @mentioned
in a note's content. Mentions are looked at when a checkpoint stores the doc, never per
keystroke, and `note_mentions` records who was notified for which note, so each mention
notifies once however often the doc is stored and however many instances store it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from syncd import metrics
from syncd.auth import Principal
from syncd.content import doc_to_json, extract_mentions
from syncd.jobs.worker import Jobs
from syncd.services.events import (
    ContentChanged,
    EventBus,
    Mention,
    NoteShared,
    NotificationCreated,
)
from syncd.storage import NewNotification, NotificationRecord, NotificationStore, Store

log = logging.getLogger(__name__)

DELIVER_JOB = "deliver_notification"
_MENTION_CACHE = 10_000


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def notification_json(record: NotificationRecord) -> dict[str, Any]:
    """The shape of `GET /api/notifications` items and of `notification:new`."""
    return {
        "id": record.id,
        "userId": record.user_id,
        "type": record.type,
        "category": record.category,
        "title": record.title,
        "message": record.message,
        "data": record.data,
        "noteId": record.note_id,
        "actorId": record.actor_id,
        "read": record.read,
        "readAt": _timestamp(record.read_at),
        "createdAt": _timestamp(record.created_at),
    }


async def queue_delivery(jobs: Jobs, record: NotificationRecord) -> str | None:
    """Queue the delivery job of a stored notification; the job's id, or None if the
    queue failed."""
    try:
        job_id = f"critical.deliver-{record.id}"
        return await jobs.enqueue(DELIVER_JOB, job_id=job_id, notification_id=record.id)
    except Exception:
        # Stored all the same: the user sees it at the next GET /api/notifications.
        log.exception("queueing delivery of notification %s failed", record.id)
        metrics.ERRORS.labels("notifications").inc()
        return None


async def notify_users(
    store: NotificationStore, jobs: Jobs, user_ids: Iterable[str], new: NewNotification
) -> list[tuple[NotificationRecord, str | None]]:
    """Store one notification per user and queue its delivery (also where no
    `NotificationService` runs: a job of `syncd worker`); each record with its job id."""
    records = await store.create(user_ids, new)
    return [(record, await queue_delivery(jobs, record)) for record in records]


class UserSockets(Protocol):
    """Reaches every socket of a user, on every instance (the Socket.IO gateway)."""

    async def emit_to_user(self, user_id: str, event: str, data: dict[str, Any]) -> None: ...


def _who(principal: Principal) -> str:
    return principal.name or principal.user_id


class NotificationService:
    def __init__(
        self,
        store: NotificationStore,
        notes: Store,
        jobs: Jobs,
        events: EventBus,
        *,
        sockets: UserSockets,
        field: str = "prosemirror",
    ) -> None:
        self.store = store
        self._notes = notes
        self._jobs = jobs
        self._events = events
        self._sockets = sockets
        self._field = field
        #: per note, users already known to be notified: spares a transaction per checkpoint
        self._notified: OrderedDict[str, set[str]] = OrderedDict()

    async def notify(
        self, user_ids: Iterable[str], new: NewNotification
    ) -> list[tuple[NotificationRecord, str | None]]:
        """Store one notification per user and queue its delivery: each record with the id
        of its delivery job (None if queueing it failed)."""
        queued = await notify_users(self.store, self._jobs, user_ids, new)
        for record, _ in queued:
            await self._created(record)
        return queued

    async def _created(self, record: NotificationRecord) -> None:
        """Tell the subscribers (AMQP's `notification.created`)."""
        await self._events.publish(NotificationCreated(record.note_id or "", record))

    async def deliver(self, record: NotificationRecord) -> str | None:
        """Queue the delivery of `record`; the job's id, or None if the queue failed."""
        return await queue_delivery(self._jobs, record)

    async def mark_read(self, user_id: str, notification_id: str) -> NotificationRecord | None:
        """Mark one of the user's notifications read (None: not theirs); every tab of the
        user hears `notification:read` and updates its badge."""
        record = await self.store.mark_read(user_id, notification_id)
        if record is not None:
            await self._tell_read(user_id, {"id": record.id})
        return record

    async def mark_all_read(self, user_id: str, *, category: str | None = None) -> int:
        """Mark all the user's unread notifications (of `category`) read; how many."""
        updated = await self.store.mark_all_read(user_id, category=category)
        if updated:
            await self._tell_read(user_id, {"all": True, "category": category})
        return updated

    async def _tell_read(self, user_id: str, data: dict[str, Any]) -> None:
        # stored already: a tab that misses this catches up at its next list
        try:
            await self._sockets.emit_to_user(user_id, "notification:read", data)
        except Exception:
            log.exception("telling user %s about read notifications failed", user_id)
            metrics.ERRORS.labels("notifications").inc()

    # -- subscribers (registered in syncd.wiring) -------------------------------------------

    async def note_shared(self, event: NoteShared) -> None:
        record, by = event.record, event.by
        new = NewNotification(
            type="note_shared",
            category="share",
            title=f"{_who(by)} shared “{record.title}” with you",
            message=f"You can now open the note “{record.title}”.",
            data={"noteId": record.id, "noteTitle": record.title, "sharedBy": by.user_id},
            note_id=record.id,
            actor_id=by.user_id,
        )
        await self.notify(event.user_ids, new)

    async def content_changed(self, event: ContentChanged) -> None:
        """Notify users newly @mentioned in the stored content (once per user and note)."""
        room = event.room
        note_id = room.doc_id
        mentioned = extract_mentions(doc_to_json(room.doc, self._field))
        known = self._notified.get(note_id, set())
        if not mentioned or mentioned <= known:
            return
        note = await self._notes.get_note(note_id)
        if note is None:
            return
        editor = room.last_editor
        author = await self._notes.get_user(editor) if editor else None
        who = (author.name if author is not None else None) or editor or "Someone"
        new = NewNotification(
            type="mention",
            category="mention",
            title=f"{who} mentioned you in “{note.title}”",
            message=f"You were mentioned in the note “{note.title}”.",
            data={"noteId": note_id, "noteTitle": note.title, "mentionedBy": editor},
            note_id=note_id,
            actor_id=editor,
        )
        created = await self.store.notify_mentions(note_id, sorted(mentioned), new, skip=editor)
        for record in created:
            await self.deliver(record)
            await self._created(record)
        if created:
            users = tuple(sorted({record.user_id for record in created}))
            await self._events.publish(Mention(note_id, users, editor))
        self._remember(note_id, await self.store.mentioned_users(note_id))

    def _remember(self, note_id: str, users: set[str]) -> None:
        self._notified[note_id] = users
        self._notified.move_to_end(note_id)
        while len(self._notified) > _MENTION_CACHE:
            self._notified.popitem(last=False)
