"""The hub's coalesced bookkeeping over real rooms and a real SQLite store: many joins and
leaves cost a few passes, a visit shorter than a pass is recorded but never announced,
announcements keep their order, failed transactions are retried, shutdown finishes the
backlog and a start ends the sessions nobody backs any more."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from syncd.room import Peer, Room
from syncd.services.events import EventBus, PeerJoined, PeerLeft, SessionEnded
from syncd.services.presence.backlog import Backlog
from syncd.services.presence.hub import CollaborationHub
from syncd.services.presence.presence import Connection, PresenceBoard
from syncd.services.sessions import SessionService
from syncd.storage import (
    SessionActivity,
    SessionRecord,
    SessionStore,
    StorageUnavailable,
    Store,
    open_store,
)
from tests.services.presence.test_presence import NullLog, Recorder, Silent


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'db.sqlite'}") as opened:
        for n in range(50):
            await opened.create_note(note_id=f"n{n}", title="t", created_by="ann")
        yield opened


def passes() -> float:
    return REGISTRY.get_sample_value("syncd_presence_passes_total") or 0.0


async def test_a_thousand_visits_cost_a_few_passes_and_leave_nothing_behind(store: Store) -> None:
    events = EventBus()
    sessions = SessionService(SessionStore(store.engine), events)
    board = PresenceBoard("i1")
    recorder = Recorder(events)
    rooms = [Room(f"n{n}", NullLog()) for n in range(50)]  # type: ignore[arg-type]
    async with CollaborationHub(board, sessions, events, refresh_interval=60) as hub:
        before = passes()
        for visit in range(1000):  # within one turn of the loop: no pass in between
            room, peer = rooms[visit % 50], Peer(Silent(), f"u{visit % 7}", can_write=True)
            peer.updates_in, peer.bytes_in = 1, 10
            hub.peer_joined(PeerJoined(room.doc_id, room, peer))
            hub.peer_left(PeerLeft(room.doc_id, room, peer))
        assert hub.backlog == 50  # one entry per note, not one per event
        await hub.drained()
        assert passes() - before == 1
        assert recorder.events == []  # nobody stayed long enough to be announced
        assert hub.backlog == 0 and len(board) == 0
    for n in range(50):
        [record] = await sessions.history(f"n{n}")
        assert not record.active and record.updates == 20 and record.bytes == 200
        assert sorted(record.participants) == sorted({f"u{v % 7}" for v in range(n, 1000, 50)})


async def test_changes_right_after_a_pass_wait_for_the_spacing_and_share_one_pass(
    store: Store,
) -> None:
    """A join storm: what arrives within the spacing after a pass began is taken by one
    later pass (one session transaction), not by a pass per loop turn."""
    events = EventBus()
    sessions = SessionService(SessionStore(store.engine), events)
    room = Room("n1", NullLog())  # type: ignore[arg-type]
    hub = CollaborationHub(
        PresenceBoard("i1"), sessions, events, refresh_interval=60, pass_spacing=1.0
    )
    async with hub:
        hub.peer_joined(PeerJoined(room.doc_id, room, Peer(Silent(), "u0", can_write=True)))
        await hub.drained()
        before = passes()
        for n in range(1, 6):  # one join per loop turn, well within the spacing
            hub.peer_joined(PeerJoined(room.doc_id, room, Peer(Silent(), f"u{n}", can_write=True)))
            await asyncio.sleep(0.01)
        await hub.drained()
        assert passes() - before == 1
    [session] = await sessions.history("n1")
    assert sorted(session.participants) == [f"u{n}" for n in range(6)]


async def test_a_leave_is_announced_after_its_join_and_only_then(store: Store) -> None:
    events = EventBus()
    sessions = SessionService(SessionStore(store.engine), events)
    recorder = Recorder(events)
    room = Room("n1", NullLog())  # type: ignore[arg-type]
    async with CollaborationHub(PresenceBoard("i1"), sessions, events, refresh_interval=60) as hub:
        tab1, tab2 = (Peer(Silent(), "ann", can_write=True, name="Ann") for _ in range(2))
        hub.peer_joined(PeerJoined(room.doc_id, room, tab1))
        await hub.drained()
        hub.peer_left(PeerLeft(room.doc_id, room, tab1))
        # a reload: back before the pass, so never gone
        hub.peer_joined(PeerJoined(room.doc_id, room, tab2))
        await hub.drained()
        sio = Connection("sio:s1:n1", "n1", "bob", "Bob", "socket.io", False, sid="s1")
        await hub.join(sio)
        await hub.leave(sio.conn_id)
        hub.peer_left(PeerLeft(room.doc_id, room, tab2))
        await hub.drained()
    assert [(e, d["userId"], d["source"]) for e, _, d in recorder.events] == [
        ("note:user-joined", "ann", "websocket"),
        ("note:user-joined", "bob", "socket.io"),
        ("note:user-left", "bob", "socket.io"),
        ("note:user-left", "ann", "websocket"),
    ]
    [session] = await sessions.history("n1")
    assert not session.active and sorted(session.participants) == ["ann", "bob"]


class Flaky(SessionService):
    """Sessions whose storage is unavailable for the first `failures` batches."""

    def __init__(self, store: SessionStore, events: EventBus, failures: int) -> None:
        super().__init__(store, events)
        self.failures = failures

    async def record(self, items: Sequence[SessionActivity]) -> dict[str, str]:
        if self.failures:
            self.failures -= 1
            raise StorageUnavailable("database restarting")
        return await super().record(items)


async def test_a_failed_transaction_is_retried_with_what_came_since(store: Store) -> None:
    events = EventBus()
    sessions = Flaky(SessionStore(store.engine), events, failures=2)
    room = Room("n1", NullLog())  # type: ignore[arg-type]
    async with CollaborationHub(PresenceBoard("i1"), sessions, events, refresh_interval=60) as hub:
        ann = Peer(Silent(), "ann", can_write=True)
        ann.updates_in, ann.bytes_in = 2, 20
        hub.peer_joined(PeerJoined(room.doc_id, room, ann))
        hub.peer_left(PeerLeft(room.doc_id, room, ann))
        await hub.drained()
    assert sessions.failures == 0
    [record] = await sessions.history("n1")
    assert not record.active and record.participants == ("ann",)
    assert (record.updates, record.bytes) == (2, 20)  # counted once, not once per attempt


async def test_shutdown_finishes_the_backlog(store: Store) -> None:
    events = EventBus()
    sessions = SessionService(SessionStore(store.engine), events)
    room = Room("n1", NullLog())  # type: ignore[arg-type]
    peers = [Peer(Silent(), f"u{i}", can_write=True) for i in range(5)]
    async with CollaborationHub(PresenceBoard("i1"), sessions, events, refresh_interval=60) as hub:
        for peer in peers:
            hub.peer_joined(PeerJoined(room.doc_id, room, peer))
        await hub.drained()
        for peer in peers:  # what closing the connections at shutdown does
            hub.peer_left(PeerLeft(room.doc_id, room, peer))
        assert hub.backlog == 1
    [record] = await sessions.history("n1")
    assert not record.active and sorted(record.participants) == [f"u{i}" for i in range(5)]


async def test_an_embedded_start_ends_and_versions_every_active_session(store: Store) -> None:
    versioned: list[str] = []
    all_versioned = asyncio.Event()

    ended: list[SessionRecord] = []

    async def on_ended(event: SessionEnded) -> None:
        # what the versions service subscribes to: a stale end takes the version
        ended.append(event.session)
        if event.stale:
            versioned.append(event.note_id)
        if len(versioned) == 3:
            all_versioned.set()

    events = EventBus()
    events.subscribe(SessionEnded, on_ended)
    sessions = SessionService(SessionStore(store.engine), events)
    left_open = [await sessions.start(f"n{n}", ("ann",)) for n in range(3)]  # then a crash
    async with CollaborationHub(PresenceBoard("i1"), sessions, events, refresh_interval=60):
        assert [await sessions.active(f"n{n}") for n in range(3)] == [None, None, None]
        await asyncio.wait_for(all_versioned.wait(), 10)  # in the background, after start
    assert sorted(versioned) == ["n0", "n1", "n2"]
    assert sorted(r.id for r in ended) == sorted(r.id for r in left_open)
    assert all(r.ended_at == r.last_activity for r in ended)


def test_the_backlog_is_bounded_by_notes() -> None:
    backlog = Backlog(limit=2)
    for n in range(3):
        conn = Connection(f"c{n}", f"n{n}", "ann", None, "websocket", True)
        backlog.joined(conn)
        backlog.left(conn, 1, 10)
    assert len(backlog) == 2 and backlog.dropped == 2
    taken = backlog.take()
    assert sorted(taken) == ["n0", "n1"] and taken["n0"].updates == 1 and taken["n0"].left
    assert len(backlog) == 0 and backlog.dropped == 0
