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

    def send_all_now(self, frames: tuple[bytes, ...]) -> bool:
        if self.takes is None:
            raise ConnectionError("gone")
        if self.takes:
            self.sent.extend(frames)
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


class _Conn:
    def __init__(self) -> None:
        from websockets.protocol import State

        self._state = State.OPEN


class _LeanSocket:
    """What `fan_out_all_now` reads of a `LeanWebSocketProtocol`: open, never paused."""

    def __init__(self) -> None:
        from syncd.transport.lean_protocol import _OPEN

        self.close_sent = False
        self.disconnected = False
        self.writable = _OPEN
        self.conn = _Conn()
        self.transport = self
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


def test_a_pass_of_several_frames_is_one_write_per_peer_in_one_call() -> None:
    """`fan_out_all_now`: every peer but the sole origin gets `shared` in one write, the
    sole origin `mine`, a channel of another endpoint its `send_all_now`."""
    import math

    from syncd.auth import Principal
    from syncd.transport.lean_protocol import binary_frames
    from syncd.transport.websocket import AsgiChannel, fan_out_all_now

    async def no_send(message: object) -> None:
        raise AssertionError("never paused")

    principal = Principal(
        user_id="u", name=None, email=None, roles=(), expires_at=math.inf, token_id=None
    )
    sockets = [_LeanSocket() for _ in range(3)]
    channels: list[Any] = []
    for sock in sockets:
        channel = AsgiChannel(no_send, principal)
        channel._socket = sock  # type: ignore[assignment]
        channels.append(channel)
    other = SendNowChannel(False)  # not taken now: owed what it was to get
    peers = [Peer(channel=c, user_id="u", can_write=True) for c in [*channels, other]]
    shared = (b"\x00\x02\x01a", b"\x01\x03\x01\x01\x00")
    mine = (b"\x01\x03\x01\x01\x00",)
    unsent, failed = fan_out_all_now(peers, peers[0], shared, mine)
    assert unsent == [peers[3]] and failed is None
    assert sockets[0].written == [binary_frames(mine)]
    assert sockets[1].written == sockets[2].written == [binary_frames(shared)]


def test_the_generic_fan_out_of_several_frames() -> None:
    from syncd.room.fanout import send_all_each_now

    channels = [SendNowChannel(takes) for takes in (True, False, None, True)]
    peers = [Peer(channel=c, user_id=f"u{i}", can_write=True) for i, c in enumerate(channels)]  # type: ignore[arg-type]
    unsent, failed = send_all_each_now(peers, peers[3], (b"a", b"b"), ())
    assert unsent == [peers[1]] and failed == [peers[2]]
    assert channels[0].sent == [b"a", b"b"] and channels[3].sent == []
