"""The webhook messages as the OpenAPI document's `webhooks` section lists them.

One model per event type: the `EventMessage` envelope (`syncd.services.events.payloads`)
with `type` fixed to that type and `data` the type's own model (`DATA_MODELS`), so a CRM
generates a typed receiver from `/openapi.json`. The payload models themselves live with
the event catalogue (AMQP sends the same ones); this module only names them per type.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from syncd.services.events.payloads import (
    MentionCreatedData,
    NoteCreatedData,
    NoteDeletedData,
    NoteIdData,
    NoteRestoredData,
    NoteSharedData,
    NoteUpdatedData,
    SessionEndedData,
    SessionStartedData,
    VersionCreatedData,
    WebhookTestData,
)

__all__ = ["WEBHOOK_MESSAGES", "WEBHOOK_TEST"]


class _Message(BaseModel):
    """The envelope's fields every message has (camelCase on the wire)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    id: str = Field(
        description="unique per event, stable across attempts and replays; also the "
        "`webhook-id` header: drop a message whose id was seen already"
    )
    timestamp: datetime = Field(description="when the event happened (ISO 8601, UTC)")


class _NoteMessage(_Message):
    note_id: str = Field(description="the note: order and route messages by it")


class NoteCreatedMessage(_NoteMessage):
    type: Literal["note.created"]
    data: NoteCreatedData


class NoteUpdatedMessage(_NoteMessage):
    type: Literal["note.updated"]
    data: NoteUpdatedData


class NoteDeletedMessage(_NoteMessage):
    type: Literal["note.deleted"]
    data: NoteDeletedData


class NoteRestoredMessage(_NoteMessage):
    type: Literal["note.restored"]
    data: NoteRestoredData


class PermissionsChangedMessage(_NoteMessage):
    type: Literal["note.permissions_changed"]
    data: NoteIdData


class NoteSharedMessage(_NoteMessage):
    type: Literal["note.shared"]
    data: NoteSharedData


class VersionCreatedMessage(_NoteMessage):
    type: Literal["version.created"]
    data: VersionCreatedData


class SessionStartedMessage(_NoteMessage):
    type: Literal["session.started"]
    data: SessionStartedData


class SessionEndedMessage(_NoteMessage):
    type: Literal["session.ended"]
    data: SessionEndedData


class MentionCreatedMessage(_NoteMessage):
    type: Literal["mention.created"]
    data: MentionCreatedData


class WebhookTestMessage(_Message):
    """Sent on request (`POST /api/webhooks/:id/test`) whatever events the endpoint wants."""

    type: Literal["webhook.test"]
    data: WebhookTestData


_MODELS: tuple[type[_Message], ...] = (
    NoteCreatedMessage,
    NoteUpdatedMessage,
    NoteDeletedMessage,
    NoteRestoredMessage,
    PermissionsChangedMessage,
    NoteSharedMessage,
    VersionCreatedMessage,
    SessionStartedMessage,
    SessionEndedMessage,
    MentionCreatedMessage,
)


def _type_of(model: type[_Message]) -> str:
    (value,) = model.model_fields["type"].annotation.__args__  # type: ignore[union-attr]
    return str(value)


#: the model of each event type a webhook endpoint may subscribe to
WEBHOOK_MESSAGES: dict[str, type[BaseModel]] = {_type_of(m): m for m in _MODELS}
#: the test event's
WEBHOOK_TEST: tuple[str, type[BaseModel]] = ("webhook.test", WebhookTestMessage)
