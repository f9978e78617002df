"""The lean WebSocket handshake (`syncd.transport.lean_upgrade`) takes only a plain
upgrade of the sync path, answers it as uvicorn + `websockets` would, and leaves every
other request to uvicorn's own path (the HTTP protocol driven with a fake transport)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.server import ServerState
from websockets.utils import accept_key

from syncd.transport.lean_protocol import (
    HEADER_NAME,
    HEADER_VALUE,
    LeanWebSocketProtocol,
    binary_frame,
)
from syncd.transport.lean_upgrade import LeanHttpToolsProtocol, plain_upgrade
from tests.support.transport import RecordingTransport

KEY = base64.b64encode(b"0123456789abcdef").decode()
PLAIN = [
    (b"host", b"127.0.0.1"),
    (b"upgrade", b"websocket"),
    (b"connection", b"Upgrade"),
    (b"sec-websocket-key", KEY.encode()),
    (b"sec-websocket-version", b"13"),
    (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
    (b"origin", b"https://elsewhere.example"),
]
URL = b"/ws/notes/n1?token=abc"


def _with(name: bytes, value: bytes | None) -> list[tuple[bytes, bytes]]:
    """PLAIN with header `name` set to `value` (None: removed)."""
    headers = [(n, v) for n, v in PLAIN if n != name]
    return headers if value is None else [*headers, (name, value)]


def test_a_plain_upgrade_of_the_sync_path_is_taken() -> None:
    assert plain_upgrade("GET", "1.1", URL, PLAIN) == KEY
    assert plain_upgrade("GET", "1.1", URL, _with(b"connection", b"keep-alive, Upgrade")) == KEY
    assert plain_upgrade("GET", "1.1", URL, _with(b"authorization", b"Bearer x")) == KEY


@pytest.mark.parametrize(
    ("case", "method", "version", "url", "headers"),
    [
        ("HTTP/1.0", "GET", "1.0", URL, PLAIN),
        ("POST", "POST", "1.1", URL, PLAIN),
        ("another path", "GET", "1.1", b"/ws/hocuspocus", PLAIN),
        ("absolute target", "GET", "1.1", b"http://h/ws/notes/n1", PLAIN),
        ("fragment", "GET", "1.1", b"/ws/notes/n1#x", PLAIN),
        ("non-ASCII target", "GET", "1.1", "/ws/notes/né".encode(), PLAIN),
        ("target too long", "GET", "1.1", b"/ws/notes/" + b"a" * 8200, PLAIN),
        ("no key", "GET", "1.1", URL, _with(b"sec-websocket-key", None)),
        ("key not base64", "GET", "1.1", URL, _with(b"sec-websocket-key", b"not base64!")),
        ("key of 8 bytes", "GET", "1.1", URL, _with(b"sec-websocket-key", b"MDEyMzQ1Njc=")),
        ("two keys", "GET", "1.1", URL, [*PLAIN, (b"sec-websocket-key", KEY.encode())]),
        ("version 12", "GET", "1.1", URL, _with(b"sec-websocket-version", b"12")),
        ("no version", "GET", "1.1", URL, _with(b"sec-websocket-version", None)),
        ("upgrade h2c", "GET", "1.1", URL, _with(b"upgrade", b"h2c")),
        ("two upgrades", "GET", "1.1", URL, [*PLAIN, (b"upgrade", b"websocket")]),
        ("no connection upgrade", "GET", "1.1", URL, _with(b"connection", b"keep-alive")),
        ("subprotocol", "GET", "1.1", URL, _with(b"sec-websocket-protocol", b"y")),
        ("a body", "GET", "1.1", URL, _with(b"content-length", b"3")),
        ("chunked", "GET", "1.1", URL, _with(b"transfer-encoding", b"chunked")),
        ("bad header name", "GET", "1.1", URL, [*PLAIN, (b"x(y)", b"1")]),
        ("control character", "GET", "1.1", URL, [*PLAIN, (b"x-y", b"a\x01b")]),
        ("129 headers", "GET", "1.1", URL, PLAIN + [(b"x-n", b"1")] * 122),
        ("header too long", "GET", "1.1", URL, [*PLAIN, (b"x-n", b"v" * 8200)]),
    ],
)
def test_anything_unusual_is_left_to_uvicorn(
    case: str, method: str, version: str, url: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    assert plain_upgrade(method, version, url, headers) is None, case


def _request(headers: list[tuple[bytes, bytes]], url: bytes = URL) -> bytes:
    lines = [b"GET " + url + b" HTTP/1.1", *(n + b": " + v for n, v in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _handshake(
    request: bytes, first: dict[str, Any]
) -> tuple[RecordingTransport, dict[str, Any], list[str]]:
    """Feed `request` to the HTTP protocol of an app that answers with `first`; return
    the transport, the scope the app saw and the types of the app's messages sent."""
    seen: dict[str, Any] = {}
    done = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)
        assert (await receive())["type"] == "websocket.connect"
        await send(first)
        done.set()

    config = uvicorn.Config(
        app, ws=LeanWebSocketProtocol, ws_per_message_deflate=False, lifespan="off"
    )
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Sun, 06 Dec 2026 18:00:00 GMT"), (b"server", b"uvicorn")]
    transport = RecordingTransport()
    http = LeanHttpToolsProtocol(config, state, {})
    http.connection_made(transport)
    http.data_received(request)
    async with asyncio.timeout(5):
        await done.wait()
    return transport, seen, [type(transport.protocol).__name__]


