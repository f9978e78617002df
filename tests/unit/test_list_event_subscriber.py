"""The list events' subscriber on a real events bus, its emitter faked (one layer): who
hears what when a note is created, renamed, re-shared and deleted, in publish order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from syncd.auth import Principal
from syncd.services.events import EventBus, NoteCreated, NoteDeleted, NoteUpdated
from syncd.storage import NoteMetadata, NoteRecord, Permissions
from syncd.transport.list_events import ListEvents

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
PLAN = NoteRecord(
    id="n1",
    title="Plan",
    lead_id=None,
    created_by="ann",
    updated_by=None,
    permissions=Permissions(can_view=("bob",)),
    metadata=NoteMetadata(),
    content_text="",
    version=1,
    created_at=NOW,
    last_modified=NOW,
)
ANN = Principal("ann", "Ann", None, (), 0.0, None)


class Sockets:
    """Records every emit; one user's emits fail, as a broken Redis publish would."""

    def __init__(self, failing: str = "") -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.failing = failing

    async def emit_to_user(self, user_id: str, event: str, data: dict[str, Any]) -> None:
        if user_id == self.failing:
            raise ConnectionError("redis is gone")
        self.sent.append((user_id, event, data))

    def heard(self, user_id: str) -> list[tuple[str, object]]:
        return [(ev, data.get("title", data["id"])) for to, ev, data in self.sent if to == user_id]


def _shape(record: NoteRecord) -> dict[str, Any]:
    return {"id": record.id, "title": record.title}


async def _run(sockets: Sockets, *events: NoteCreated | NoteUpdated | NoteDeleted) -> None:
    lists = ListEvents(sockets, _shape)
    async with EventBus() as bus:
        for kind in (NoteCreated, NoteUpdated, NoteDeleted):
            bus.subscribe(kind, lists.note_changed, queued=True)
        for event in events:
            await bus.publish(event)
        await bus.drain()


async def test_viewers_hear_each_change_and_a_user_who_lost_the_right_hears_a_deletion() -> None:
    sockets = Sockets()
    renamed = replace(PLAN, title="Plan B")
    reshared = replace(renamed, permissions=Permissions(can_edit=("eve",)))
    await _run(
        sockets,
        NoteCreated("n1", PLAN, ANN),
        NoteUpdated("n1", renamed, PLAN),
        NoteUpdated("n1", reshared, renamed),
        NoteDeleted("n1", record=reshared),
    )
    assert sockets.heard("ann") == [
        ("note:created", "Plan"),
        ("note:updated", "Plan B"),
        ("note:updated", "Plan B"),
        ("note:deleted", "n1"),
    ]
    assert sockets.heard("bob") == [
        ("note:created", "Plan"),
        ("note:updated", "Plan B"),
        ("note:deleted", "n1"),  # dropped from the note: gone from Bob's list
    ]
    assert sockets.heard("eve") == [("note:updated", "Plan B"), ("note:deleted", "n1")]


async def test_a_deletion_relayed_from_another_instance_is_not_sent_again() -> None:
    sockets = Sockets()
    await _run(sockets, NoteDeleted("n1", remote=True))
    assert sockets.sent == []


async def test_one_failing_emit_does_not_keep_the_others_from_their_event() -> None:
    sockets = Sockets(failing="ann")
    await _run(sockets, NoteCreated("n1", PLAN, ANN))
    assert sockets.heard("bob") == [("note:created", "Plan")]
