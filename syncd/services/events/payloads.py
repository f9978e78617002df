"""The event catalogue: one JSON payload schema per event type that leaves the process.

Webhooks and the AMQP publisher (`syncd.services.amqp`) send the same models, so a CRM
back end parses one schema whatever carries it. Every message is an `EventMessage`
envelope (the Standard Webhooks layout: `type`, `timestamp`, `data`, plus the event `id`,
which is also the `webhook-id` header) around the `data` model of its type. Times are ISO
8601 in UTC; content is the sanitised content (`syncd.content.sanitize`), as every output.

`message_of` maps a typed event to its message, or None for events that stay internal
(peers, presence, remote copies of an event published on another instance).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from syncd.services.events.kinds import (
    Mention,
    NoteCreated,
    NoteDeleted,
    NoteEvent,
    NoteRestored,
    NoteShared,
    NotificationCreated,
    PermissionsChanged,
    SessionEnded,
    SessionStarted,
    VersionTaken,
)
from syncd.storage import NoteRecord

WebhookEventType = Literal[
    "note.created",
    "note.updated",
    "note.deleted",
    "note.restored",
    "note.permissions_changed",
    "note.shared",
    "version.created",
    "session.started",
    "session.ended",
    "mention.created",
]
#: every type: webhooks carry all but `notification.created` (a user's notification is
#: for the AMQP consumers of a CRM, e.g. its activity timeline; not a note event)
EventType = WebhookEventType | Literal["notification.created"]

#: the webhooks' types, in the order the README lists them (`SYNCD_WEBHOOK_EVENTS`)
WEBHOOK_EVENT_TYPES: tuple[str, ...] = get_args(WebhookEventType)
#: every type of the catalogue (what AMQP carries)
EVENT_TYPES: tuple[str, ...] = (*WEBHOOK_EVENT_TYPES, "notification.created")


class _Payload(BaseModel):
    """camelCase on the wire, like the REST API; unknown fields refused when parsing."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


class PermissionsData(_Payload):
    can_view: list[str]
    can_edit: list[str]
    can_delete: list[str]


class NoteData(_Payload):
    """A note's row (what `GET /api/collaborative-notes/:id` shows, without content)."""

    note_id: str
    title: str
    lead_id: str | None
    created_by: str
    updated_by: str | None
    version: int
    created_at: datetime
    last_modified: datetime
    permissions: PermissionsData


class NoteCreatedData(_Payload):
    note: NoteData
    by: str


class NoteUpdatedData(_Payload):
    """Debounced per note: at most one per `SYNCD_WEBHOOK_DEBOUNCE` seconds and one when
    its editing session ends. `text` and `content` are those of the sanitised content at
    the last stored checkpoint; `content` is None when only the row changed (fetch it with
    `GET /api/collaborative-notes/:id` if needed)."""

    note: NoteData
    text: str
    content: dict[str, Any] | None = None


class NoteDeletedData(_Payload):
    """`permanent`: purged (by an admin, or by the trash's retention); otherwise moved to
    the trash, from where `note.restored` may bring it back."""

    note_id: str
    title: str | None = None
    permanent: bool = False


class NoteRestoredData(_Payload):
    note: NoteData
    by: str


class NoteIdData(_Payload):
    note_id: str


class NoteSharedData(_Payload):
    note_id: str
    user_ids: list[str]
    by: str


class VersionCreatedData(_Payload):
    note_id: str
    version: int
    label: str | None
    automatic: bool
    restored_from: int | None
    created_by: str | None
    authors: list[str]
    size: int
    created_at: datetime


class SessionStartedData(_Payload):
    note_id: str
    session_id: str


class SessionEndedData(_Payload):
    note_id: str
    session_id: str
    started_at: datetime
    ended_at: datetime | None
    updates: int
    bytes: int
    participants: list[str]


class MentionCreatedData(_Payload):
    note_id: str
    user_ids: list[str]
    by: str | None


class NotificationCreatedData(_Payload):
    """A notification stored for a user (a share, a mention, one a service created);
    title and message as the user sees them, `noteId` None when it is about no note."""

    notification_id: str
    user_id: str
    type: str
    category: str
    title: str
    message: str
    note_id: str | None
    actor_id: str | None
    created_at: datetime


EventData = (
    NoteCreatedData
    | NoteUpdatedData
    | NoteDeletedData
    | NoteRestoredData
    | NoteIdData
    | NoteSharedData
    | VersionCreatedData
    | SessionStartedData
    | SessionEndedData
    | MentionCreatedData
    | NotificationCreatedData
)

#: the `data` model of each type (for consumers that parse, and for the README's table)
DATA_MODELS: dict[str, type[_Payload]] = {
    "note.created": NoteCreatedData,
    "note.updated": NoteUpdatedData,
    "note.deleted": NoteDeletedData,
    "note.restored": NoteRestoredData,
    "note.permissions_changed": NoteIdData,
    "note.shared": NoteSharedData,
    "version.created": VersionCreatedData,
    "session.started": SessionStartedData,
    "session.ended": SessionEndedData,
    "mention.created": MentionCreatedData,
    "notification.created": NotificationCreatedData,
}