async def test_the_lean_path_builds_the_scope_and_the_101() -> None:
    transport, scope, _ = await _handshake(_request(PLAIN), {"type": "websocket.accept"})
    protocol = transport.protocol
    assert isinstance(protocol, LeanWebSocketProtocol)
    assert protocol._accept is None and protocol.handshake_complete
    assert scope["path"] == "/ws/notes/n1" and scope["raw_path"] == b"/ws/notes/n1"
    assert scope["query_string"] == b"token=abc"
    assert (b"origin", b"https://elsewhere.example") in scope["headers"]
    assert scope["subprotocols"] == [] and scope["type"] == "websocket"
    assert bytes(transport.written) == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(KEY).encode() + b"\r\n"
        b"date: Sun, 06 Dec 2026 18:00:00 GMT\r\nserver: uvicorn\r\n\r\n"
    )


async def test_the_lean_and_the_uvicorn_path_answer_alike() -> None:
    """The same request, once lean and once through `websockets` (a subprotocol offer
    the app does not take sends it there): the same 101, byte for byte."""
    lean, _, _ = await _handshake(_request(PLAIN), {"type": "websocket.accept"})
    offered = _with(b"sec-websocket-protocol", b"unused")
    stock, scope, _ = await _handshake(_request(offered), {"type": "websocket.accept"})
    assert stock.protocol._accept is None and scope["subprotocols"] == ["unused"]
    assert bytes(lean.written) == bytes(stock.written)


async def test_the_lean_path_reports_the_addresses_uvicorn_does() -> None:
    """The addresses handed over from the HTTP protocol (not looked up again) are the
    ones uvicorn's path asks the transport for."""
    _, lean, _ = await _handshake(_request(PLAIN), {"type": "websocket.accept"})
    offered = _with(b"sec-websocket-protocol", b"unused")
    _, stock, _ = await _handshake(_request(offered), {"type": "websocket.accept"})
    for key in ("client", "server", "scheme"):
        assert lean[key] == stock[key]
    assert lean["client"] == ("127.0.0.1", 5000) and lean["scheme"] == "ws"


async def test_a_close_before_accept_is_a_403_on_both_paths() -> None:
    lean, _, _ = await _handshake(_request(PLAIN), {"type": "websocket.close"})
    offered = _with(b"sec-websocket-protocol", b"unused")
    stock, _, _ = await _handshake(_request(offered), {"type": "websocket.close"})
    for transport in (lean, stock):
        assert bytes(transport.written).startswith(b"HTTP/1.1 403 Forbidden\r\n")
        assert transport.closed


