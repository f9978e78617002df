"""The pass scheduler with a backend whose group append is awaited (`append_group`, as
Redis's): the rooms with a pass due in one turn go to it in one call made from one task,
each pass is sent only once that call says its entry is durable, a room whose entry
failed retries alone in its own task, and a room never has two passes in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from syncd.protocol import SyncUpdate
from tests.support.typed import typed_updates
from tests.unit.test_room import text_of, typed
from tests.unit.test_room_passes import RetryingLog, rooms_of


class AwaitedGroupLog(RetryingLog):
    """A `MemoryLog` with an awaited group append (`append_group`) held by `gate`."""

    groups_appends = True

    def __init__(self) -> None:
        super().__init__()
        #: `append_group` calls started and not answered yet
        self.in_flight = 0

    async def append_group(
        self, batches: Sequence[tuple[str, Sequence[bytes]]]
    ) -> dict[str, BaseException | None]:
        self.groups.append([doc_id for doc_id, _ in batches])
        self.in_flight += 1
        try:
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.in_flight -= 1
        outcome: dict[str, BaseException | None] = {}
        for doc_id, updates in batches:
            if doc_id in self.failing:
                outcome[doc_id] = OSError("disk says no")
                continue
            self.appended.extend(updates)
            self.by_doc.setdefault(doc_id, []).extend(updates)
            outcome[doc_id] = None
        return outcome


async def _turns(count: int = 20) -> None:
    """Let the loop run `count` turns (what must not happen does not happen in them)."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_a_turns_rooms_go_to_one_group_append_from_one_task_and_wait_for_it() -> None:
    log = AwaitedGroupLog()
    log.gate = asyncio.Event()
    rooms = rooms_of(log, 5)
    before = len(asyncio.all_tasks())
    for i, (room, writer, _) in enumerate(rooms):
        room.handle(writer, SyncUpdate(typed(f"k{i}", i + 1)))
    await _turns()
    assert log.groups == [[f"n{i}" for i in range(5)]]
    # one task for the turn's group, not one per room
    assert len(asyncio.all_tasks()) == before + 1
    # nothing is sent before it is durable
    assert all(channel.updates() == [] for _, _, channel in rooms)
    assert not any(room.idle for room, _, _ in rooms)
    log.gate.set()
    for room, _, _ in rooms:
        await asyncio.wait_for(room.drain(), 5)
    for i, (room, _, channel) in enumerate(rooms):
        assert text_of(channel.updates()) == f"k{i}"
        assert room.idle and room.durable
    assert log.attempts == {}  # no room appended on its own


async def test_a_room_whose_entry_failed_retries_alone_and_the_others_are_delivered() -> None:
    log = AwaitedGroupLog()
    (bad, bad_writer, bad_reader), *good = rooms_of(log, 3)
    log.failing.add(bad.doc_id)
    bad.handle(bad_writer, SyncUpdate(typed("lost?", 9)))
    for i, (room, writer, _) in enumerate(good):
        room.handle(writer, SyncUpdate(typed(f"a{i}", i + 1)))
    for room, _, _ in good:
        await asyncio.wait_for(room.drain(), 5)
    assert log.groups == [["n0", "n1", "n2"]]
    for i, (_, _, channel) in enumerate(good):
        assert text_of(channel.updates()) == f"a{i}"
    # the good rooms' next pass goes by group again while the bad one retries on its own
    for i, (room, writer, _) in enumerate(good):
        room.handle(writer, SyncUpdate(typed(f"b{i}", i + 10)))
    for room, _, _ in good:
        await asyncio.wait_for(room.drain(), 5)
    assert log.groups[1:] == [["n1", "n2"]]
    for _, _, channel in good:
        assert len(channel.updates()) == 2
    await asyncio.wait_for(log.retried.wait(), 5)
    assert set(log.attempts) == {bad.doc_id}
    assert bad_reader.updates() == [] and not bad.durable
    log.failing.clear()
    await asyncio.wait_for(bad.drain(), 10)
    assert text_of(bad_reader.updates()) == "lost?" and bad.durable
    assert text_of(log.by_doc[bad.doc_id]) == "lost?"


async def test_a_whole_group_append_raising_sends_each_room_to_its_own_retry() -> None:
    class Raising(AwaitedGroupLog):
        async def append_group(
            self, batches: Sequence[tuple[str, Sequence[bytes]]]
        ) -> dict[str, BaseException | None]:
            self.groups.append([doc_id for doc_id, _ in batches])
            raise ConnectionError("connection lost")

    log = Raising()
    rooms = rooms_of(log, 2)
    for i, (room, writer, _) in enumerate(rooms):
        room.handle(writer, SyncUpdate(typed(f"k{i}", i + 1)))
    for room, _, _ in rooms:
        await asyncio.wait_for(room.drain(), 5)
    assert log.groups == [["n0", "n1"]]
    assert log.attempts == {"n0": 1, "n1": 1}
    for i, (_, _, channel) in enumerate(rooms):
        assert text_of(channel.updates()) == f"k{i}"


async def test_a_room_takes_no_second_pass_while_its_group_append_is_in_flight() -> None:
    """What arrives meanwhile waits for the next turn after it: appends and sends keep
    their order, and one group append per turn carries it."""
    log = AwaitedGroupLog()
    log.gate = asyncio.Event()
    ((room, writer, channel),) = rooms_of(log, 1)
    one, two, three = typed_updates(1, "123")
    room.handle(writer, SyncUpdate(one))
    await _turns()
    room.handle(writer, SyncUpdate(two))
    room.handle(writer, SyncUpdate(three))
    await _turns()
    assert log.groups == [["n0"]] and log.in_flight == 1
    assert channel.updates() == []
    log.gate.set()
    await asyncio.wait_for(room.drain(), 5)
    assert log.groups == [["n0"], ["n0"]]
    assert log.in_flight == 0
    assert [text_of(log.by_doc["n0"][:n]) for n in (1, 2)] == ["1", "123"]
    sent = channel.updates()
    assert len(sent) == 2 and text_of(sent[:1]) == "1" and text_of(sent) == "123"
    assert room.idle and room.durable


class LockedNowLog(AwaitedGroupLog):
    """The embedded bus's shape: a group commit made without awaiting (`append_now`),
    which answers False while the write lock is held, and `append_group` to wait."""

    groups_appends = False
    appends_now = True

    def append_now(self, batches: Sequence[tuple[str, Sequence[bytes]]]) -> bool:
        return False


async def test_a_group_commit_that_cannot_run_now_waits_in_one_group_not_a_task_per_room() -> None:
    log = LockedNowLog()
    log.gate = asyncio.Event()
    rooms = rooms_of(log, 5)
    before = len(asyncio.all_tasks())
    for i, (room, writer, _) in enumerate(rooms):
        room.handle(writer, SyncUpdate(typed(f"k{i}", i + 1)))
    await _turns()
    assert len(asyncio.all_tasks()) - before == 1 and log.in_flight == 1
    assert log.groups == [[f"n{i}" for i in range(5)]] and log.attempts == {}
    assert all(channel.updates() == [] for _, _, channel in rooms)
    log.gate.set()
    for room, _, _ in rooms:
        await asyncio.wait_for(room.drain(), 5)
    for i, (room, _, channel) in enumerate(rooms):
        assert text_of(channel.updates()) == f"k{i}" and room.idle
