"""`syncd.room.fanout.send_each_now`: the fan-out any channel supports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from syncd.room import Peer
from syncd.room.fanout import send_each_now


class SendNowChannel:
    """A channel with `send_now` only (another endpoint's, in the same room): takes the
    frame (`takes` True), leaves it to the awaited send (False) or is gone (None: raises)."""

    def __init__(self, takes: bool | None) -> None:
        self.takes = takes
        self.sent: list[bytes] = []

    def send_now(self, frame: bytes) -> bool:
        if self.takes is None:
            raise ConnectionError("gone")
        if self.takes:
            self.sent.append(frame)
        return self.takes


def test_each_peer_but_the_origin_is_sent_the_frame_and_the_rest_reported() -> None:
    channels = [SendNowChannel(takes) for takes in (True, False, None, True)]
    peers = [Peer(channel=c, user_id=f"u{i}", can_write=True) for i, c in enumerate(channels)]  # type: ignore[arg-type]
    unsent, failed = send_each_now(peers, peers[3], b"\x00\x02\x01a")
    assert unsent == [peers[1]] and failed == [peers[2]]
    assert channels[0].sent == [b"\x00\x02\x01a"] and channels[3].sent == []


def test_a_pass_every_peer_takes_allocates_no_list() -> None:
    peers = [Peer(channel=SendNowChannel(True), user_id="u", can_write=True)]  # type: ignore[arg-type]
    assert send_each_now(peers, None, b"\x00\x02\x01a") == (None, None)


async def test_a_cursor_move_pass_is_one_fan_out_call_to_every_peer(monkeypatch: Any) -> None:
    """A pass of only a cursor move's echo goes through the installed one-call fan-out
    (as a keystroke's pass does), not `send_now` per peer; the mover gets its echo."""
    from syncd.protocol import AwarenessEntry, encode_awareness, encode_awareness_update
    from syncd.room import Room
    from syncd.room import fanout as fanout_module
    from tests.unit.test_room import MemoryLog

    calls: list[tuple[list[Peer], object, bytes]] = []

    def recording(peers: Iterable[Peer], skip: object, frame: bytes) -> fanout_module.Outcome:
        peers = list(peers)
        calls.append((peers, skip, frame))
        return send_each_now(peers, skip, frame)

    monkeypatch.setattr(fanout_module, "fan_out", recording)
    room = Room("n", MemoryLog())  # type: ignore[arg-type]
    channels = [SendNowChannel(True) for _ in range(3)]
    peers = [Peer(channel=c, user_id=f"u{i}", can_write=True) for i, c in enumerate(channels)]  # type: ignore[arg-type]
    for p in peers:
        room.peers.add(p)
    payload = encode_awareness_update([AwarenessEntry(1, 1, '{"cursor":1}')])
    frame = encode_awareness(payload)
    room.handle_awareness(peers[0], payload, frame)
    await room.drain()
    assert len(calls) == 1 and calls[0][2] is frame and set(calls[0][0]) == set(peers)
    assert all(c.sent == [frame] for c in channels)


def test_the_websockets_state_read_by_the_fan_out_is_the_public_one() -> None:
    """`fan_out_now` reads `conn._state` (no property call per delivery)."""
    from websockets.protocol import State
    from websockets.server import ServerProtocol

    conn = ServerProtocol()
    assert conn._state is conn.state
    conn.state = State.OPEN
    assert conn._state is State.OPEN