async def test_a_bad_key_gets_the_400_of_websockets() -> None:
    headers = _with(b"sec-websocket-key", b"not base64!")
    transport = RecordingTransport()
    config = uvicorn.Config(lambda *a: None, ws=LeanWebSocketProtocol, lifespan="off")
    config.load()
    http = LeanHttpToolsProtocol(config, ServerState(), {})
    http.connection_made(transport)
    http.data_received(_request(headers))
    assert bytes(transport.written).startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert transport.closed


class _Handler:
    """Records what an adopted connection hands over."""

    def __init__(self) -> None:
        self.frames: list[bytes | str] = []
        self.ended = False

    def frames_received(self, frames: list[bytes | str]) -> None:
        self.frames.extend(frames)

    def disconnected(self) -> None:
        self.ended = True


async def test_an_adopted_lean_connection_keeps_a_small_dict_and_still_works() -> None:
    handler = _Handler()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert send.__self__.adopt(handler)

    config = uvicorn.Config(app, ws=LeanWebSocketProtocol, lifespan="off")
    config.load()
    state = ServerState()
    transport = RecordingTransport()
    http = LeanHttpToolsProtocol(config, state, {})
    http.connection_made(transport)
    http.data_received(_request(PLAIN))
    async with asyncio.timeout(5):
        await asyncio.gather(*state.tasks)  # the app's task: adopts, returns, sheds
    protocol = transport.protocol
    # at most what a 32-slot dict holds (lean_protocol._SHED_AT_DEFAULT)
    assert len(protocol.__dict__) <= 21, sorted(protocol.__dict__)
    mask = b"\x01\x02\x03\x04"
    payload = b"\x00\x00\x01\x00"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    protocol.data_received(b"\x82\x84" + mask + masked)
    assert handler.frames == [payload]
    assert not protocol.close_sent and not protocol.disconnected
    protocol.connection_lost(None)
    assert handler.ended and protocol.disconnected


@settings(max_examples=500)
@given(st.binary(max_size=12), st.binary(max_size=12))
def test_header_bytes_are_checked_as_websockets_patterns_do(name: bytes, value: bytes) -> None:
    """The translate-based check of `plain_upgrade` agrees with `HEADER_NAME` and
    `HEADER_VALUE`, on arbitrary bytes."""
    expected = bool(HEADER_NAME.fullmatch(name)) and bool(HEADER_VALUE.fullmatch(value))
    taken = plain_upgrade("GET", "1.1", URL, [*PLAIN, (name, value)]) is not None
    duplicate = name.lower() in {n for n, _ in PLAIN} or name in {
        b"sec-websocket-protocol",
        b"content-length",
        b"transfer-encoding",
    }
    if not duplicate:
        assert taken == expected


DATE = (b"date", b"Sun, 06 Dec 2026 18:00:00 GMT")
STEP1 = b"\x00\x00\x01\x00"
AWARENESS = b"\x01\x05\x01\x07\x01\x02{}"


def _the_101(*headers: tuple[bytes, bytes]) -> bytes:
    lines = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(KEY).encode() + b"\r\n" + lines + b"\r\n"
    )


async def _run_lean(app: Any, state: ServerState | None = None) -> RecordingTransport:
    """A plain upgrade through the lean path to `app`; the transport once the app's task
    is done."""
    config = uvicorn.Config(
        app, ws=LeanWebSocketProtocol, ws_per_message_deflate=False, lifespan="off"
    )
    config.load()
    state = state or ServerState()
    transport = RecordingTransport()
    http = LeanHttpToolsProtocol(config, state, {})
    http.connection_made(transport)
    http.data_received(_request(PLAIN))
    async with asyncio.timeout(5):
        await asyncio.gather(*state.tasks)
    return transport


def _masked(opcode: int, payload: bytes) -> bytes:
    """One masked client frame."""
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked


