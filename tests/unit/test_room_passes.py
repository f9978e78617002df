"""The pass scheduler (`syncd.room.passes`): the rooms dirtied in one loop turn share one
group commit made without awaiting, each pass is sent only after that commit returned,
and whatever cannot be done without awaiting falls back to the room's own task, so that a
room whose append fails keeps retrying without holding back any other room."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from syncd.protocol import SyncUpdate
from syncd.room import Peer, Room
from tests.unit.test_room import MemoryChannel, MemoryLog, peer, text_of, typed


class RetryingLog(MemoryLog):
    """A `MemoryLog` whose `append` (a room's own retry) fails for the docs in `failing`,
    counting each doc's attempts: the base of the group-commit fakes here and in
    `test_room_group_appends`."""

    def __init__(self) -> None:
        super().__init__()
        #: the doc ids of every group commit made, in order
        self.groups: list[list[str]] = []
        #: docs whose appends fail, in a group and one by one, until removed
        self.failing: set[str] = set()
        #: `append` calls per doc (the rooms' own retries)
        self.attempts: dict[str, int] = {}
        self.by_doc: dict[str, list[bytes]] = {}
        #: set once some doc's `append` was called a second time (a retry)
        self.retried = asyncio.Event()

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        self.attempts[doc_id] = self.attempts.get(doc_id, 0) + 1
        if self.attempts[doc_id] >= 2:
            self.retried.set()
        if doc_id in self.failing:
            raise OSError("disk says no")
        await super().append(doc_id, updates)
        self.by_doc.setdefault(doc_id, []).extend(updates)


class GroupLog(RetryingLog):
    """A `MemoryLog` with the embedded bus's group commit (`append_now`)."""

    appends_now = True

    def __init__(self) -> None:
        super().__init__()
        #: `append_now` answers False (the write lock is taken): rooms await `append`
        self.busy = False

    def append_now(self, batches: Sequence[tuple[str, Sequence[bytes]]]) -> bool:
        if self.busy:
            return False
        if any(doc_id in self.failing for doc_id, _ in batches):
            raise OSError("disk says no")  # nothing written, as a rolled back commit
        self.groups.append([doc_id for doc_id, _ in batches])
        for doc_id, updates in batches:
            self.appended.extend(updates)
            self.by_doc.setdefault(doc_id, []).extend(updates)
        return True


def rooms_of(log: MemoryLog, count: int) -> list[tuple[Room, Peer, MemoryChannel]]:
    """`count` rooms of a writer and a reader each; returns (room, writer, reader channel)."""
    made = []
    for r in range(count):
        room = Room(f"n{r}", log)
        (writer, _), (reader, channel) = peer(), peer()
        room.join(writer)
        room.join(reader)
        made.append((room, writer, channel))
    return made


async def _settle(condition: object, *, turns: int = 2000) -> None:
    """Run loop turns until `condition()` holds (bounded: fails after `turns`)."""
    for _ in range(turns):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0)
    raise AssertionError("not reached in time")


async def test_the_rooms_dirtied_in_one_turn_share_one_group_commit_and_no_task() -> None:
    log = GroupLog()
    rooms = rooms_of(log, 3)
    before = len(asyncio.all_tasks())
    for i, (room, writer, _) in enumerate(rooms):
        room.handle(writer, SyncUpdate(typed(f"k{i}", i + 1)))
    # no task per room per pass: the scheduler is one `call_soon` callback
    assert len(asyncio.all_tasks()) == before
    for room, _, _ in rooms:
        await asyncio.wait_for(room.drain(), 5)
    assert log.groups == [["n0", "n1", "n2"]]
    for i, (room, _, channel) in enumerate(rooms):
        assert text_of(channel.updates()) == f"k{i}"
        assert room.idle and room.durable


async def test_drain_waits_for_a_pass_the_scheduler_has_not_run_yet() -> None:
    log = GroupLog()
    ((room, writer, channel),) = rooms_of(log, 1)
    room.handle(writer, SyncUpdate(typed("x", 1)))
    assert not room.idle
    await asyncio.wait_for(room.drain(), 5)
    assert text_of(channel.updates()) == "x" and room.idle


