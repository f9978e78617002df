"""The plain client frames of a read are split without `websockets`' parser
(`syncd.transport.client_frames`), and an adopted connection hands its handler, writes and
refuses exactly what it did with every frame parsed by `websockets`: any mix of frames,
cut into reads anywhere, goes through both ways and the outcomes are compared."""

from __future__ import annotations

import asyncio
import base64
import itertools
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uvicorn.server import ServerState

from syncd.transport import client_frames, lean_protocol
from syncd.transport.client_frames import at_frame_boundary, plain_frames
from syncd.transport.lean_protocol import LeanWebSocketProtocol
from syncd.transport.lean_upgrade import LeanHttpToolsProtocol
from tests.support.transport import RecordingTransport

#: uvicorn's `ws_max_size` here: small, so that a frame over it is cheap to make
LIMIT = 300
_KEY = base64.b64encode(b"0123456789abcdef")
_REQUEST = (
    b"GET /ws/notes/n1 HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\n"
    b"connection: Upgrade\r\nsec-websocket-key: " + _KEY + b"\r\nsec-websocket-version: 13\r\n\r\n"
)


def frame(payload: bytes, *, first: int = 0x82, mask: bytes | None = b"\x11\x22\x33\x44") -> bytes:
    """One frame as a client writes it: `first` is FIN, RSV and opcode; masked unless
    `mask` is None; the shortest length encoding (16-bit from 126, 64-bit from 2**16)."""
    size = len(payload)
    bit = 0x80 if mask is not None else 0
    if size < 126:
        length = bytes((bit | size,))
    elif size < 1 << 16:
        length = bytes((bit | 126,)) + size.to_bytes(2, "big")
    else:
        length = bytes((bit | 127,)) + size.to_bytes(8, "big")
    if mask is None:
        return bytes((first,)) + length + payload
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((first,)) + length + mask + body


class _Handler:
    def __init__(self) -> None:
        self.bursts: list[list[bytes | str]] = []
        self.ended = False

    def frames_received(self, frames: list[bytes | str]) -> None:
        assert not self.ended
        self.bursts.append(list(frames))

    def disconnected(self) -> None:
        self.ended = True


async def _adopted() -> tuple[LeanWebSocketProtocol, _Handler, RecordingTransport]:
    """A connection through the lean handshake, adopted by a recording handler, with
    what the handshake wrote cleared."""
    handler = _Handler()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert send.__self__.adopt(handler)

    config = uvicorn.Config(
        app, ws=LeanWebSocketProtocol, ws_max_size=LIMIT, lifespan="off", log_level="error"
    )
    config.load()
    state = ServerState()
    transport = RecordingTransport()
    http = LeanHttpToolsProtocol(config, state, {})
    http.connection_made(transport)
    http.data_received(_REQUEST)
    async with asyncio.timeout(5):
        await asyncio.gather(*state.tasks)
    protocol = transport.protocol
    assert isinstance(protocol, LeanWebSocketProtocol)
    del transport.written[:]
    return protocol, handler, transport


async def _outcome(reads: list[bytes], *, fast: bool) -> tuple[Any, ...]:
    """What a connection did with `reads`: messages per read, bytes written, closing."""
    protocol, handler, transport = await _adopted()
    original = lean_protocol.at_frame_boundary
    if not fast:
        lean_protocol.at_frame_boundary = lambda conn: False  # type: ignore[assignment]
    try:
        for data in reads:
            protocol.data_received(data)
    finally:
        lean_protocol.at_frame_boundary = original
    if protocol.close_timer is not None:
        protocol.close_timer.cancel()
    messages = [message for burst in handler.bursts for message in burst]
    return messages, bytes(transport.written), protocol.close_sent, transport.eof


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


