"""Group commit: the appends of several docs in one transaction, on every backend, and the
embedded bus that batches the rooms of one event-loop turn into it."""

from __future__ import annotations

import asyncio

import pytest

from syncd.bus import LocalBus
from syncd.room import DocGone
from syncd.storage import NoteNotFound, Store


async def test_append_many_writes_every_docs_updates_in_one_go(store: Store) -> None:
    for note_id in ("a", "b"):
        await store.create_note(note_id=note_id, title="t", created_by="u")
    await store.append_many([("a", [b"a1", b"a2"]), ("b", [b"b1"])])
    assert [data for _, data in await store.read_updates("a")] == [b"a1", b"a2"]
    assert [data for _, data in await store.read_updates("b")] == [b"b1"]


async def test_append_many_writes_nothing_when_a_note_is_missing(store: Store) -> None:
    await store.create_note(note_id="a", title="t", created_by="u")
    with pytest.raises(NoteNotFound):
        await store.append_many([("a", [b"a1"]), ("gone", [b"x"])])
    assert await store.read_updates("a") == []


async def test_the_local_bus_commits_one_turns_appends_together_and_isolates_a_gone_doc(
    store: Store,
) -> None:
    for note_id in ("a", "b"):
        await store.create_note(note_id=note_id, title="t", created_by="u")
    bus = LocalBus(store)
    results = await asyncio.gather(
        bus.append("a", [b"a1"]),
        bus.append("gone", [b"x"]),
        bus.append("b", [b"b1"]),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], DocGone)
    assert [data for _, data in await store.read_updates("a")] == [b"a1"]
    assert [data for _, data in await store.read_updates("b")] == [b"b1"]
