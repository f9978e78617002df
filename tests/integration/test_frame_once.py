"""Frames written straight to the transport (`LeanWebSocketProtocol.write_binary`): a real
uvicorn server with syncd's protocol class and a real WebSocket client, no mocks."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from syncd import metrics
from syncd.auth import Principal
from syncd.room import Peer
from syncd.transport.lean_protocol import LeanWebSocketProtocol, binary_frame, binary_frames
from syncd.transport.websocket import AsgiChannel, fan_out_now
from tests.support.polling import eventually
from tests.unit.test_room_fanout import SendNowChannel

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 200_000]
PRINCIPAL = Principal("u1", None, None, (), 2e9, None)


def _parse(frame: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(frame)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False, max_size=None)
    try:
        next(parser)
    except StopIteration as done:
        parsed: Frame = done.value
        return parsed
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", SIZES)
def test_a_binary_frame_is_what_rfc_6455_reads(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    parsed = _parse(binary_frame(payload))
    assert parsed.opcode is Opcode.BINARY and parsed.fin and parsed.data == payload
    assert binary_frame(payload) is binary_frame(payload)  # framed once per payload


def test_two_payloads_sent_in_turn_to_every_peer_are_framed_once_each() -> None:
    update, cursor, third = b"\x00\x02\x01u", b"\x01\x05cursor", b"\x00\x02\x01x"
    first = binary_frame(update), binary_frame(cursor)
    for _ in range(10):  # each peer: the pass's update, then its cursor move
        assert binary_frame(update) is first[0] and binary_frame(cursor) is first[1]
    assert _parse(binary_frame(third)).data == third  # a third payload evicts the older
    assert binary_frame(cursor) is first[1] and binary_frame(update) is not first[0]
    assert _parse(binary_frame(update)).data == update


def test_several_payloads_join_into_consecutive_frames_built_once_per_tuple() -> None:
    payloads = (b"\x00\x02\x01u", b"\x01" + bytes(300), b"")
    joined = binary_frames(payloads)
    assert joined == b"".join(binary_frame(p) for p in payloads)
    assert binary_frames(payloads) is joined  # the same tuple, for every peer of a pass
    assert binary_frames(tuple(payloads)[:2]) != joined


class _App:
    """Accepts, then sends what the test asks through an `AsgiChannel`."""

    def __init__(self) -> None:
        self.channels: asyncio.Queue[tuple[AsgiChannel, Any]] = asyncio.Queue()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        channel = AsgiChannel(send, PRINCIPAL)
        await self.channels.put((channel, send.__self__))
        while (await receive())["type"] != "websocket.disconnect":
            pass


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[_App, int]]:
    """uvicorn with syncd's protocol class; `@pytest.mark.ping(interval, timeout)` sets
    its keepalive (uvicorn's defaults otherwise)."""
    app = _App()
    ping = request.node.get_closest_marker("ping")
    keepalive = {"ws_ping_interval": ping.args[0], "ws_ping_timeout": ping.args[1]} if ping else {}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws=LeanWebSocketProtocol,
        ws_per_message_deflate=False,
        lifespan="off",
        log_level="warning",
        **keepalive,
    )
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve())

    async def started() -> bool:
        return bool(instance.started)

    await eventually(started, timeout=10, what="the server")
    try:
        yield app, port
    finally:
        instance.should_exit = True
        async with asyncio.timeout(10):
            await task


async def test_frames_go_straight_to_the_transport_and_arrive_whole(
    server: tuple[_App, int],
) -> None:
    app, port = server
    async with connect(f"ws://127.0.0.1:{port}/", max_size=None) as client:
        async with asyncio.timeout(10):
            channel, protocol = await app.channels.get()
        assert isinstance(protocol, LeanWebSocketProtocol)
        payloads = [bytes([i % 251]) * size for i, size in enumerate(SIZES)]
        for payload in payloads:
            assert protocol.write_binary(payload)  # open and not paused: written now
            await channel.send(payload)  # the channel takes the same path
        async with asyncio.timeout(10):
            for payload in payloads:
                assert await client.recv() == payload
                assert await client.recv() == payload


