"""Two instances' hubs over a real Redis and one store: a session that a connection on
one instance has joined is not ended by the other when its own last connection leaves,
however the two instances' passes interleave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from redis.asyncio import Redis

from syncd.room import Peer, Room
from syncd.services.events import EventBus, PeerJoined, PeerLeft, SessionEnded
from syncd.services.presence.hub import CollaborationHub
from syncd.services.presence.presence import PresenceBoard
from syncd.services.presence.redis_state import RedisPresence
from syncd.services.sessions import SessionService
from syncd.storage import SessionActivity, SessionStore, Store, open_store
from tests.services.presence.test_presence import NullLog, Silent

WAIT = 10.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'db.sqlite'}") as opened:
        await opened.create_note(note_id="n1", title="t", created_by="ann")
        yield opened


class HeldAfterRecording(SessionService):
    """Sessions whose first `record` returns only once `go` is set (`recorded` says it
    has stored): a pass held between its session transaction and what follows it."""

    def __init__(self, store: SessionStore, events: EventBus) -> None:
        super().__init__(store, events)
        self.recorded = asyncio.Event()
        self.go = asyncio.Event()

    async def record(self, items: Sequence[SessionActivity]) -> dict[str, str]:
        sessions = await super().record(items)
        if not self.recorded.is_set():
            self.recorded.set()
            await self.go.wait()
        return sessions


async def test_a_session_joined_on_another_instance_is_not_ended_under_it(
    store: Store, redis_server_url: str, redis_prefix: str
) -> None:
    """B's pass has joined Bob to the note's session and not gone further when Ann, the
    only connection on A, leaves: A must see Bob (arrivals are mirrored to Redis before
    they are recorded), so the session ends once, when Bob leaves too, with both
    connections' updates. Mirrored after recording, A ended it under Bob, and Bob's
    update went to an ended session."""
    redis = Redis.from_url(redis_server_url)
    sessions = SessionStore(store.engine)
    ended: list[SessionEnded] = []

    async def on_ended(event: SessionEnded) -> None:
        ended.append(event)

    buses = EventBus(), EventBus()
    for bus in buses:
        bus.subscribe(SessionEnded, on_ended)
    on_a = SessionService(sessions, buses[0])
    on_b = HeldAfterRecording(sessions, buses[1])
    boards = [PresenceBoard(name, remote=RedisPresence(redis, redis_prefix)) for name in "ab"]
    room_a, room_b = Room("n1", NullLog()), Room("n1", NullLog())  # type: ignore[arg-type]
    ann = Peer(Silent(), "ann", can_write=True, name="Ann")
    bob = Peer(Silent(), "bob", can_write=True, name="Bob")
    try:
        async with (
            CollaborationHub(boards[0], on_a, buses[0], refresh_interval=60) as a,
            CollaborationHub(boards[1], on_b, buses[1], refresh_interval=60) as b,
        ):
            a.peer_joined(PeerJoined("n1", room_a, ann))
            await asyncio.wait_for(a.drained(), WAIT)
            b.peer_joined(PeerJoined("n1", room_b, bob))
            await asyncio.wait_for(on_b.recorded.wait(), WAIT)  # Bob is in the session
            ann.updates_in, ann.bytes_in = 1, 10
            a.peer_left(PeerLeft("n1", room_a, ann))
            await asyncio.wait_for(a.drained(), WAIT)
            assert ended == []  # Bob is still there
            on_b.go.set()
            await asyncio.wait_for(b.drained(), WAIT)
            bob.updates_in, bob.bytes_in = 1, 20
            b.peer_left(PeerLeft("n1", room_b, bob))
            await asyncio.wait_for(b.drained(), WAIT)
    finally:
        on_b.go.set()
        await redis.aclose()
    [event] = ended
    [session] = await on_a.history("n1")
    assert event.session.id == session.id and not session.active
    assert event.session.updates == 2 and event.session.bytes == 30
    assert sorted(event.session.participants) == ["ann", "bob"]