async def test_when_the_group_commit_cannot_run_now_each_room_appends_before_it_sends() -> None:
    log = GroupLog()
    log.busy = True
    log.gate = asyncio.Event()
    rooms = rooms_of(log, 2)
    for i, (room, writer, _) in enumerate(rooms):
        room.handle(writer, SyncUpdate(typed(f"k{i}", i + 1)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert log.appended == []
    assert all(channel.updates() == [] for _, _, channel in rooms)  # not before it is stored
    log.gate.set()
    for room, _, _ in rooms:
        await asyncio.wait_for(room.drain(), 5)
    assert log.groups == []
    for i, (_, _, channel) in enumerate(rooms):
        assert text_of(channel.updates()) == f"k{i}"


async def test_a_room_whose_append_fails_retries_alone_and_other_rooms_keep_going() -> None:
    """The group commit fails for all when one doc fails; every room then appends on its
    own, the failing one retrying with backoff, sending nothing until it is stored, while
    the others deliver this pass and their later ones (by group commit again)."""
    log = GroupLog()
    (bad, bad_writer, bad_reader), *good = rooms_of(log, 3)
    log.failing.add(bad.doc_id)
    bad.handle(bad_writer, SyncUpdate(typed("lost?", 9)))
    for i, (room, writer, _) in enumerate(good):
        room.handle(writer, SyncUpdate(typed(f"a{i}", i + 1)))
    for room, _, _ in good:
        await asyncio.wait_for(room.drain(), 5)
    for i, (_, _, channel) in enumerate(good):
        assert text_of(channel.updates()) == f"a{i}"
    # a second pass of the good rooms goes out by group commit while the bad one retries
    for i, (room, writer, _) in enumerate(good):
        room.handle(writer, SyncUpdate(typed(f"b{i}", i + 10)))
    for room, _, _ in good:
        await asyncio.wait_for(room.drain(), 5)
    assert [g for g in log.groups if g] == [["n1", "n2"]]
    for _, _, channel in good:
        assert len(channel.updates()) == 2
    await asyncio.wait_for(log.retried.wait(), 5)  # it retries (after its backoff)
    assert log.attempts[bad.doc_id] >= 2
    assert bad_reader.updates() == [] and not bad.durable
    log.failing.clear()
    await asyncio.wait_for(bad.drain(), 10)
    assert text_of(bad_reader.updates()) == "lost?" and bad.durable
    assert text_of(log.by_doc[bad.doc_id]) == "lost?"


async def test_a_pass_a_paused_socket_did_not_take_is_finished_before_the_next_one() -> None:
    """The sends left of a pass go on in the room's task; a later pass waits for them, so
    a peer gets the passes in order."""

    class Gated(MemoryChannel):
        def __init__(self) -> None:
            super().__init__()
            self.open = asyncio.Event()

        def send_now(self, frame: bytes) -> bool:
            return False

        def send_all_now(self, frames: tuple[bytes, ...]) -> bool:
            return False

        async def send(self, frame: bytes) -> None:
            await self.open.wait()
            await super().send(frame)

    log = GroupLog()
    room = Room("n", log)
    writer, _ = peer()
    gated = Gated()
    slow = Peer(channel=gated, user_id="s", can_write=True)
    reader, reader_channel = peer()
    for p in (writer, slow, reader):
        room.join(p)
    room.handle(writer, SyncUpdate(typed("1", 1)))
    await _settle(lambda: len(reader_channel.updates()) == 1)
    room.handle(writer, SyncUpdate(typed("2", 2)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert gated.frames == []
    gated.open.set()
    await asyncio.wait_for(room.drain(), 5)
    assert gated.updates() == reader_channel.updates()
    assert len(gated.updates()) == 2 and text_of(gated.updates()[:1]) == "1"


async def test_a_backend_without_group_commit_keeps_a_task_per_room() -> None:
    """Redis (and any backend with no `append_now`): the room's own task, as before."""
    log = MemoryLog()
    room = Room("n", log)
    (writer, _), (reader, channel) = peer(), peer()
    room.join(writer)
    room.join(reader)
    before = len(asyncio.all_tasks())
    room.handle(writer, SyncUpdate(typed("x", 1)))
    assert len(asyncio.all_tasks()) == before + 1
    await asyncio.wait_for(room.drain(), 5)
    assert text_of(channel.updates()) == "x"
