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


async def test_rooms_over_the_local_bus_deliver_what_is_stored_and_a_gone_note_closes_alone(
    store: Store,
) -> None:
    """Rooms of one turn (the pass scheduler's group commit on a SQLite file, each room's
    own task on Postgres): every live room's keystroke is stored, then delivered; the
    room of a note deleted meanwhile fails the group, and alone closes its peers 4404."""
    from syncd.protocol import SyncUpdate
    from syncd.room import Room
    from tests.unit.test_room import peer, text_of, typed

    for note_id in ("a", "b"):
        await store.create_note(note_id=note_id, title="t", created_by="u")
    bus = LocalBus(store)
    rooms = {}
    for note_id in ("a", "gone", "b"):
        room = Room(note_id, bus)
        room.load([])
        (writer, _), (reader, channel) = peer(), peer()
        room.join(writer)
        room.join(reader)
        rooms[note_id] = (room, writer, channel)
    for i, (room, writer, _) in enumerate(rooms.values()):
        room.handle(writer, SyncUpdate(typed(f"k{i}", i + 1)))
    for room, _, _ in rooms.values():
        await asyncio.wait_for(room.drain(), 10)
    for note_id, i in (("a", 0), ("b", 2)):
        room, _, channel = rooms[note_id]
        assert text_of(channel.updates()) == f"k{i}" and room.durable
        assert text_of([data for _, data in await store.read_updates(note_id)]) == f"k{i}"
    gone, _, gone_channel = rooms["gone"]
    assert gone.gone and gone_channel.updates() == [] and gone_channel.close_code == 4404


async def test_rooms_wait_out_a_held_write_lock_in_one_group_not_a_task_each(
    store: Store,
) -> None:
    """While the store's write lock is held (on SQLite: as by a compaction's write or a
    session write; Postgres has none and always awaits), the turn's rooms wait for their
    append in one group task: no room starts its own flush task, nothing is sent before
    it is stored, and once the lock is free every pass is stored, then delivered."""
    from syncd.protocol import SyncUpdate
    from syncd.room import Room
    from tests.unit.test_room import peer, text_of, typed

    names = [f"n{i}" for i in range(6)]
    for note_id in names:
        await store.create_note(note_id=note_id, title="t", created_by="u")
    bus = LocalBus(store)
    rooms = []
    for note_id in names:
        room = Room(note_id, bus)
        room.load([])
        (writer, _), (reader, channel) = peer(), peer()
        room.join(writer)
        room.join(reader)
        rooms.append((room, writer, channel))
    lock = store._write_lock
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        assert lock is not None
        async with lock:
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold()) if lock is not None else None
    if holder is not None:
        await asyncio.wait_for(held.wait(), 5)
    tasks_before = len(asyncio.all_tasks())
    for i, (room, writer, _) in enumerate(rooms):
        room.handle(writer, SyncUpdate(typed(f"k{i}", i + 1)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert all(room._flush_task is None for room, _, _ in rooms)
    if holder is not None:
        # one group task, and the bus's one flush task awaiting the lock
        assert len(asyncio.all_tasks()) - tasks_before == 2
        assert all(channel.updates() == [] for _, _, channel in rooms)
        for note_id in names:
            assert await store.read_updates(note_id) == []
        release.set()
        await asyncio.wait_for(holder, 5)
    for room, _, _ in rooms:
        await asyncio.wait_for(room.drain(), 10)
    for i, (room, _, channel) in enumerate(rooms):
        assert text_of(channel.updates()) == f"k{i}" and room.durable and room.idle
        stored = [data for _, data in await store.read_updates(room.doc_id)]
        assert text_of(stored) == f"k{i}"