_payloads = st.binary(max_size=40) | st.sampled_from([b"", b"x" * 125, b"y" * 126, b"z" * LIMIT])
_frames = st.one_of(
    _payloads.map(frame),  # plain: most of every stream
    _payloads.map(frame),
    _payloads.map(frame),
    st.just(frame(b"p", first=0x89)),  # ping: answered with a pong
    st.just(frame(b"", first=0x8A)),  # pong (unsolicited)
    st.just(frame(b"text", first=0x81)),
    st.just(frame(b"ab", first=0x02) + frame(b"cd", first=0x80)),  # fragmented binary
    st.just(frame(b"q", first=0xC2)),  # RSV1 without an extension: 1002
    st.just(frame(b"u", mask=None)),  # unmasked: 1002
    st.just(frame(b"w" * (LIMIT + 1))),  # over the limit: 1009
    st.just(frame(b"", first=0x88)),  # close
    st.just(frame(b"s", first=0x83)),  # reserved opcode: 1002
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(_frames, min_size=1, max_size=12), cuts=st.lists(st.integers(0, 4000)))
def test_any_frames_cut_anywhere_come_out_as_websockets_parses_them(
    frames: list[bytes], cuts: list[int]
) -> None:
    reads = _split(b"".join(frames), cuts)

    async def both() -> tuple[Any, Any]:
        return await _outcome(reads, fast=True), await _outcome(reads, fast=False)

    fast, reference = asyncio.run(both())
    assert fast == reference


async def test_the_plain_frames_of_a_read_skip_the_parser_and_arrive_as_one_burst() -> None:
    protocol, handler, transport = await _adopted()
    payloads = [b"\x00\x02\x01a", b"", b"b" * 125, b"c" * 126, b"d" * LIMIT]
    parsed_before = protocol.conn.parser
    protocol.data_received(b"".join(frame(p) for p in payloads))
    assert handler.bursts == [payloads]
    assert protocol.conn.parser is parsed_before and at_frame_boundary(protocol.conn)
    assert not transport.written and not protocol.close_sent


async def test_a_frame_cut_after_its_header_is_finished_by_the_parser() -> None:
    protocol, handler, _ = await _adopted()
    whole = frame(b"0123456789")
    protocol.data_received(frame(b"first") + whole[:6])  # header and mask, no payload yet
    assert handler.bursts == [[b"first"]]
    # websockets took the header: its buffer is empty but it is inside a frame
    assert not protocol.conn.reader.buffer
    assert not at_frame_boundary(protocol.conn)
    protocol.data_received(whole[6:] + frame(b"next"))
    assert handler.bursts == [[b"first"], [b"0123456789", b"next"]]
    assert at_frame_boundary(protocol.conn)


async def test_plain_frames_before_a_refused_one_are_kept_and_the_close_is_1009() -> None:
    protocol, handler, transport = await _adopted()
    protocol.data_received(frame(b"ok") + frame(b"x" * (LIMIT + 1)) + frame(b"after"))
    assert handler.bursts == [[b"ok"]]
    assert protocol.close_sent
    assert transport.written[0] == 0x88 and transport.written[2:4] == b"\x03\xf1"  # close 1009
    if protocol.close_timer is not None:
        protocol.close_timer.cancel()


@pytest.mark.parametrize(
    "data",
    [
        frame(b"x", first=0x81),  # text
        frame(b"x", first=0x02),  # not final
        frame(b"x", first=0x92),  # RSV3
        frame(b"x", first=0x89),  # ping
        frame(b"x", mask=None),
        frame(b"x" * 70_000),  # 64-bit length
        frame(b"x" * 200)[:-1],  # incomplete
        frame(b"x" * 200)[:3],  # 16-bit length cut
        b"\x82\x81\x00",  # shorter than a header and mask
    ],
)
def test_anything_but_a_complete_plain_frame_is_left_to_websockets(data: bytes) -> None:
    out: list[bytes | str] = []
    assert plain_frames(data, None, out) == 0
    assert out == []


def test_the_size_limit_leaves_a_larger_frame_to_websockets() -> None:
    out: list[bytes | str] = []
    data = frame(b"a" * 10) + frame(b"b" * 11)
    assert plain_frames(data, 10, out) == len(frame(b"a" * 10))
    assert out == [b"a" * 10]
    assert client_frames.plain_frames(data, None, out) == len(data)
