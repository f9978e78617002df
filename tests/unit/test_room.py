"""The room over in-memory channels and an in-memory log: merging, no echo, read-only peers,
awareness ownership, durability before fan-out, single-flight loading."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from pycrdt import Doc, Text

from syncd.protocol import (
    Auth,
    AwarenessEntry,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    encode_awareness_update,
    parse_awareness_update,
    parse_message,
)
from syncd.protocol import Awareness as AwarenessMessage
from syncd.room import Peer, Room, RoomLoadError, RoomRegistry
from syncd.room import room as room_module
from syncd.transport.lean_protocol import binary_frame
from tests.support.typed import typed_updates


class MemoryChannel:
    """A connection that records what the room sends it."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        #: what each write that went out without an await carried (one entry per write)
        self.writes: list[tuple[bytes, ...]] = []
        self.close_code: int | None = None
        self.arrived = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    async def send(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.arrived.set()

    def send_now(self, frame: bytes) -> bool:
        self.frames.append(frame)
        self.writes.append((frame,))
        self.arrived.set()
        return True

    def send_all_now(self, frames: tuple[bytes, ...]) -> bool:
        self.frames.extend(frames)
        self.writes.append(frames)
        self.arrived.set()
        return True

    async def close(self, code: int, reason: str = "") -> None:
        self.close_code = code

    def messages(self) -> list[object]:
        return [parse_message(frame) for frame in self.frames]

    def updates(self) -> list[bytes]:
        return [m.update for m in self.messages() if isinstance(m, SyncUpdate)]


class MemoryLog:
    """An in-memory `DocBackend`; `gate` holds appends to show nothing is sent before."""

    def __init__(self) -> None:
        self.appended: list[bytes] = []
        self.gate: asyncio.Event | None = None
        self.loads = 0
        self.fail_load = False
        self.compacted: list[str] = []
        self.published_awareness: list[bytes] = []
        self.defer_compaction = False

    async def load(self, doc_id: str) -> Sequence[bytes]:
        self.loads += 1
        await asyncio.sleep(0)
        if self.fail_load:
            raise OSError("storage down")
        return list(self.appended)

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.appended.extend(updates)

    async def compact(self, doc_id: str) -> bool:
        if self.defer_compaction:
            return False
        self.compacted.append(doc_id)
        return True

    def subscribe(self, doc_id: str, listener: object) -> None:
        pass

    def unsubscribe(self, doc_id: str) -> None:
        pass

    def publish_awareness(self, doc_id: str, payload: bytes) -> None:
        self.published_awareness.append(payload)


def typed(text: str, client_id: int) -> bytes:
    doc = Doc(client_id=client_id)
    doc["t"] = Text(text)
    return doc.get_update()


def text_of(updates: Sequence[bytes]) -> str:
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return str(doc.get("t", type=Text))


def peer(can_write: bool = True, user: str = "u") -> tuple[Peer, MemoryChannel]:
    channel = MemoryChannel()
    return Peer(channel=channel, user_id=user, can_write=can_write), channel


async def test_join_starts_the_stock_handshake_with_sync_step_1() -> None:
    room = Room("n", MemoryLog())
    p, _ = peer()
    frames = room.join(p)
    assert isinstance(parse_message(frames[0]), SyncStep1)


async def test_the_sync_step_1_of_a_join_follows_every_change_of_the_doc() -> None:
    """Joins on an unchanged doc share one step 1 frame; a peer's update, another
    instance's update and a server-side edit each give the next joiner the new state."""
    room = Room("n", MemoryLog())
    assert room.join(peer()[0])[0] is room.join(peer()[0])[0]
    writer, _ = peer()
    room.join(writer)

    def server_edit() -> None:
        before = room.doc.get_state()
        room.doc["t"] = Text("c")
        room.record_local(room.doc.get_update(before))

    def state_in_step1() -> bytes:
        message = parse_message(room.join(peer()[0])[0])
        assert isinstance(message, SyncStep1)
        return message.state_vector

    for change in (
        lambda: room.handle(writer, SyncUpdate(typed("a", 1))),
        lambda: room.apply_remote([typed("b", 2)]),
        server_edit,
    ):
        before = state_in_step1()
        change()
        after = state_in_step1()
        assert after != before and after == room.doc.get_state()
    await room.drain()


async def test_an_update_reaches_every_other_peer_once_and_never_its_sender() -> None:
    room = Room("n", MemoryLog())
    (a, ca), (b, cb), (c, cc) = peer(), peer(), peer()
    for p in (a, b, c):
        room.join(p)
    room.handle(a, SyncUpdate(typed("hi", 1)))
    await room.drain()
    assert ca.updates() == []
    assert text_of(cb.updates()) == "hi"
    assert len(cb.updates()) == 1
    assert len(cc.updates()) == 1


async def test_updates_of_one_turn_are_merged_into_one_frame_for_every_peer() -> None:
    room = Room("n", MemoryLog())
    (a, ca), (b, cb), (reader, cr) = peer(), peer(), peer()
    for p in (a, b, reader):
        room.join(p)
    room.handle(a, SyncUpdate(typed("aaa", 1)))
    room.handle(b, SyncUpdate(typed("bbb", 2)))
    await room.drain()
    assert len(cr.updates()) == 1
    assert sorted(text_of(cr.updates())) == sorted("aaabbb")
    # Contributors get the same one frame: b's update reaches a (with a's own, which Yjs
    # ignores) and a's reaches b, each once.
    assert len(ca.updates()) == len(cb.updates()) == 1
    assert "bbb" in text_of(ca.updates()) and "aaa" in text_of(cb.updates())


async def test_nothing_is_sent_before_the_log_holds_it() -> None:
    log = MemoryLog()
    log.gate = asyncio.Event()
    room = Room("n", log)
    (a, _), (b, cb) = peer(), peer()
    room.join(a)
    room.join(b)
    room.handle(a, SyncUpdate(typed("x", 1)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert cb.updates() == [] and log.appended == []
    log.gate.set()
    await room.drain()
    assert log.appended and text_of(cb.updates()) == "x"


async def test_a_joiner_gets_step_2_only_once_its_content_is_durable() -> None:
    log = MemoryLog()
    log.gate = asyncio.Event()
    room = Room("n", log)
    a, _ = peer()
    room.join(a)
    room.handle(a, SyncUpdate(typed("x", 1)))
    waiter = asyncio.ensure_future(room.wait_durable())
    await asyncio.sleep(0)
    assert not waiter.done()
    log.gate.set()
    await asyncio.wait_for(waiter, 5)


async def test_a_read_only_peer_is_told_permission_denied_once_and_its_writes_go_nowhere() -> None:
    log = MemoryLog()
    room = Room("n", log)
    (viewer, _), (editor, ce) = peer(can_write=False), peer()
    room.join(viewer)
    room.join(editor)
    first = room.handle(viewer, SyncUpdate(typed("no", 1)))
    second = room.handle(viewer, SyncStep2(typed("no", 2)))
    await room.drain()
    assert [parse_message(f) for f in first] == [
        Auth(permission_denied=True, reason="permission denied")
    ]
    assert second == []
    assert ce.updates() == [] and log.appended == []
    assert str(room.doc.get("t", type=Text)) == ""


async def test_sync_step_1_is_answered_with_what_the_client_misses() -> None:
    room = Room("n", MemoryLog())
    room.load([typed("stored", 1)])
    p, _ = peer()
    replies = room.handle(p, SyncStep1(b"\x00"))
    (reply,) = [parse_message(f) for f in replies]
    assert isinstance(reply, SyncStep2) and text_of([reply.update]) == "stored"


async def test_an_update_pycrdt_rejects_is_a_protocol_error_and_changes_nothing() -> None:
    from syncd.protocol import ProtocolError

    room = Room("n", MemoryLog())
    a, _ = peer()
    room.join(a)
    with pytest.raises(ProtocolError):
        room.handle(a, SyncUpdate(b"\x01\x02\x03"))
    assert room.idle


def awareness(client_id: int, clock: int, state: str) -> AwarenessMessage:
    return AwarenessMessage(encode_awareness_update([AwarenessEntry(client_id, clock, state)]))


async def test_awareness_is_relayed_and_removed_for_everyone_when_its_owner_leaves() -> None:
    room = Room("n", MemoryLog())
    (a, _), (b, cb) = peer(), peer()
    room.join(a)
    room.join(b)
    room.handle(a, awareness(7, 1, '{"user":"a"}'))
    await room.drain()
    room.leave(a)
    await room.drain()
    entries = [
        entry
        for m in cb.messages()
        if isinstance(m, AwarenessMessage)
        for entry in parse_awareness_update(m.payload)
    ]
    assert entries[0] == AwarenessEntry(7, 1, '{"user":"a"}')
    assert entries[-1] == AwarenessEntry(7, 2, "null")


async def test_a_peer_cannot_overwrite_or_remove_another_peers_awareness() -> None:
    room = Room("n", MemoryLog())
    (a, _), (b, _), (c, _) = peer(), peer(), peer()
    for p in (a, b, c):
        room.join(p)
    room.handle(a, awareness(7, 1, '{"user":"a"}'))
    room.handle(b, awareness(7, 5, "null"))
    room.handle(b, awareness(7, 6, '{"user":"spoof"}'))
    await room.drain()
    assert room.awareness.snapshot() == [AwarenessEntry(7, 1, '{"user":"a"}')]


async def test_ten_clients_opening_a_cold_doc_at_once_cause_one_load() -> None:
    log = MemoryLog()
    async with RoomRegistry(log) as registry:
        rooms = await asyncio.gather(*(registry.acquire("n") for _ in range(10)))
        assert log.loads == 1
        assert all(r is rooms[0] for r in rooms)
        assert rooms[0].holds == 10


async def test_a_failed_load_is_an_error_for_every_waiter_and_is_retried_next_time() -> None:
    log = MemoryLog()
    log.fail_load = True
    async with RoomRegistry(log) as registry:
        results = await asyncio.gather(
            *(registry.acquire("n") for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, RoomLoadError) for r in results)
        log.fail_load = False
        room = await registry.acquire("n")
        assert room.doc_id == "n"


async def test_a_room_unloads_once_released_and_stored() -> None:
    log = MemoryLog()
    unloaded = asyncio.Event()
    async with RoomRegistry(log, on_unloaded=lambda _: unloaded.set()) as registry:
        room = await registry.acquire("n")
        room.apply(typed("x", 1))
        registry.release(room)
        await asyncio.wait_for(unloaded.wait(), 5)
        assert registry.get("n") is None
        assert log.compacted == ["n"]
        assert text_of(log.appended) == "x"


class StuckChannel(MemoryChannel):
    """A client that stopped reading: every send waits forever."""

    async def send(self, frame: bytes) -> None:
        await asyncio.Event().wait()

    def send_now(self, frame: bytes) -> bool:
        return False  # its socket buffer is full: the room has to wait

    def send_all_now(self, frames: tuple[bytes, ...]) -> bool:
        return False


async def test_a_peer_that_stops_reading_is_closed_and_does_not_stall_the_room() -> None:
    from syncd.room import RoomLimits

    room = Room("n", MemoryLog(), RoomLimits(send_timeout=0.2))
    writer, _ = peer()
    stuck_channel = StuckChannel()
    stuck = Peer(channel=stuck_channel, user_id="slow", can_write=True)
    reader, cr = peer()
    for p in (writer, stuck, reader):
        room.join(p)
    room.handle(writer, SyncUpdate(typed("x", 1)))
    await asyncio.wait_for(room.drain(), 5)
    await asyncio.sleep(0)  # let the close task of the dropped peer run
    assert text_of(cr.updates()) == "x"
    assert stuck_channel.close_code == 1013
    assert stuck not in room.peers


class BrokenChannel(MemoryChannel):
    """A connection whose socket fails on write."""

    def send_now(self, frame: bytes) -> bool:
        raise ConnectionResetError("gone")

    def send_all_now(self, frames: tuple[bytes, ...]) -> bool:
        raise ConnectionResetError("gone")


class PausedChannel(MemoryChannel):
    """A socket over its high-water mark: nothing is taken at once, `send` waits its turn."""

    def send_now(self, frame: bytes) -> bool:
        return False

    def send_all_now(self, frames: tuple[bytes, ...]) -> bool:
        return False


async def test_a_peer_whose_socket_fails_is_closed_and_the_others_still_get_the_pass() -> None:
    room = Room("n", MemoryLog())
    writer, _ = peer()
    broken_channel, paused_channel = BrokenChannel(), PausedChannel()
    broken = Peer(channel=broken_channel, user_id="b", can_write=True)
    paused = Peer(channel=paused_channel, user_id="p", can_write=True)
    readers = [peer() for _ in range(3)]
    for p in (writer, broken, paused, *(r for r, _ in readers)):
        room.join(p)
    room.handle(writer, SyncUpdate(typed("x", 1)))
    room.handle(writer, awareness(7, 1, '{"user":"w"}'))  # a relay: the other branch
    await asyncio.wait_for(room.drain(), 5)
    await asyncio.sleep(0)  # let the close task of the dropped peer run
    assert broken_channel.close_code == 1011 and broken not in room.peers
    for channel in (paused_channel, *(c for _, c in readers)):
        assert text_of(channel.updates()) == "x"  # the paused one through the awaited send
    second_channel = BrokenChannel()
    second = Peer(channel=second_channel, user_id="b2", can_write=True)
    room.join(second)
    room.handle(writer, SyncUpdate(typed("y", 2)))  # the keystroke-only pass, no relay
    await asyncio.wait_for(room.drain(), 5)
    await asyncio.sleep(0)
    assert second_channel.close_code == 1011 and second not in room.peers
    assert all(len(c.updates()) == 2 for c in (paused_channel, *(c for _, c in readers)))


async def test_new_clients_share_one_encoded_state_until_the_doc_changes() -> None:
    room = Room("n", MemoryLog())
    room.load([typed("stored", 1)])
    a, b = peer(), peer()
    first = room.handle(a[0], SyncStep1(b"\x00"))
    second = room.handle(b[0], SyncStep1(b"\x00"))
    assert first[0] is second[0]
    room.handle(a[0], SyncUpdate(typed("more", 2)))
    third = room.handle(b[0], SyncStep1(b"\x00"))
    reply = parse_message(third[0])
    assert isinstance(reply, SyncStep2) and sorted(text_of([reply.update])) == sorted("storedmore")


async def test_a_cursor_move_is_encoded_once_and_framed_once_for_every_peer() -> None:
    """A pass with a keystroke and a cursor move hands every peer the same two message
    objects, and the WebSocket framing keeps both, so nothing is built per peer."""
    room = Room("n", MemoryLog())
    pairs = [peer() for _ in range(10)]
    for p, _ in pairs:
        room.join(p)
    for _, channel in pairs:
        channel.frames.clear()  # the handshakes
    writer = pairs[0][0]
    room.handle(writer, SyncUpdate(typed("a", 1)))
    room.handle(writer, awareness(1, 1, '{"cursor":{"anchor":1}}'))
    await room.drain()
    sent = [channel.frames for _, channel in pairs[1:]]
    assert all(len(frames) == 2 for frames in sent)
    assert len({id(frames[0]) for frames in sent}) == 1  # the update: one object
    assert len({id(frames[1]) for frames in sent}) == 1  # the cursor move: one object
    assert pairs[0][1].frames == [sent[0][1]]  # echoed to its sender, the same object
    framed = [binary_frame(frame) for frames in sent for frame in frames]
    assert framed[0::2] == [framed[0]] * 9 and framed[1::2] == [framed[1]] * 9
    assert all(f is framed[0] for f in framed[0::2]) and all(f is framed[1] for f in framed[1::2])


async def test_an_update_and_a_cursor_move_of_one_pass_reach_each_peer_in_one_write() -> None:
    """One transport write (one syscall) per peer per pass: the update, then the cursor
    move, in that order; its sender gets only the echo of its cursor move."""
    room = Room("n", MemoryLog())
    pairs = [peer() for _ in range(5)]
    for p, _ in pairs:
        room.join(p)
    for _, channel in pairs:
        channel.frames.clear()
        channel.writes.clear()  # the handshakes
    writer = pairs[0][0]
    room.handle(writer, SyncUpdate(typed("a", 1)))
    room.handle(writer, awareness(1, 1, '{"cursor":{"anchor":1}}'))
    await room.drain()
    writes = [channel.writes for _, channel in pairs[1:]]
    assert all(len(w) == 1 and len(w[0]) == 2 for w in writes)
    assert len({id(w[0]) for w in writes}) == 1  # one tuple for every reader
    update, cursor = (parse_message(frame) for frame in writes[0][0])
    assert isinstance(update, SyncUpdate) and text_of([update.update]) == "a"
    assert isinstance(cursor, AwarenessMessage)
    assert pairs[0][1].writes == [(writes[0][0][1],)]


async def test_remote_updates_local_updates_and_awareness_keep_their_order_in_one_write() -> None:
    """A pass with everything: the other instance's update, the turn's own merged update,
    then awareness, each peer getting what it did not send itself, in one write."""
    room = Room("n", MemoryLog())
    (a, ca), (b, cb), (c, cc) = peer(), peer(), peer()
    for p in (a, b, c):
        room.join(p)
    for channel in (ca, cb, cc):
        channel.frames.clear()
        channel.writes.clear()
    room.apply_remote([typed("r", 9)])
    room.handle(a, SyncUpdate(typed("a", 1)))
    room.handle(b, awareness(2, 1, '{"user":"b"}'))
    await room.drain()
    kinds = {
        name: [
            (type(m).__name__, text_of([m.update]) if isinstance(m, SyncUpdate) else "")
            for m in (parse_message(f) for f in channel.writes[0])
        ]
        for name, channel in (("a", ca), ("b", cb), ("c", cc))
    }
    assert all(len(channel.writes) == 1 for channel in (ca, cb, cc))
    assert kinds["a"] == [("SyncUpdate", "r"), ("Awareness", "")]  # its own update: not back
    assert kinds["b"] == [("SyncUpdate", "r"), ("SyncUpdate", "a"), ("Awareness", "")]
    assert kinds["c"] == kinds["b"]


async def test_a_paused_peer_gets_every_frame_of_a_multi_frame_pass_in_order() -> None:
    """A transport that takes nothing now (over its high-water mark) gets the whole pass
    through the awaited `send`, in order, and nothing twice."""
    room = Room("n", MemoryLog())
    writer, _ = peer()
    paused_channel = PausedChannel()
    paused = Peer(channel=paused_channel, user_id="p", can_write=True)
    reader, reader_channel = peer()
    for p in (writer, paused, reader):
        room.join(p)
    paused_channel.frames.clear()
    reader_channel.frames.clear()
    room.handle(writer, SyncUpdate(typed("x", 1)))
    room.handle(writer, awareness(1, 1, '{"cursor":{"anchor":1}}'))
    await asyncio.wait_for(room.drain(), 5)
    assert paused_channel.writes == []  # nothing went out without an await
    assert paused_channel.frames == reader_channel.frames
    kinds = [type(m).__name__ for m in paused_channel.messages()]
    assert kinds == ["SyncUpdate", "Awareness"]


async def test_awareness_is_echoed_to_its_sender_so_idle_stock_clients_stay_connected() -> None:
    room = Room("n", MemoryLog())
    alone, channel = peer()
    room.join(alone)
    room.handle(alone, awareness(7, 1, '{"user":"a"}'))
    await room.drain()
    echoed = [m for m in channel.messages() if isinstance(m, AwarenessMessage)]
    assert [parse_awareness_update(m.payload) for m in echoed] == [
        (AwarenessEntry(7, 1, '{"user":"a"}'),)
    ]


async def test_a_deferred_compaction_keeps_the_room_dirty_and_loaded_until_it_runs() -> None:
    log = MemoryLog()
    log.defer_compaction = True  # another instance holds the doc's compaction lease
    async with RoomRegistry(log) as registry:
        room = await registry.acquire("n")
        room.apply(typed("x", 1))
        assert await registry.checkpoint(room) is False
        assert room.dirty and log.compacted == []
        log.defer_compaction = False
        assert await registry.checkpoint(room) is True
        assert not room.dirty and log.compacted == ["n"]


async def test_what_pycrdt_refuses_after_the_walk_is_a_protocol_error_of_kind_rejected() -> None:
    from syncd.protocol import ProtocolError

    room = Room("n", MemoryLog())
    room.load([typed("a", 1)])
    a, _ = peer()
    room.join(a)
    # a value whose parent is the item holding "a" (a string, not a shared type)
    with pytest.raises(ProtocolError) as caught:
        room.handle(a, SyncUpdate(bytes.fromhex("0101010108000100017d0100")))
    assert (caught.value.kind, caught.value.close_code) == ("rejected", 4400)
    assert room.idle


def edits(client_id: int, *words: str) -> list[bytes]:
    """One update per word typed at the end of a Y.Text, each depending on the one before."""
    return typed_updates(client_id, words)


def replay_checked(updates: Sequence[bytes]) -> str:
    """Apply what a peer received in order, asserting none of it ever waited for structs
    the receiver lacked (what a stock client would have to keep pending)."""
    from syncd.protocol import YLimits, check_dependencies, check_update, read_state_vector

    doc = Doc()
    for update in updates:
        check_dependencies(
            check_update(update, YLimits.for_message_bytes(1 << 22)),
            read_state_vector(doc.get_state()),
        )
        doc.apply_update(update)
    return str(doc.get("t", type=Text))


async def test_an_update_waiting_for_missing_structs_is_held_until_they_arrive() -> None:
    """A stock client back from offline types before its sync step 2: its update starts
    past what the room has for it. Held, not refused; applied once the step 2 arrives."""
    log = MemoryLog()
    room = Room("n", log)
    (a, ca), (b, cb) = peer(), peer()
    room.join(a)
    room.join(b)
    offline, typed_after = edits(5, "first", " second")
    room.handle(a, SyncUpdate(typed_after))  # starts at clock 5; the room has none
    await room.drain()
    assert room.held(a) == 1
    assert (log.appended, cb.updates(), str(room.doc.get("t", type=Text))) == ([], [], "")
    room.handle(a, SyncStep2(offline))
    await room.drain()
    assert room.held(a) == 0
    assert str(room.doc.get("t", type=Text)) == "first second"
    assert text_of(log.appended) == "first second"
    assert replay_checked(cb.updates()) == "first second"
    assert ca.updates() == []  # its own updates are not echoed to it


async def test_out_of_order_updates_of_a_peer_are_applied_in_order_as_gaps_fill() -> None:
    log = MemoryLog()
    room = Room("n", log)
    (a, _), (b, cb) = peer(), peer()
    room.join(a)
    room.join(b)
    u1, u2, u3, u4 = edits(5, "one", " two", " three", " four")
    for update in (u4, u2, u3):
        room.handle(a, SyncUpdate(update))
        await room.drain()  # each in its own fan-out pass
    assert room.held(a) == 3 and cb.updates() == [] and log.appended == []
    room.handle(a, SyncUpdate(u1))
    await room.drain()
    assert room.held(a) == 0
    assert replay_checked(cb.updates()) == "one two three four"
    assert text_of(log.appended) == "one two three four"
    assert a.updates_in == 4


async def test_every_update_fanned_out_after_a_release_follows_what_it_depends_on() -> None:
    """Releases across fan-out passes: every frame a peer gets applies without waiting."""
    room = Room("n", MemoryLog())
    (a, _), (b, cb) = peer(), peer()
    room.join(a)
    room.join(b)
    updates = edits(5, *(f" w{i}" for i in range(12)))
    for update in updates[6:]:
        room.handle(a, SyncUpdate(update))
    for update in updates[:6]:
        room.handle(a, SyncUpdate(update))
        await room.drain()
    assert room.held(a) == 0
    assert replay_checked(cb.updates()) == "".join(f" w{i}" for i in range(12))


async def test_a_held_update_is_released_by_what_another_instance_sends() -> None:
    room = Room("n", MemoryLog())
    (a, _), (b, cb) = peer(), peer()
    room.join(a)
    room.join(b)
    remote = Doc(client_id=6)
    remote.get("t", type=Text).insert(0, "remote")
    mine = Doc(client_id=7)
    mine.apply_update(remote.get_update())
    before = mine.get_state()
    mine.get("t", type=Text).insert(6, "!")  # points at client 6's structs
    room.handle(a, SyncUpdate(mine.get_update(before)))
    assert room.held(a) == 1
    room.apply_remote([remote.get_update()])
    await room.drain()
    assert room.held(a) == 0
    assert str(room.doc.get("t", type=Text)) == "remote!"
    assert replay_checked(cb.updates()) == "remote!"


async def test_a_held_update_is_released_by_another_peers_update() -> None:
    room = Room("n", MemoryLog())
    (a, ca), (b, _) = peer(), peer()
    room.join(a)
    room.join(b)
    first = Doc(client_id=6)
    first.get("t", type=Text).insert(0, "b's")
    second = Doc(client_id=7)
    second.apply_update(first.get_update())
    before = second.get_state()
    second.get("t", type=Text).insert(3, " and a's")
    room.handle(a, SyncUpdate(second.get_update(before)))
    assert room.held(a) == 1
    room.handle(b, SyncUpdate(first.get_update()))
    await room.drain()
    assert room.held(a) == 0
    assert str(room.doc.get("t", type=Text)) == "b's and a's"
    # one pass with two origins: a gets the merged frame, its own update included
    assert replay_checked(ca.updates()) == "b's and a's"


async def test_a_peer_holding_more_than_its_bounds_is_refused() -> None:
    from syncd.protocol import ProtocolError
    from syncd.room import RoomLimits

    room = Room("n", MemoryLog(), RoomLimits(max_held_updates=3))
    a, _ = peer()
    room.join(a)
    updates = edits(5, "a", "b", "c", "d", "e")
    for update in updates[1:4]:
        room.handle(a, SyncUpdate(update))
    assert room.held(a) == 3
    with pytest.raises(ProtocolError) as caught:
        room.handle(a, SyncUpdate(updates[4]))
    assert (caught.value.kind, caught.value.close_code) == ("missing", 4400)
    assert room.held(a) == 0  # dropped with the connection about to close
    await room.drain()
    assert str(room.doc.get("t", type=Text)) == ""

    room = Room("n", MemoryLog(), RoomLimits(max_message_bytes=1024))
    a, _ = peer()
    room.join(a)
    big = edits(5, "x", "y" * 600, "z" * 600)
    room.handle(a, SyncUpdate(big[1]))
    with pytest.raises(ProtocolError) as caught:  # 2 x 600+ bytes > 1024
        room.handle(a, SyncUpdate(big[2]))
    assert caught.value.kind == "missing"


async def test_a_held_update_pycrdt_refuses_once_released_closes_its_sender_only() -> None:
    from syncd import metrics

    room = Room("n", MemoryLog())
    (a, ca), (b, cb) = peer(), peer()
    room.join(a)
    room.join(b)
    # a value whose parent is client 1's first item, which the room does not have yet
    room.handle(a, SyncUpdate(bytes.fromhex("0101010108000100017d0100")))
    assert room.held(a) == 1
    refused = metrics.PROTOCOL_ERRORS.labels("update", "rejected")._value.get()
    room.handle(b, SyncUpdate(typed("a", 1)))  # the parent arrives: a string, not a type
    await room.drain()
    await asyncio.gather(*room._closing)
    assert (ca.close_code, cb.close_code) == (4400, None)
    assert a not in room.peers and room.held(a) == 0
    assert metrics.PROTOCOL_ERRORS.labels("update", "rejected")._value.get() == refused + 1
    assert str(room.doc.get("t", type=Text)) == "a"


async def test_a_server_side_update_needing_missing_structs_is_refused_not_applied() -> None:
    """REST updates go through `Room.apply`: walked, and with no connection to hold them
    for, refused when pycrdt would keep them pending (the fixture crashes it otherwise)."""
    from syncd.protocol import ProtocolError

    found = json.loads(
        (Path(__file__).parent / "fixtures/pycrdt_pending_segfault.json").read_text()
    )
    room = Room("n", MemoryLog())
    room.load([bytes.fromhex(u) for u in found["pool"]])
    kinds = []
    for update in found["updates"]:
        try:
            room.apply(bytes.fromhex(update), editor="u")
            kinds.append("applied")
        except ProtocolError as exc:
            kinds.append(exc.kind)
    assert kinds == ["applied", "applied", "missing", "missing"]
    with pytest.raises(ProtocolError) as caught:
        room.apply(b"\x01\x05")
    assert caught.value.kind == "malformed"
    await room.drain()


async def test_what_a_peer_held_is_dropped_when_it_leaves() -> None:
    log = MemoryLog()
    room = Room("n", log)
    (a, _), (b, _) = peer(), peer()
    room.join(a)
    room.join(b)
    offline, typed_after = edits(5, "offline", " typed")
    room.handle(a, SyncUpdate(typed_after))
    room.leave(a)
    assert room.held(a) == 0
    room.handle(b, SyncUpdate(offline))  # the gap filled, but the update left with a
    await room.drain()
    assert str(room.doc.get("t", type=Text)) == "offline"
    assert text_of(log.appended) == "offline"


async def test_a_state_vector_is_walked_before_pycrdt_reads_it() -> None:
    from syncd.protocol import ProtocolError

    room = Room("n", MemoryLog())
    a, _ = peer()
    room.join(a)
    with pytest.raises(ProtocolError) as caught:
        room.handle(a, SyncStep1(bytes.fromhex("80c6868f0100000000")))
    assert caught.value.kind == "limit"


async def test_leaving_at_the_highest_awareness_clock_stays_encodable() -> None:
    room = Room("n", MemoryLog())
    (a, _), (b, cb) = peer(), peer()
    room.join(a)
    room.join(b)
    room.handle(a, awareness(7, 2**53 - 1, '{"user":"a"}'))
    await room.drain()
    room.leave(a)
    await room.drain()
    last = [m for m in cb.messages() if isinstance(m, AwarenessMessage)][-1]
    assert parse_awareness_update(last.payload) == (AwarenessEntry(7, 2**53 - 1, "null"),)


async def test_the_updates_that_segfault_pycrdt_are_held_and_never_reach_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by fuzzing: pycrdt 0.14.13 crashes the process (SIGSEGV) when these four
    updates, each well formed, are applied in order to a doc holding `pool`. The third
    starts past the clock the doc has for its client and the fourth points at clients
    the doc never saw: pycrdt would keep both pending, so the room holds them itself."""
    found = json.loads(
        (Path(__file__).parent / "fixtures/pycrdt_pending_segfault.json").read_text()
    )
    room = Room("n", MemoryLog())
    room.load([bytes.fromhex(u) for u in found["pool"]])
    seen: list[bytes] = []
    apply_update = room_module.apply_update

    def spy(doc: Doc, update: bytes) -> None:
        seen.append(update)
        apply_update(doc, update)

    # every update from a peer reaches pycrdt through `syncd.room.apply.apply_update`
    monkeypatch.setattr(room_module, "apply_update", spy)
    a, _ = peer()
    room.join(a)
    updates = [bytes.fromhex(update) for update in found["updates"]]
    for update in updates:
        room.handle(a, SyncUpdate(update))
    assert seen == updates[:2]
    assert room.held(a) == 2
    assert room.doc.get_update()  # the doc is intact
    room.leave(a)
    assert room.held(a) == 0
    await room.drain()


class PanicException(BaseException):
    """Stands in for pyo3's PanicException (not importable): what a Rust panic raises."""


@pytest.mark.parametrize("failure", [ValueError("bad"), RuntimeError("bad"), PanicException()])
async def test_a_remote_update_pycrdt_fails_on_is_dropped_and_the_rest_applied(
    failure: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    from syncd import metrics

    room = Room("n", MemoryLog())
    b, cb = peer()
    room.join(b)
    apply_update = room.doc.apply_update
    poisoned = typed("poison", 9)

    def failing(update: bytes) -> None:
        if update == poisoned:
            raise failure
        apply_update(update)

    room.doc.apply_update = failing  # type: ignore[method-assign]
    counted = metrics.ERRORS.labels("remote_update")._value.get()
    room.apply_remote([typed("one", 1), poisoned, typed("two", 2)])
    await room.drain()
    assert metrics.ERRORS.labels("remote_update")._value.get() == counted + 1
    assert str(room.doc.get("t", type=Text)) in {"onetwo", "twoone"}
    assert text_of(cb.updates()) == str(room.doc.get("t", type=Text))
    dropped = [r for r in caplog.records if "remote update" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].exc_info is None  # one line, no traceback


async def test_a_cancellation_while_applying_a_remote_update_is_not_swallowed() -> None:
    room = Room("n", MemoryLog())

    def cancelled(update: bytes) -> None:
        raise asyncio.CancelledError

    room.doc.apply_update = cancelled  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        room.apply_remote([typed("one", 1)])


async def test_the_clocks_kept_for_the_dependency_check_follow_every_kind_of_change() -> None:
    room = Room("n", MemoryLog())
    a, _ = peer()
    room.join(a)
    doc = Doc(client_id=5)
    text = doc.get("t", type=Text)
    for word in ("one", " two", " three"):  # each update depends on the one before
        before = doc.get_state()
        text += word
        room.handle(a, SyncUpdate(doc.get_update(before)))
    room.apply_remote([typed("remote", 6)])
    other = Doc(client_id=6)
    other.apply_update(room.doc.get_update())
    before = other.get_state()
    other.get("t", type=Text).insert(0, ">")  # client 6 continues after the remote update
    room.handle(a, SyncUpdate(other.get_update(before)))
    await room.drain()
    assert str(room.doc.get("t", type=Text)).count("one two three") == 1