async def test_a_paused_or_closed_transport_is_left_to_the_asgi_send(
    server: tuple[_App, int],
) -> None:
    app, port = server
    async with connect(f"ws://127.0.0.1:{port}/") as client:
        async with asyncio.timeout(10):
            channel, protocol = await app.channels.get()
        protocol.pause_writing()
        assert not protocol.write_binary(b"\x00\x02\x01a")
        sent = asyncio.create_task(channel.send(b"\x00\x02\x01b"))
        for _ in range(10):  # loop turns, not time: only resume_writing can wake it
            await asyncio.sleep(0)
        assert not sent.done()  # the ASGI send waits out the pause: backpressure holds
        protocol.resume_writing()
        async with asyncio.timeout(10):
            await sent
            assert await client.recv() == b"\x00\x02\x01b"
        await channel.close(1000)
        assert not protocol.write_binary(b"\x00\x02\x01c")


class _Recorder:
    """A `FrameHandler` that records what an adopted connection hands it."""

    def __init__(self) -> None:
        self.bursts: list[list[bytes | str]] = []
        self.ended = asyncio.Event()

    def frames_received(self, frames: list[bytes | str]) -> None:
        assert not self.ended.is_set(), "a message after the end"
        self.bursts.append(frames)

    def disconnected(self) -> None:
        self.ended.set()


async def test_an_adopted_connection_gets_one_burst_per_read_and_then_its_end(
    server: tuple[_App, int],
) -> None:
    app, port = server
    client = await connect(f"ws://127.0.0.1:{port}/")
    async with asyncio.timeout(10):
        channel, protocol = await app.channels.get()
    recorder = _Recorder()
    assert protocol.adopt(recorder)
    assert not protocol.adopt(_Recorder())  # once
    frames = [bytes([0, 2, 1, i]) for i in range(20)]
    for frame in frames:
        client.protocol.send_binary(frame)
    client.protocol.send_text(b"text")
    client.protocol.send_close(1000)
    client.transport.write(b"".join(client.protocol.data_to_send()))  # one write
    async with asyncio.timeout(10):
        await recorder.ended.wait()
    assert recorder.bursts == [[*frames, "text"]]  # one read, in order, before the end
    assert channel.socket is protocol

    async def app_returned() -> bool:
        return protocol.scope is None  # the ASGI coroutine ended; the connection did not

    await eventually(app_returned, timeout=10, what="the app's coroutine to return")
    assert not set(LeanWebSocketProtocol._SHED) & set(vars(protocol))  # shed, defaults read


@pytest.mark.ping(0.1, 0.2)
async def test_one_sweep_pings_every_connection_and_fails_the_silent_ones(
    server: tuple[_App, int],
) -> None:
    app, port = server
    answering = await connect(f"ws://127.0.0.1:{port}/")  # answers pings by itself
    silent = await connect(f"ws://127.0.0.1:{port}/")
    async with asyncio.timeout(10):
        _, kept = await app.channels.get()
        _, failed = await app.channels.get()
    assert kept.ping_timer is None and failed.ping_timer is None  # no timer of their own
    silent.transport.pause_reading()  # reads nothing more: no pong goes back

    async def failed_with_1011() -> bool:
        sent = failed.conn.close_sent
        return failed.close_sent and sent is not None and sent.code == 1011

    await eventually(failed_with_1011, timeout=10, what="the silent connection to be failed")

    async def answered_pings() -> bool:
        return kept.last_ping_rtt > 0 and not kept.close_sent

    await eventually(answered_pings, timeout=10, what="the answering connection pinged")
    await answering.close()


