"""uvicorn's sans-I/O WebSocket protocol, minus the handshake it keeps for life, with a
clean close when its frame parser refuses a frame, and a way to write a frame built once
for a whole room.

uvicorn's `WebSocketsSansIOProtocol` holds the parsed upgrade request and the handshake
response (each with its headers) for as long as the connection lives, though neither is
read after the 101 is sent: about 2 KB of every idle connection (tracemalloc, 2,000
connections). This subclass lets go of both once the handshake is done, in the hook
uvicorn calls exactly then, so the per-frame path is untouched.

A frame over uvicorn's `ws_max_size` (syncd's limit plus a little) is refused by the
parser as soon as its header is read, while the client is still sending it. uvicorn then
writes the close frame and closes the socket at once; with the rest of the frame still
arriving, the kernel answers with a reset, which can destroy the close frame before the
client reads it: the client saw 1006 (most tries with Node's `ws`) instead of 1009. Here
the close frame is followed by a half-close (FIN, as the sans-I/O layer asks: it queues
the end of the stream after the close frame), and reading goes on, the parser discarding
everything, until the client closes its side (or `close_timeout` passes). Nothing is left
unread, so the socket ends without a reset. The close is counted like every close syncd
sends.

Server-to-client frames are not masked (RFC 6455 5.1) and syncd runs without
permessage-deflate, so a binary message is the same bytes on every connection: a room's
fan-out builds them once (`binary_frame`) and `write_binary` puts them on each transport
directly, instead of one ASGI message, one `websockets` framing and one await per peer.

After the handshake a y-websocket connection needs no task of its own: the endpoint
`adopt`s the protocol with a `FrameHandler`, its ASGI coroutine returns, and from then on
`data_received` hands the handler every message of one TCP read as one burst (applied to
the room in one go) and the end of the connection as one call. The ASGI task with its
coroutine frames, the receive queue (four deques), the scope, the upgrade request's
headers and a `writable` event per connection are then gone: about 8 KB of every idle
connection (tracemalloc, 2,000 connections; bench/connmem.py). A connection whose handler
has to wait (a reply held until the doc is durable, a paused transport) pauses reading
until it is done, as the ASGI pump did by not calling `receive`.

A plain upgrade of the sync path does not go through `websockets`' handshake at all:
`lean_upgrade.LeanHttpToolsProtocol` checks it from the headers httptools parsed and calls
`start_upgraded`, which builds the ASGI scope; `send` writes the 101 on accept, or, from
syncd's endpoint, `accept_with` writes it in one write with the connection's first frames
(sync step 1, awareness): one `send()` syscall and TCP segment per connect instead of two
or three; `refuse` likewise writes the 101 and the close frame of a refusal (4401, 4403,
4404, 4429, ...) at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote

from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_client_addr,
    get_path_with_query_string,
)
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from syncd import metrics
from syncd.transport.client_frames import at_frame_boundary, plain_frames

__all__ = ["FrameHandler", "LeanWebSocketProtocol", "binary_frame", "binary_frames"]

log = logging.getLogger(__name__)

#: the `writable` event of every connection whose transport is not paused: one set event
#: shared by all (never cleared; a paused connection gets an event of its own)
_OPEN = asyncio.Event()
_OPEN.set()


class FrameHandler(Protocol):
    """What serves an adopted connection (the y-websocket endpoint's connection)."""

    def frames_received(self, frames: list[bytes | str]) -> None:
        """The complete messages of one read, in order (text frames as `str`)."""
        ...

    def disconnected(self) -> None:
        """The connection ended (after every message received before its end)."""
        ...


class _Events:
    """Stands in for the ASGI receive queue of an adopted connection: what uvicorn's code
    still puts there (the end of the connection) goes to the protocol's handler."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: LeanWebSocketProtocol) -> None:
        self._protocol = protocol

    def put_nowait(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.disconnect":
            self._protocol._ended()

    def empty(self) -> bool:
        return True


#: the lean handshake's 101 up to the accept key (what `websockets` writes, less its date)
_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: "
)
#: a header name and value as `websockets` lets them through (`websockets.http11`): the
#: 101's headers here, a request's in `lean_upgrade`
HEADER_NAME = re.compile(rb"[-!#$%&\'*+.^_`|~0-9a-zA-Z]+")
HEADER_VALUE = re.compile(rb"[\x09\x20-\x7e\x80-\xff]*")

#: `State.OPEN`, bound once for the per-delivery check in `write_binary`
_STATE_OPEN = State.OPEN
_FIN_BINARY = 0x82
#: the last two payloads framed and their frames, newest first: one fan-out sends one
#: payload to every peer, and a pass with a cursor move sends each peer the update and
#: then the awareness frame (one slot would frame both again for every peer)
_recent: tuple[bytes, bytes, bytes, bytes] = (b"", b"\x82\x00", b"", b"\x82\x00")


def binary_frame(payload: bytes) -> bytes:
    """`payload` as one unmasked, final binary WebSocket frame (RFC 6455 5.2).

    The frames of the last two payloads are kept: every peer of a fan-out pass is sent
    the same payload objects, so each is framed once per pass, not once per peer.
    """
    global _recent
    recent = _recent
    if recent[0] is payload:
        return recent[1]
    if recent[2] is payload:
        return recent[3]
    size = len(payload)
    if size < 126:
        header = bytes((_FIN_BINARY, size))
    elif size < 1 << 16:
        header = bytes((_FIN_BINARY, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((_FIN_BINARY, 127)) + size.to_bytes(8, "big")
    frame = header + payload
    _recent = (payload, frame, recent[0], recent[1])
    return frame


#: the last sequence of payloads joined by `binary_frames` and the bytes it made
_recent_joined: tuple[tuple[bytes, ...], bytes] = ((), b"")


def binary_frames(payloads: tuple[bytes, ...]) -> bytes:
    """`payloads` as consecutive binary frames in one bytes object, for one write.

    A fan-out pass hands every peer that gets the same frames the same tuple, so the
    last one joined is kept and reused (the tuple is immutable and held here, so its
    identity names these payloads while it is kept).
    """
    global _recent_joined
    last, joined = _recent_joined
    if last is payloads:
        return joined
    joined = b"".join([binary_frame(payload) for payload in payloads])
    _recent_joined = (payloads, joined)
    return joined


#: uvicorn's default headers (date, server) last serialised, and their lines: the server
#: replaces the list (never changes it in place) once a second, for the date
_defaults: tuple[object, bytes] = (None, b"")


def _header_lines(headers: Any, *, cache: bool = True) -> bytes:
    """`headers` (bytes pairs) as response header lines, each checked as `websockets`
    checks a response's headers. With `cache`, the lines of the last list serialised are
    reused while the same list is passed (uvicorn's default headers: the same for every
    connect within a second)."""
    global _defaults
    if cache and _defaults[0] is headers:
        return _defaults[1]
    lines = []
    for name, value in headers:
        if not HEADER_NAME.fullmatch(name) or not HEADER_VALUE.fullmatch(value):
            raise RuntimeError(f"invalid response header {name!r}")
        lines += [name, b": ", value, b"\r\n"]
    joined = b"".join(lines)
    if cache:
        _defaults = (headers, joined)
    return joined


class _Keepalive:
    """One timer for the keepalive pings of every connection of one server.

    uvicorn keeps a timer handle (with its bound method) per connection for its pings,
    about 600 bytes of every idle connection; this sweeps the server's own set of
    connections every `interval` seconds instead: a connection whose last ping is
    unanswered after `timeout` is failed with 1011, as uvicorn does, and every other one
    is pinged. A dead peer is thus found within `interval` + `timeout` (+ `interval`).

    A round is spread over `SLICES` ticks, each pinging its share of the connections
    the round started with: pinging them all in one loop turn stalled every room's
    deliveries for that turn, and the pongs then came back together (a turn of tens of
    ms with a few thousand connections; py-spy of the fanout load showed such turns).
    """

    SLICES = 20

    def __init__(self, connections: set[Any], interval: float, timeout: float | None) -> None:
        self.connections = connections
        self.interval = interval
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.active = True
        #: the connections of the running round not yet swept, and how many a tick takes
        self._round: list[LeanWebSocketProtocol] = []
        self._share = 0
        self._started = 0.0
        self._timer = self.loop.call_later(interval, self._tick)

    def _tick(self) -> None:
        if not self._round:
            self._started = self.loop.time()
            self._round = [
                protocol
                for protocol in self.connections
                if isinstance(protocol, LeanWebSocketProtocol) and protocol._swept
            ]
            if not self._round:
                self.active = False
                _keepalives.pop(id(self.connections), None)
                return
            self._share = -(-len(self._round) // self.SLICES)
        now = self.loop.time()
        share, self._round = self._round[-self._share :], self._round[: -self._share]
        for protocol in share:
            protocol._keepalive_sweep(now, self.timeout)
        if self._round:
            self._timer = self.loop.call_later(self.interval / self.SLICES, self._tick)
        else:  # the next round begins `interval` after this one did
            self._timer = self.loop.call_at(self._started + self.interval, self._tick)


#: the keepalive sweeper of each server, by the id of its set of connections
_keepalives: dict[int, _Keepalive] = {}


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    _refused = False
    _handler: FrameHandler | None = None
    #: messages of the read being parsed (adopted connections), else None
    _burst: list[bytes | str] | None = None
    #: the connection ended while a read was being parsed: told after its messages
    _ended_in_burst = False
    _gone = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writable = _OPEN

    # -- the lean handshake (syncd.transport.lean_upgrade) ----------------------------------

    #: the `Sec-WebSocket-Accept` of a handshake begun by `start_upgraded`, until the app
    #: accepts (or refuses) the connection
    _accept: str | None = None

    def start_upgraded(
        self, path: bytes, query: bytes, headers: list[tuple[bytes, bytes]], accept: str
    ) -> None:
        """Run the app for an upgrade `LeanHttpToolsProtocol` checked: what uvicorn's
        `handle_connect` does with the request `websockets` parsed again, here from the
        parts httptools parsed; the 101 goes out when the app accepts (`send`)."""
        conn = self.conn
        conn.state = State.OPEN  # no request left to parse: frames from the first byte
        conn.parser = conn.parse()
        next(conn.parser)
        self._accept = accept
        self.handshake_initiated = True
        raw_path = path.decode("ascii")
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": "",
            "path": unquote(raw_path) if "%" in raw_path else raw_path,
            "raw_path": path,
            "query_string": query,
            "headers": headers,
            "subprotocols": [],
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        self.queue.put_nowait({"type": "websocket.connect"})
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)

    @property
    def lean_pending(self) -> bool:
        """A lean handshake waits for the app's answer (`accept_with` can accept it)."""
        return self._accept is not None

    def accept_with(self, frames: list[bytes]) -> None:
        """Accept a lean handshake and send the connection's first messages (`frames`,
        binary) in the same transport write as the 101: one `send()` syscall and one TCP
        segment instead of one per message. The caller builds `frames` (joins the room)
        and calls this without an await in between, so nothing of the room's can be
        written to this connection before them.

        Raises `ClientDisconnected` when the client is gone, as ASGI `send` does; writes
        nothing when the transport is already closing (as uvicorn's accept).
        """
        if self._accept is None:
            raise RuntimeError("no lean handshake is waiting for an accept")
        if self.disconnected:
            raise ClientDisconnected()
        head = self._accepted((), None)
        if head is not None:
            self.transport.write(b"".join([head, *[binary_frame(f) for f in frames]]))
            self._opened()

    def refuse(self, code: int, reason: str) -> None:
        """Accept a lean handshake and close at once with `code` (a refusal the client can
        read, unlike a 403): the 101 and the close frame in one write, then what
        `write_close` does after its frame. Raises and writes as `accept_with`."""
        if self._accept is None:
            raise RuntimeError("no lean handshake is waiting for an accept")
        if self.disconnected:
            raise ClientDisconnected()
        head = self._accepted((), None)
        if head is None:
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join([head, *self.conn.data_to_send()]))
        self.close_sent = True
        self._opened()
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    async def send(self, message: Any) -> None:
        """uvicorn's, but the answer to the app's first message of a lean handshake is
        written here (the 101, or the 403 of a close before accept)."""
        if self._accept is None:
            await super().send(message)
            return
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        kind = message["type"]
        if kind == "websocket.accept":
            head = self._accepted(message.get("headers", ()), message.get("subprotocol"))
            if head is not None:
                self.transport.write(head)
                self._opened()
        elif kind == "websocket.close":
            self._send_403()
        else:
            self._accept = None  # a denial response: uvicorn's code needs no request for it
            await super().send(message)

    def _accepted(self, extra: Any, subprotocol: str | None) -> bytes | None:
        """The 101 `websockets` serialises for uvicorn's accept: its 101 with uvicorn's
        default headers (date, server) in place of its date, and the app's own headers
        (`extra`); None when the transport is closing (nothing is to be written)."""
        accept, self._accept = self._accept, None
        scope = self.scope
        if self.logger.isEnabledFor(logging.INFO):  # its arguments cost more than the check
            self.logger.info(
                '%s - "WebSocket %s" [accepted]',
                get_client_addr(scope),
                get_path_with_query_string(scope),
            )
        headers = [(name.lower(), value) for name, value in extra]
        if subprotocol:
            headers.append((b"Sec-WebSocket-Protocol", subprotocol.encode("latin-1")))
        lines = [_101, str(accept).encode("ascii"), b"\r\n", _header_lines(self.default_headers)]
        if headers:
            lines.append(_header_lines(headers, cache=False))
        lines.append(b"\r\n")
        if self.transport.is_closing():
            return None
        return b"".join(lines)

    def _opened(self) -> None:
        """The 101 is written: what uvicorn does once its accept is out."""
        self.handshake_complete = True
        self.conn.logger.info("connection open")
        self.start_keepalive()

    def _send_403(self) -> None:
        """uvicorn's answer to a close before accept."""
        self._accept = None
        self.queue.put_nowait({"type": "websocket.disconnect", "code": 1006})
        self.logger.info(
            '%s - "WebSocket %s" 403',
            get_client_addr(self.scope),
            get_path_with_query_string(self.scope),
        )
        response = self.conn.reject(HTTPStatus.FORBIDDEN, "")
        self.close_sent = True
        self.handshake_complete = True
        self.transport.write(response.serialize())
        self.transport.close()

    # -- task-less connections ------------------------------------------------------------

    #: What an adopted connection never reads or writes again once its ASGI coroutine has
    #: returned (uvicorn's methods that can still run were checked one by one): dropped from
    #: the instance, which then reads these class defaults. uvicorn sets some 45 attributes,
    #: past what a compact instance dict holds: 1.6 KB of every connection, 0.8 KB rebuilt
    #: without these (tracemalloc).
    #: (set on the class below the class body: the types differ from uvicorn's)
    _SHED: dict[str, Any] = {
        "app": None,
        "app_state": None,
        "asgi_version": None,
        "client": None,
        "close_timeout": 10.0,
        "config": None,
        "default_headers": None,
        "handshake_initiated": True,
        "initial_response": None,
        "logger": logging.getLogger("uvicorn.error"),
        "ping_interval": None,
        "ping_timeout": None,
        "request": None,
        "response": None,
        "root_path": "",
        "scheme": "ws",
        "scope": None,
        "server": None,
    }

    #: What an open connection writes again only once it ends (closes, is refused, is
    #: lost): dropped too while they hold these values, so the instance dict of an idle
    #: connection has at most 21 keys, the most a 32-slot dict holds (one of up to 42 is
    #: twice the size: 832 bytes, 448 with 18 keys; sys.getsizeof). A write at the end
    #: may grow the dict of a connection that is going away.
    _SHED_AT_DEFAULT: dict[str, Any] = {
        "_accept": None,
        "_ended_in_burst": False,
        "_gone": False,
        "_refused": False,
        "close_sent": False,
        "close_timer": None,
        "disconnected": False,
        "handshake_complete": True,
    }

    def _shed(self) -> None:
        """Drop `_SHED` (and `_SHED_AT_DEFAULT` where at its default) and rebuild the
        instance dict to its new size. Every attribute written while the connection is
        open is already in it (`_burst`, `ping_timer`, ...), so it does not grow back."""
        state = self.__dict__
        for name in self._SHED:
            state.pop(name, None)
        for name, default in self._SHED_AT_DEFAULT.items():
            if name in state and state[name] is default:
                del state[name]
        for name in ("_burst", "pong_timer", "ping_timer"):
            state.setdefault(name, getattr(self, name))
        self.__dict__ = dict(state)

    def adopt(self, handler: FrameHandler) -> bool:
        """Serve the rest of this connection through `handler` (module docstring); the
        caller's ASGI coroutine then returns. False (nothing changed) if the connection is
        already closing. Messages queued during the handshake go to the handler first."""
        if self.close_sent or self.disconnected or self._handler is not None:
            return False
        queued: list[bytes | str] = []
        ended = False
        while not self.queue.empty():
            message = self.queue.get_nowait()
            if message["type"] == "websocket.receive":
                data = message.get("bytes")
                queued.append(data if data is not None else message.get("text") or "")
            elif message["type"] == "websocket.disconnect":
                ended = True
        self._handler = handler
        queue, self.queue = self.queue, _Events(self)  # type: ignore[assignment]
        # An ASGI `receive` still waiting (not syncd's endpoint, which adopts from its own
        # coroutine) returns the end of the connection: the app is done with it.
        queue.put_nowait({"type": "websocket.disconnect", "code": 1000})
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        if queued:
            handler.frames_received(queued)
        if ended:
            self._ended()
        return True

    def pause_reading(self) -> None:
        """Stop reading from the client (its handler is busy with an earlier message)."""
        if not self.read_paused and not self.disconnected:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.disconnected:
            self.read_paused = False
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        handler = self._handler
        if handler is None:
            super().data_received(data)
            return
        burst: list[bytes | str] = []
        conn = self.conn
        # The plain frames (complete, final, masked binary: every y-websocket message)
        # without `websockets`' parser; from the first other one on, the rest goes to it.
        if not self.close_sent and at_frame_boundary(conn):
            taken = plain_frames(data, conn.max_message_size, burst)
            if taken:
                data = data[taken:]
        if data:
            self._burst = burst
            try:
                conn.receive_data(data)
                # The messages parsed before a frame the parser refused (too big) are
                # handled too: the good ones of a burst are not lost with the bad one.
                self.handle_events()
                if conn.parser_exc is not None:
                    self.handle_parser_exception()
            finally:
                self._burst = None
        if burst:
            handler.frames_received(burst)
        if self._ended_in_burst:
            self._ended_in_burst = False
            self._ended()

    def send_receive_event_to_app(self) -> None:
        handler = self._handler
        if handler is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return  # past the close: discarded, as uvicorn does
        message: bytes | str = data
        if self.curr_msg_data_type == "text":
            message = data.decode("utf-8", "replace")
        if self._burst is not None:
            self._burst.append(message)
        else:
            handler.frames_received([message])

    def _ended(self) -> None:
        if self._burst is not None:
            self._ended_in_burst = True
            return
        handler = self._handler
        if handler is None or self._gone:
            return
        self._gone = True
        try:
            handler.disconnected()
        except Exception:
            log.exception("ending a connection failed")

    async def run_asgi(self) -> None:
        """uvicorn's, except that an adopted connection stays open when the app returns."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self._handler is not None:
            self._shed()
            return
        if self.close_timer is None:
            self.transport.close()

    def pause_writing(self) -> None:
        self.writable = asyncio.Event()  # cleared; `send` waits on it

    def resume_writing(self) -> None:
        writable, self.writable = self.writable, _OPEN
        writable.set()

    #: pinged by the server's `_Keepalive` (instead of a timer of its own)
    _swept = False

    def start_keepalive(self) -> None:
        interval = self.ping_interval
        if interval is not None and interval > 0:
            key = id(self.connections)
            sweeper = _keepalives.get(key)
            if (
                sweeper is None
                or not sweeper.active
                or sweeper.connections is not self.connections
                or sweeper.loop is not asyncio.get_running_loop()
            ):
                _keepalives[key] = _Keepalive(self.connections, interval, self.ping_timeout)
            self._swept = True
        # Called right after the 101 response went out; nothing reads these later. The
        # request also stays referenced by the `websockets` parser's generator frame for
        # life: its headers (and its path, with the token) are emptied in place.
        request = self.request
        if request is not None:
            request.headers.clear()
            request.path = ""
        self.request = None  # type: ignore[assignment]
        self.response = None  # type: ignore[assignment]

    def handle_parser_exception(self) -> None:
        """The parser refused a frame (too big, malformed framing) and queued a close
        frame: send it, then linger until the client has closed (module docstring)."""
        if self._refused:
            return  # the rest of the refused frame, or the client's close reply: discarded
        self._refused = True
        close = self.conn.close_sent
        code = close.code if close is not None else 1006
        reason = close.reason if close is not None else ""
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if close is not None:
            metrics.WS_CLOSES.labels(str(code)).inc()
        output = self.conn.data_to_send()
        self.transport.write(b"".join(output))
        self.close_sent = True
        if output and output[-1] == b"" and self.transport.can_write_eof():
            self.transport.write_eof()
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        if self.close_timer is None:
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    def _keepalive_sweep(self, now: float, timeout: float | None) -> None:
        """Ping, or fail the connection whose last ping went unanswered (`_Keepalive`)."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        if self.pending_ping_payload is not None:
            if timeout is not None and now - self.ping_sent_at >= timeout:
                self.keepalive_timeout()
            return
        self.pending_ping_payload = random.getrandbits(32).to_bytes(4, "big")
        self.ping_sent_at = now
        self.conn.send_ping(self.pending_ping_payload)
        self.transport.write(b"".join(self.conn.data_to_send()))

    def write_close(self, code: int, reason: str) -> None:
        """uvicorn's `websocket.close` without its await: the close frame goes into the
        transport's buffer even while it is paused (it is a few bytes, and the last)."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    def write_binary(self, payload: bytes) -> bool:
        """Write `payload` as one binary message now and return True, if the connection
        is open and its transport not paused; otherwise write nothing and return False,
        and the caller sends through ASGI `send` (which waits out the pause or raises).

        The same checks as uvicorn's `send` for a `websocket.send`, minus its await when
        nothing has to be waited for; `websockets` keeps no state per data frame sent.
        (`syncd.transport.websocket.fan_out_now` makes them inline: keep both alike.)
        """
        if (
            self.close_sent
            or self.disconnected
            or self.writable is not _OPEN
            or self.conn.state is not _STATE_OPEN
        ):
            return False
        self.transport.write(binary_frame(payload))
        return True

    def write_binaries(self, payloads: tuple[bytes, ...]) -> bool:
        """`write_binary` for several messages at once, as one transport write (one
        `write()` syscall instead of one each): all of them, in order, or none."""
        if (
            self.close_sent
            or self.disconnected
            or self.writable is not _OPEN
            or self.conn.state is not _STATE_OPEN
        ):
            return False
        self.transport.write(binary_frames(payloads))
        return True


for _name, _default in (
    *LeanWebSocketProtocol._SHED.items(),
    *LeanWebSocketProtocol._SHED_AT_DEFAULT.items(),
):
    setattr(LeanWebSocketProtocol, _name, _default)