async def test_accept_with_writes_the_101_and_the_first_frames_at_once() -> None:
    """The 101, sync step 1 and the awareness frame are one transport write; a ping the
    client sends once it has them is answered after them."""
    handler = _Handler()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        protocol = send.__self__
        assert protocol.lean_pending
        protocol.accept_with([STEP1, AWARENESS])
        assert not protocol.lean_pending and protocol.handshake_complete
        assert protocol.adopt(handler)

    state = ServerState()
    state.default_headers = [DATE, (b"server", b"uvicorn")]
    transport = await _run_lean(app, state)
    assert transport.writes == [
        _the_101(DATE, (b"server", b"uvicorn")) + binary_frame(STEP1) + binary_frame(AWARENESS)
    ]
    transport.protocol.data_received(_masked(0x9, b"ping") + _masked(0x2, STEP1))
    assert transport.writes[1:] == [b"\x8a\x04ping"]  # the pong, after the 101 and frames
    assert handler.frames == [STEP1]


async def test_refuse_writes_the_101_and_the_close_frame_at_once() -> None:
    """A refusal after the handshake: one write holding the 101 and the close frame with
    the code; the connection then waits for the client's close and closes the socket."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        send.__self__.refuse(4401, "no token")

    state = ServerState()
    state.default_headers = [DATE]
    transport = await _run_lean(app, state)
    close = b"\x88\x0a" + (4401).to_bytes(2, "big") + b"no token"
    assert transport.writes == [_the_101(DATE) + close]
    protocol = transport.protocol
    assert protocol.close_sent and protocol.close_timer is not None and not transport.closed
    protocol.data_received(_masked(0x8, (4401).to_bytes(2, "big")))
    assert transport.closed


async def test_accept_with_refuses_what_is_not_a_waiting_lean_handshake() -> None:
    """A client gone before the accept: `ClientDisconnected`, as ASGI `send` raises, and
    nothing written; an accepted connection cannot be accepted again."""
    outcomes: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        protocol = send.__self__
        protocol.connection_lost(None)
        try:
            protocol.accept_with([STEP1])
        except ClientDisconnected:
            outcomes.append("disconnected")

    transport = await _run_lean(app)
    assert outcomes == ["disconnected"] and transport.writes == []

    async def twice(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        send.__self__.accept_with([STEP1])
        with pytest.raises(RuntimeError):
            send.__self__.accept_with([STEP1])
        outcomes.append("accepted once")

    transport = await _run_lean(twice)
    assert outcomes[-1] == "accepted once" and len(transport.writes) == 1

    async def refused_after_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        send.__self__.accept_with([STEP1])
        with pytest.raises(RuntimeError):
            send.__self__.refuse(4401, "late")
        outcomes.append("not refused")

    transport = await _run_lean(refused_after_accept)
    assert outcomes[-1] == "not refused" and len(transport.writes) == 1


async def test_accept_with_writes_nothing_to_a_closing_transport() -> None:
    """As uvicorn's accept: no 101 (and no frames) once the transport is closing."""
    written: list[list[bytes]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        transport = send.__self__.transport
        transport.closed = True
        send.__self__.accept_with([STEP1])
        written.append(list(transport.writes))
        assert not send.__self__.handshake_complete

    await _run_lean(app)
    assert written == [[]]


async def test_the_101_follows_the_servers_date_and_carries_the_apps_headers() -> None:
    """The default headers' lines are reused while uvicorn's list is the same, and a new
    list (the next second's date) is serialised again; the app's headers follow them."""
    state = ServerState()
    later = (b"date", b"Sun, 06 Dec 2026 18:00:01 GMT")
    extra = [(b"X-Extra", b"1")]
    for date in (DATE, DATE, later):
        state.default_headers = [date]
        transport = await _run_lean(
            _answering({"type": "websocket.accept", "headers": extra}), state
        )
        assert transport.writes == [_the_101(date, (b"x-extra", b"1"))]


def _answering(first: dict[str, Any]) -> Any:
    """An app that answers the connect with `first`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send(first)

    return app
