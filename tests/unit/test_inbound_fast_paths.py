"""The inbound fast paths of `SyncEndpoint.receive_frame`: a keystroke's frame and a
cursor move take shortcuts that must end where `parse_message` + `Room.handle` end."""

from __future__ import annotations

import asyncio
import math

from pycrdt import Doc, Text

from syncd import metrics
from syncd.auth import Principal
from syncd.protocol import (
    AwarenessEntry,
    encode_awareness,
    encode_awareness_update,
    encode_update,
)
from syncd.room import Peer, Room
from syncd.transport.websocket import AsgiChannel, SyncEndpoint
from tests.unit.test_room import MemoryLog


async def _no_send(message: object) -> None:
    pass


def _peer(user: str) -> tuple[Peer, AsgiChannel]:
    principal = Principal(
        user_id=user, name=None, email=None, roles=(), expires_at=math.inf, token_id=None
    )
    channel = AsgiChannel(_no_send, principal)
    return Peer(channel=channel, user_id=user, can_write=True), channel


def _keystrokes(count: int, size: int = 1) -> list[bytes]:
    doc = Doc(client_id=42)
    text = doc.get("text", type=Text)
    made = []
    for _ in range(count):
        state = doc.get_state()
        text.insert(len(text), "x" * size)
        made.append(encode_update(doc.get_update(state)))
    return made


def _endpoint() -> SyncEndpoint:
    # only `receive_frame` is used: it needs none of the endpoint's services
    return SyncEndpoint(None, None, None, max_message_bytes=1024 * 1024)  # type: ignore[arg-type]


async def test_keystrokes_and_long_updates_are_counted_applied_and_queued() -> None:
    endpoint, room = _endpoint(), Room("n", MemoryLog())
    room.load([])
    writer, channel = _peer("w")
    room.join(writer)
    short = _keystrokes(3)
    long = _keystrokes(1, size=200)[0]  # a two-byte length: the general path
    assert short[0][2] == len(short[0]) - 3 and long[2] >= 0x80
    entry = metrics.pending_entry("in", "update")
    before = list(entry)
    for frame in short:
        assert endpoint.receive_frame(room, writer, channel, None, frame) == []
    assert entry[0] - before[0] == 3
    assert entry[1] - before[1] == sum(len(frame) for frame in short)
    assert str(room.doc.get("text", type=Text)) == "xxx"
    assert [update for _, update in room._pending] == [frame[3:] for frame in short]
    await room.drain()


async def test_a_malformed_short_update_closes_the_connection_as_before() -> None:
    endpoint, room = _endpoint(), Room("n", MemoryLog())
    room.load([])
    writer, channel = _peer("w")
    room.join(writer)
    sent: list[dict[str, object]] = []
    closed = asyncio.Event()

    async def send(message: dict[str, object]) -> None:
        sent.append(message)
        closed.set()

    principal = channel.principal
    channel = AsgiChannel(send, principal)
    assert endpoint.receive_frame(room, writer, channel, None, b"\x00\x02\x02\x01\x01") is None
    assert not room._pending
    await asyncio.wait_for(closed.wait(), 5)
    assert sent == [{"type": "websocket.close", "code": 4400, "reason": sent[0]["reason"]}]
    await room.drain()


async def test_a_cursor_move_is_relayed_as_the_frame_received() -> None:
    endpoint, room = _endpoint(), Room("n", MemoryLog())
    room.load([])
    writer, channel = _peer("w")
    reader, _ = _peer("r")
    room.join(writer)
    room.join(reader)
    mine = AwarenessEntry(5, 1, '{"cursor":{"anchor":1}}')
    frame = encode_awareness(encode_awareness_update([mine]))
    assert endpoint.receive_frame(room, writer, channel, None, frame) == []
    assert room._relays[-1] == (None, frame)
    assert room._relays[-1][1] is frame
    # an entry the room drops (another connection's id): the rest is encoded anew
    room._relays.clear()
    other, other_channel = _peer("o")
    room.join(other)
    theirs = AwarenessEntry(6, 1, '"x"')
    assert (
        endpoint.receive_frame(
            room, other, other_channel, None, encode_awareness(encode_awareness_update([theirs]))
        )
        == []
    )
    both = encode_awareness(encode_awareness_update([AwarenessEntry(5, 2, "1"), theirs]))
    assert endpoint.receive_frame(room, writer, channel, None, both) == []
    relayed = room._relays[-1][1]
    assert relayed == encode_awareness(encode_awareness_update([AwarenessEntry(5, 2, "1")]))
    await room.drain()
