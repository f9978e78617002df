"""A note update over real storage (SQLite) and real rooms: the row is read once, the
rights are decided on it, and what happened is published in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from syncd.auth import TokenVerifier, mint_token
from syncd.bus import LocalBus
from syncd.room import RoomRegistry
from syncd.services.events import (
    ContentEdited,
    EventBus,
    NoteEvent,
    NoteShared,
    NoteUpdated,
    PermissionsChanged,
)
from syncd.services.notes import Forbidden, NoteNotFound, NoteService
from syncd.storage import NoteMetadata, Permissions, Store, open_store

SECRET = "s" * 32


def count_reads(store: Store, reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Note in `reads` every read of a note's row or rights the real store serves."""
    for name in ("get_note", "get_access"):
        method = getattr(store, name)

        async def counted(*args: Any, _method: Any = method, _name: str = name) -> Any:
            reads.append(_name)
            return await _method(*args)

        monkeypatch.setattr(store, name, counted)


@pytest.fixture
async def service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[NoteService, list[str], list[NoteEvent]]]:
    async with open_store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        reads: list[str] = []
        count_reads(store, reads, monkeypatch)
        events = EventBus()
        seen: list[NoteEvent] = []
        for kind in (NoteUpdated, NoteShared, PermissionsChanged, ContentEdited):
            events.subscribe(kind, seen.append)
        async with RoomRegistry(LocalBus(store)) as rooms:
            yield NoteService(store, rooms, TokenVerifier(SECRET), events), reads, seen


def principal(user: str) -> Any:
    return TokenVerifier(SECRET).verify(mint_token(SECRET, user))


CONTENT = {"type": "doc", "content": [{"type": "paragraph", "content": [
    {"type": "text", "text": "hello"}]}]}  # fmt: skip


async def test_an_update_reads_the_note_once_and_publishes_in_order(
    service: tuple[NoteService, list[str], list[NoteEvent]],
) -> None:
    notes, reads, seen = service
    owner = principal("ann")
    await notes.create(
        owner,
        title="t",
        lead_id=None,
        permissions=Permissions(),
        metadata=NoteMetadata(),
        content_json=None,
        note_id="n1",
    )
    reads.clear()
    view = await notes.update(
        owner,
        "n1",
        title="new",
        permissions=Permissions(can_view=("bob",)),
        content_json=CONTENT,
    )
    assert reads == ["get_note"]
    assert view.record.title == "new" and view.text == "hello"
    assert [type(e) for e in seen] == [NoteUpdated, NoteShared, PermissionsChanged, ContentEdited]
    assert isinstance(seen[1], NoteShared) and seen[1].user_ids == ("bob",)


async def test_rights_are_decided_on_the_row_read(
    service: tuple[NoteService, list[str], list[NoteEvent]],
) -> None:
    notes, _, seen = service
    await notes.create(
        principal("ann"),
        title="t",
        lead_id=None,
        permissions=Permissions(can_view=("viewer",), can_edit=("editor",)),
        metadata=NoteMetadata(),
        content_json=None,
        note_id="n1",
    )
    seen.clear()
    with pytest.raises(Forbidden, match="edit"):  # no right at all: 403, as DESIGN.md says
        await notes.update(principal("stranger"), "n1", title="x")
    with pytest.raises(Forbidden, match="edit"):
        await notes.update(principal("viewer"), "n1", title="x")
    with pytest.raises(Forbidden, match="owner"):
        await notes.update(principal("editor"), "n1", permissions=Permissions())
    with pytest.raises(NoteNotFound):
        await notes.update(principal("ann"), "missing", title="x")
    assert seen == []
    await notes.update(principal("editor"), "n1", title="edited")
    assert [type(e) for e in seen] == [NoteUpdated]