class _CountingTransport:
    """Wraps a real transport to count its `write` calls (each one `write()` syscall)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_several_frames_go_out_in_one_transport_write_and_arrive_in_order(
    server: tuple[_App, int],
) -> None:
    app, port = server
    async with connect(f"ws://127.0.0.1:{port}/", max_size=None) as client:
        async with asyncio.timeout(10):
            channel, protocol = await app.channels.get()
        counting = _CountingTransport(protocol.transport)
        protocol.transport = counting
        frames = (b"\x00\x02\x01u", bytes(70_000), b"\x01\x05cursor")
        assert channel.send_all_now(frames)
        assert counting.writes == 1
        async with asyncio.timeout(10):
            for frame in frames:
                assert await client.recv() == frame
        protocol.pause_writing()
        assert not channel.send_all_now(frames)  # paused: nothing written, left to `send`
        assert counting.writes == 1
        protocol.resume_writing()
        protocol.transport = counting.inner


async def test_plain_frames_and_every_other_kind_mixed_in_reads_arrive_in_order(
    server: tuple[_App, int],
) -> None:
    """Plain binary frames (split without `websockets`' parser) mixed with a ping, a
    fragmented message, 16-bit and 64-bit lengths, in one write and then byte by byte:
    every message arrives whole and in order, the ping is answered, the close is clean."""
    app, port = server
    client = await connect(f"ws://127.0.0.1:{port}/", max_size=None)
    async with asyncio.timeout(10):
        _, protocol = await app.channels.get()
    recorder = _Recorder()
    assert protocol.adopt(recorder)
    conn = client.protocol
    expected: list[bytes] = []
    for round_ in range(2):
        for size in (1, 125, 126, 65535, 65536):
            payload = bytes([round_, size % 251]) * (size // 2) + b"!" * (size % 2)
            conn.send_binary(payload)
            expected.append(payload)
        conn.send_ping(b"are you there")
        conn.send_binary(b"frag", fin=False)
        conn.send_continuation(b"mented", fin=True)
        expected.append(b"fragmented")
        conn.send_binary(b"\x00\x02\x01z")
        expected.append(b"\x00\x02\x01z")
        data = b"".join(conn.data_to_send())
        if round_ == 0:
            client.transport.write(data)  # one write
        else:
            for index in range(len(data)):  # one byte per write
                client.transport.write(data[index : index + 1])
    async with asyncio.timeout(10):
        await (await client.ping(b"mine"))  # answered after everything written before it

        async def all_arrived() -> bool:
            return sum(len(burst) for burst in recorder.bursts) >= len(expected)

        await eventually(all_arrived, timeout=10, what="every message")
    assert [message for burst in recorder.bursts for message in burst] == expected
    await client.close()
    async with asyncio.timeout(10):
        await recorder.ended.wait()
    assert client.close_code == 1000


async def test_a_fan_out_pass_writes_each_open_peer_once_and_counts_each_delivery(
    server: tuple[_App, int],
) -> None:
    app, port = server
    async with (
        connect(f"ws://127.0.0.1:{port}/") as first,
        connect(f"ws://127.0.0.1:{port}/") as paused,
        connect(f"ws://127.0.0.1:{port}/") as closed,
    ):
        lean = []
        async with asyncio.timeout(10):
            for _ in range(3):
                lean.append(await app.channels.get())
        ports = [
            client.transport.get_extra_info("sockname")[1] for client in (first, paused, closed)
        ]
        by_port = {pair[1].transport.get_extra_info("peername")[1]: pair for pair in lean}
        (open_channel, _), (paused_channel, paused_protocol), (closed_channel, _) = (
            by_port[port_] for port_ in ports
        )
        paused_protocol.pause_writing()
        await closed_channel.close(1000)
        takes, refuses, gone = SendNowChannel(True), SendNowChannel(False), SendNowChannel(None)
        peers = [
            Peer(channel=channel, user_id=f"u{i}", can_write=True)  # type: ignore[arg-type]
            for i, channel in enumerate(
                (open_channel, paused_channel, closed_channel, takes, refuses, gone, open_channel)
            )
        ]
        skip = peers[6]  # the pass's sole origin: its own update is not echoed
        frame = b"\x00\x02\x01q"
        entry = metrics._pending_frames.setdefault(("out", "update"), [0, 0])
        before = list(entry)
        unsent, failed = fan_out_now(peers, skip, frame)
        assert unsent == [peers[1], peers[4]]  # paused, and a channel that did not take it
        assert failed == [peers[5]]
        assert takes.sent == [frame]
        # counted once, for the open lean peer (the other endpoint's channel counts its
        # own); the closed one is dropped unsent, as `send_now` drops it
        assert entry[0] - before[0] == 1 and entry[1] - before[1] == len(frame)
        async with asyncio.timeout(10):
            assert await first.recv() == frame
        paused_protocol.resume_writing()