class EventMessage(_Payload):
    """The envelope: `id` is unique per event and stable across delivery attempts, so a
    receiver drops duplicates by it; `noteId` lets it order and route per note (None only
    for a `notification.created` about no note)."""

    id: str
    type: EventType
    timestamp: datetime
    note_id: str | None
    #: the model of `type` (`DATA_MODELS`); checked when built by `message`
    data: EventData

    def body(self) -> str:
        """The JSON body as sent (and signed)."""
        return self.model_dump_json(by_alias=True)

    @classmethod
    def parse(cls, body: str | bytes) -> EventMessage:
        """A received body, its `data` parsed with the model of its `type`."""
        raw = json.loads(body)
        if not isinstance(raw, dict) or raw.get("type") not in DATA_MODELS:
            raise ValueError("not a syncd event message")
        data = DATA_MODELS[raw["type"]].model_validate(raw.get("data"))
        return cls.model_validate({**raw, "data": data})


class WebhookTestData(_Payload):
    endpoint_id: str
    message: str = "a test event sent on request (POST /api/webhooks/:id/test)"


class WebhookTestMessage(_Payload):
    """`webhook.test`: not a note event (no `noteId`), sent to one endpoint on request
    whatever events it wants, so a receiver's URL and secret can be checked."""

    id: str
    type: Literal["webhook.test"] = "webhook.test"
    timestamp: datetime
    data: WebhookTestData

    def body(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def new(cls, data: WebhookTestData) -> WebhookTestMessage:
        return cls(id=new_event_id(), timestamp=datetime.now(UTC), data=data)


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def message(
    type_: EventType,
    note_id: str | None,
    data: EventData,
    *,
    at: datetime | None = None,
    event_id: str | None = None,
) -> EventMessage:
    return EventMessage(
        id=event_id or new_event_id(),
        type=type_,
        timestamp=at or datetime.now(UTC),
        note_id=note_id,
        data=data,
    )


def note_data(record: NoteRecord) -> NoteData:
    rights = record.permissions
    return NoteData(
        note_id=record.id,
        title=record.title,
        lead_id=record.lead_id,
        created_by=record.created_by,
        updated_by=record.updated_by,
        version=record.version,
        created_at=record.created_at,
        last_modified=record.last_modified,
        permissions=PermissionsData(
            can_view=list(rights.can_view),
            can_edit=list(rights.can_edit),
            can_delete=list(rights.can_delete),
        ),
    )


def note_updated(record: NoteRecord, content: dict[str, Any] | None) -> EventMessage:
    """`content`: the sanitised ProseMirror JSON, when the content changed."""
    data = NoteUpdatedData(note=note_data(record), text=record.content_text, content=content)
    return message("note.updated", record.id, data)


def message_of(event: NoteEvent) -> EventMessage | None:
    """The message of an event that leaves the process (not `note.updated`: debounced by
    its sender from `NoteUpdated` and `ContentChanged`), or None."""
    note_id = event.note_id
    match event:
        case NoteCreated(record=record, by=by):
            return message(
                "note.created", note_id, NoteCreatedData(note=note_data(record), by=by.user_id)
            )
        case NoteDeleted(remote=False, record=record, permanent=permanent):
            title = record.title if record is not None else None
            deleted = NoteDeletedData(note_id=note_id, title=title, permanent=permanent)
            return message("note.deleted", note_id, deleted)
        case NoteRestored(remote=False, record=record, by=by) if record is not None:
            by_id = by.user_id if by is not None else record.created_by
            restored = NoteRestoredData(note=note_data(record), by=by_id)
            return message("note.restored", note_id, restored)
        case PermissionsChanged(remote=False):
            return message("note.permissions_changed", note_id, NoteIdData(note_id=note_id))
        case NoteShared(user_ids=user_ids, by=by):
            data = NoteSharedData(note_id=note_id, user_ids=list(user_ids), by=by.user_id)
            return message("note.shared", note_id, data)
        case VersionTaken(version=v):
            return message(
                "version.created",
                note_id,
                VersionCreatedData(
                    note_id=note_id,
                    version=v.number,
                    label=v.label,
                    automatic=v.automatic,
                    restored_from=v.restored_from,
                    created_by=v.created_by,
                    authors=list(v.authors),
                    size=v.size,
                    created_at=v.created_at,
                ),
            )
        case SessionStarted(session_id=session_id):
            # every instance that joins the session announces it (`SessionService`): one
            # id per session, so webhooks store one delivery and AMQP consumers dedupe
            return message(
                "session.started",
                note_id,
                SessionStartedData(note_id=note_id, session_id=session_id),
                event_id=f"evt_session_started_{session_id}",
            )
        case SessionEnded(session=s):
            return message(
                "session.ended",
                note_id,
                SessionEndedData(
                    note_id=note_id,
                    session_id=s.id,
                    started_at=s.started_at,
                    ended_at=s.ended_at,
                    updates=s.updates,
                    bytes=s.bytes,
                    participants=list(s.participants),
                ),
            )
        case Mention(user_ids=user_ids, by=by):
            mentioned = MentionCreatedData(note_id=note_id, user_ids=list(user_ids), by=by)
            return message("mention.created", note_id, mentioned)
        case NotificationCreated(record=n):
            created = NotificationCreatedData(
                notification_id=n.id,
                user_id=n.user_id,
                type=n.type,
                category=n.category,
                title=n.title,
                message=n.message,
                note_id=n.note_id,
                actor_id=n.actor_id,
                created_at=n.created_at,
            )
            return message("notification.created", n.note_id, created)
    return None
