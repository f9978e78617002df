"""The event catalogue: each typed event that leaves the process becomes the message of its
type, in camelCase with ISO 8601 times, and parses back with the model of its type."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from syncd.api.models.events import WEBHOOK_MESSAGES
from syncd.auth import Principal
from syncd.services.events import (
    NoteCreated,
    NoteDeleted,
    NoteRestored,
    NoteShared,
    PermissionsChanged,
    SessionEnded,
    SessionStarted,
    UserJoined,
    VersionTaken,
)
from syncd.services.events.kinds import Mention, NoteEvent, NotificationCreated
from syncd.services.events.payloads import (
    DATA_MODELS,
    EVENT_TYPES,
    WEBHOOK_EVENT_TYPES,
    EventMessage,
    message_of,
    note_updated,
)
from syncd.storage import NoteRecord, NotificationRecord
from syncd.storage.records import NoteMetadata, Permissions
from syncd.storage.sessions import SessionRecord
from syncd.storage.versions import VersionRecord

AT = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)
RECORD = NoteRecord(
    id="n1",
    title="Call notes",
    lead_id="lead-7",
    created_by="alice",
    updated_by=None,
    permissions=Permissions(can_view=("alice", "bob"), can_edit=("alice",), can_delete=()),
    metadata=NoteMetadata(),
    content_text="hello",
    version=3,
    created_at=AT,
    last_modified=AT,
)
ALICE = Principal("alice", None, None, (), 0.0, None)
SESSION = SessionRecord("s1", "n1", False, AT, AT, AT, 4, 120, ("alice", "bob"))
NOTIFICATION = NotificationRecord(
    "nt1",
    "bob",
    "mention",
    "mention",
    "Alice mentioned you",
    "",
    {},
    "n1",
    "alice",
    False,
    None,
    AT,
)
VERSION = VersionRecord("n1", 2, None, True, None, "alice", ("alice",), 10, AT, b"")

CASES: list[tuple[NoteEvent, str]] = [
    (NoteCreated("n1", RECORD, ALICE), "note.created"),
    (NoteDeleted("n1", record=RECORD), "note.deleted"),
    (NoteRestored("n1", record=RECORD, by=ALICE), "note.restored"),
    (PermissionsChanged("n1"), "note.permissions_changed"),
    (NoteShared("n1", RECORD, ("bob",), ALICE), "note.shared"),
    (VersionTaken("n1", VERSION), "version.created"),
    (SessionStarted("n1", "s1"), "session.started"),
    (SessionEnded("n1", SESSION), "session.ended"),
    (Mention("n1", ("bob",), "alice"), "mention.created"),
    (NotificationCreated("n1", NOTIFICATION), "notification.created"),
]


@pytest.mark.parametrize(("event", "type_"), CASES, ids=[t for _, t in CASES])
def test_each_event_has_its_message(event: NoteEvent, type_: str) -> None:
    message = message_of(event)
    assert message is not None
    assert message.type == type_
    body = json.loads(message.body())
    assert body["noteId"] == "n1"
    assert body["id"].startswith("evt_")
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    parsed = EventMessage.parse(message.body())
    assert isinstance(parsed.data, DATA_MODELS[type_])
    assert parsed == message
    if type_ in WEBHOOK_MESSAGES:  # the body is what the OpenAPI `webhooks` section says
        documented = WEBHOOK_MESSAGES[type_].model_validate_json(message.body())
        assert documented.model_dump(mode="json", by_alias=True) == body


def test_a_deletion_says_whether_it_was_permanent_and_a_restore_who_did_it() -> None:
    trashed = message_of(NoteDeleted("n1", record=RECORD))
    purged = message_of(NoteDeleted("n1", record=RECORD, permanent=True))
    restored = message_of(NoteRestored("n1", record=RECORD, by=ALICE))
    assert trashed is not None and purged is not None and restored is not None
    assert json.loads(trashed.body())["data"] == {
        "noteId": "n1",
        "title": "Call notes",
        "permanent": False,
    }
    assert json.loads(purged.body())["data"]["permanent"] is True
    data = json.loads(restored.body())["data"]
    assert data["by"] == "alice" and data["note"]["title"] == "Call notes"
    # relayed copies from another instance stay internal (the origin sent the message)
    assert message_of(NoteRestored("n1", remote=True)) is None


def test_every_type_is_covered() -> None:
    covered = {t for _, t in CASES} | {"note.updated"}
    assert covered == set(EVENT_TYPES) == set(DATA_MODELS)
    # webhooks carry every note event; a user's notification goes to AMQP only
    assert set(EVENT_TYPES) - set(WEBHOOK_EVENT_TYPES) == {"notification.created"}


def test_a_session_start_keeps_one_id_whoever_announces_it() -> None:
    first = message_of(SessionStarted("n1", "s1"))
    again = message_of(SessionStarted("n1", "s1"))
    assert first is not None and again is not None and first.id == again.id


def test_a_notification_about_no_note_has_no_note_id() -> None:
    about_nothing = NotificationRecord(
        "nt2", "bob", "info", "general", "Hi", "", {}, None, "svc", False, None, AT
    )
    message = message_of(NotificationCreated("", about_nothing))
    assert message is not None
    body = json.loads(message.body())
    assert body["noteId"] is None and body["data"]["userId"] == "bob"


def test_remote_copies_and_internal_events_have_no_message() -> None:
    assert message_of(PermissionsChanged("n1", remote=True)) is None
    assert message_of(NoteDeleted("n1", remote=True)) is None
    assert message_of(UserJoined("n1", "bob", None, "ws")) is None


def test_note_updated_carries_row_text_and_content_in_camel_case() -> None:
    content = {"type": "doc", "content": [{"type": "paragraph"}]}
    body = json.loads(note_updated(RECORD, content).body())
    assert body["type"] == "note.updated"
    note = body["data"]["note"]
    assert note["leadId"] == "lead-7"
    assert note["permissions"]["canView"] == ["alice", "bob"]
    assert note["lastModified"] == "2026-12-05T12:00:00Z"
    assert body["data"]["text"] == "hello"
    assert body["data"]["content"] == content


def test_a_body_of_another_shape_is_refused() -> None:
    with pytest.raises(ValueError):
        EventMessage.parse('{"type": "note.bogus", "data": {}}')
    with pytest.raises(ValueError):
        EventMessage.parse(
            '{"id": "e", "type": "note.shared", "timestamp": "2026-01-01T00:00:00Z",'
            ' "noteId": "n", "data": {"noteId": "n"}}'
        )
