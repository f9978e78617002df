"""Presence and the hub over real rooms (in-memory doc backend) and a real SQLite store:
statuses from what peers do, merging per user, joined/left events and sessions in order."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from syncd.protocol import Awareness as AwarenessMessage
from syncd.protocol import AwarenessEntry, encode_awareness_update
from syncd.room import Peer, Room
from syncd.services.events import EventBus, PeerJoined, PeerLeft, SessionEnded, UserJoined, UserLeft
from syncd.services.presence.hub import CollaborationHub
from syncd.services.presence.presence import Connection, PresenceBoard, merge_by_user
from syncd.services.sessions import SessionService
from syncd.storage import SessionStore, Store, open_store
from syncd.transport.socketio import presence_payload


class NullLog:
    async def load(self, doc_id: str) -> Sequence[bytes]:
        return []

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        pass

    async def compact(self, doc_id: str) -> None:
        pass

    def subscribe(self, doc_id: str, listener: object) -> None:
        pass

    def unsubscribe(self, doc_id: str) -> None:
        pass

    def publish_awareness(self, doc_id: str, payload: bytes) -> None:
        pass


class Silent:
    closed = False

    async def send(self, frame: bytes) -> None:
        pass

    def send_now(self, frame: bytes) -> bool:
        return True

    def send_all_now(self, frames: tuple[bytes, ...]) -> bool:
        return True

    async def close(self, code: int, reason: str = "") -> None:
        self.closed = True


class Recorder:
    """What the Socket.IO gateway would send for the presence events published on `bus`."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        bus.subscribe(UserJoined, self.joined)
        bus.subscribe(UserLeft, self.left)

    async def joined(self, event: UserJoined) -> None:
        self.events.append(("note:user-joined", event.note_id, presence_payload(event)))

    async def left(self, event: UserLeft) -> None:
        self.events.append(("note:user-left", event.note_id, presence_payload(event)))


def say(room: Room, peer: Peer, client_id: int, clock: int, state: dict[str, Any]) -> None:
    payload = encode_awareness_update([AwarenessEntry(client_id, clock, json.dumps(state))])
    room.handle(peer, AwarenessMessage(payload))


async def test_status_follows_what_a_peer_does() -> None:
    room = Room("n1", NullLog())  # type: ignore[arg-type]
    peer = Peer(Silent(), "ann", can_write=True, name="Ann")
    room.join(peer)
    conn = Connection("c1", "n1", "ann", "Ann", "websocket", True, peer=peer, room=room)
    now = time.time()
    assert conn.entry(now, "i", idle_after=60, edit_window=30)["status"] == "viewing"
    peer.updates_in += 1  # what the room counts when the peer sends an update
    assert conn.entry(now + 1, "i", idle_after=60, edit_window=30)["status"] == "editing"
    assert conn.entry(now + 40, "i", idle_after=60, edit_window=30)["status"] == "viewing"
    assert conn.entry(now + 100, "i", idle_after=60, edit_window=30)["status"] == "idle"
    say(room, peer, 7, 1, {"cursor": {"anchor": 1, "head": 3}, "user": {"name": "Ann"}})
    shown = conn.entry(now + 101, "i", idle_after=60, edit_window=30)
    assert shown["cursor"] == {"anchor": 1, "head": 3} and shown["status"] == "viewing"
    say(room, peer, 7, 2, {"status": "idle"})
    assert conn.entry(now + 102, "i", idle_after=60, edit_window=30)["status"] == "idle"
    peer.can_write = False  # edit right taken away while connected
    say(room, peer, 7, 3, {})
    peer.updates_in += 1
    assert conn.entry(now + 103, "i", idle_after=60, edit_window=30)["status"] == "viewing"


def test_entries_merge_per_user() -> None:
    entries = [
        {"userId": "ann", "name": "Ann", "status": "viewing", "source": "socket.io",
         "cursor": None, "selection": None, "lastSeen": 10.0},
        {"userId": "ann", "name": None, "status": "editing", "source": "websocket",
         "cursor": {"anchor": 1}, "selection": None, "lastSeen": 5.0},
        {"userId": "bob", "name": "Bob", "status": "idle", "source": "websocket",
         "cursor": None, "selection": None, "lastSeen": 1.0},
    ]  # fmt: skip
    ann, bob = merge_by_user(entries)
    assert ann["userId"] == "ann" and ann["status"] == "editing" and ann["name"] == "Ann"
    assert ann["cursor"] == {"anchor": 1} and ann["connections"] == 2
    assert ann["sources"] == ["socket.io", "websocket"]
    assert ann["lastSeen"] == "1970-01-01T00:00:10Z"
    assert bob["status"] == "idle"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'db.sqlite'}") as opened:
        await opened.create_note(note_id="n1", title="t", created_by="ann")
        yield opened


async def test_the_hub_announces_first_joins_and_last_leaves_and_keeps_the_session(
    store: Store,
) -> None:
    events = EventBus()
    sessions = SessionService(SessionStore(store.engine), events)
    ended: list[str] = []

    async def on_ended(event: SessionEnded) -> None:
        ended.append(event.session.id)

    events.subscribe(SessionEnded, on_ended)
    board = PresenceBoard("i1")
    recorder = Recorder(events)
    room = Room("n1", NullLog())  # type: ignore[arg-type]
    tab1, tab2 = (Peer(Silent(), "ann", can_write=True, name="Ann") for _ in range(2))
    async with CollaborationHub(board, sessions, events, refresh_interval=60) as hub:
        hub.peer_joined(PeerJoined(room.doc_id, room, tab1))
        # a second tab of the same user: no second "joined"
        hub.peer_joined(PeerJoined(room.doc_id, room, tab2))
        tab1.updates_in, tab1.bytes_in = 3, 120
        hub.peer_left(PeerLeft(room.doc_id, room, tab1))
        await hub.refresh()  # a heartbeat in between must not count anything twice
        sio = Connection("sio:x:n1", "n1", "bob", "Bob", "socket.io", False, sid="x")
        await hub.join(sio)
        assert sorted(e["userId"] for e in await hub.presence("n1")) == ["ann", "bob"]
        hub.peer_left(PeerLeft(room.doc_id, room, tab2))
        await hub.leave(sio.conn_id)
        assert await hub.presence("n1") == []
    kinds = [(event, data["userId"]) for event, _, data in recorder.events]
    assert kinds == [
        ("note:user-joined", "ann"),
        ("note:user-joined", "bob"),
        ("note:user-left", "ann"),
        ("note:user-left", "bob"),
    ]
    [session] = await sessions.history("n1")
    assert not session.active and session.id in ended
    assert sorted(session.participants) == ["ann", "bob"]
    assert (session.updates, session.bytes) == (3, 120)
