"""The y-websocket endpoint `/ws/notes/{note_id}`: the one place that knows ASGI WebSockets.

It reads raw ASGI messages (cheaper than Starlette's WebSocket wrapper on the hot path),
authenticates and authorises before the room is touched, loads the room before accepting
(so nothing a client sends can pile up in front of a cold room), then pumps frames between
the socket and the room. Every failure closes only this connection, with the close code of
DESIGN.md.

Frame metrics and the per-connection rate limits live here too, rather than in a
middleware around the endpoint: a middleware wraps `receive` and `send` of every
connection in more Python frames, which cost CPU on every frame sent and memory for every
idle connection (measured in bench/).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, MutableMapping
from typing import Any

from syncd import metrics
from syncd.auth import AuthError, Principal
from syncd.auth.bearer import bearer_token, query_or_bearer
from syncd.auth.permissions import Access
from syncd.ids import is_note_id
from syncd.protocol import Awareness, ProtocolError, parse_message
from syncd.protocol.close_codes import (
    CLOSE_FORBIDDEN,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_MALFORMED,
    CLOSE_NOT_FOUND,
    CLOSE_RATE_LIMITED,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
)
from syncd.room import Peer, Room, RoomLoadError, RoomRegistry, fanout
from syncd.services.events import EventBus, PeerJoined, PeerLeft
from syncd.services.notes import NoteNotFound, NoteService
from syncd.services.ratelimit import ConnectionBudget, RateLimiter, client_ip
from syncd.storage import StorageError
from syncd.transport.expiries import Expiries
from syncd.transport.lean_protocol import (
    _OPEN,
    _STATE_OPEN,
    LeanWebSocketProtocol,
    binary_frame,
    binary_frames,
)

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Any
Send = Any

#: the URL prefix of the endpoint: /ws/notes/{note_id}
PATH_PREFIX = "/ws/notes/"
#: what a message with no answer gets (never appended to)
_NO_REPLIES: list[bytes] = []
#: the pending count of received sync updates ([frames, bytes]; `metrics.pending_entry`)
_IN_UPDATES = metrics.pending_entry("in", "update")
#: per frame a fan-out pass writes (bound once: one lookup less per delivery)
_count_sent = metrics.count_sent
_count_sent_all = metrics.count_sent_all
_count_sent_many = metrics.count_sent_many
#: closes started without an await (kept referenced until done)
_closing: set[asyncio.Task[None]] = set()


class AsgiChannel:
    """`Channel` over an ASGI WebSocket `send` callable; counts every frame it sends.

    Under `syncd serve` the `send` is a `LeanWebSocketProtocol`'s: frames then go to its
    transport directly while it is not paused (see `lean_protocol`); under any other
    server, and while paused, through ASGI messages.
    """

    __slots__ = ("__weakref__", "_closed", "_send", "_socket", "principal")

    def __init__(self, send: Send, principal: Principal) -> None:
        self._send = send
        owner = getattr(send, "__self__", None)
        self._socket = owner if isinstance(owner, LeanWebSocketProtocol) else None
        self._closed = False
        self.principal = principal

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, frame: bytes) -> None:
        if self._closed:
            return
        metrics.count_sent(frame)
        socket = self._socket
        if socket is not None and socket.write_binary(frame):
            return
        await self._send({"type": "websocket.send", "bytes": frame})

    def send_now(self, frame: bytes) -> bool:
        if self._closed:
            return True
        socket = self._socket
        if socket is None or not socket.write_binary(frame):
            return False
        _count_sent(frame)
        return True

    def send_all_now(self, frames: tuple[bytes, ...]) -> bool:
        if self._closed:
            return True
        socket = self._socket
        if socket is None or not socket.write_binaries(frames):
            return False
        _count_sent_all(frames)
        return True

    @property
    def socket(self) -> LeanWebSocketProtocol | None:
        """The uvicorn protocol under `syncd serve`, else None (any other ASGI server)."""
        return self._socket

    async def close(self, code: int, reason: str = "") -> None:
        if self._closed:
            return
        if self._socket is not None:
            self.close_now(code, reason)
            return
        self._closed = True
        metrics.WS_CLOSES.labels(str(code)).inc()
        with contextlib.suppress(Exception):
            await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})

    def close_now(self, code: int, reason: str = "") -> None:
        """`close` without an await (under `syncd serve`; elsewhere it starts a task)."""
        if self._closed:
            return
        socket = self._socket
        if socket is None:
            task = asyncio.get_running_loop().create_task(self.close(code, reason))
            _closing.add(task)
            task.add_done_callback(_closing.discard)
            return
        self._closed = True
        metrics.WS_CLOSES.labels(str(code)).inc()
        socket.write_close(code, reason[:120])


def fan_out_now(peers: Iterable[Peer], skip: object, frame: bytes) -> fanout.Outcome:
    """`syncd.room.fanout.send_each_now` with `AsgiChannel.send_now` inlined for
    channels over a lean socket: `frame` framed once, `write_binary`'s checks made inline
    and one transport write per peer, the frames counted once per pass (instead of four
    Python calls per delivery). Any other channel gets `send_now`."""
    data: bytes | None = None
    sent = 0
    unsent: list[Peer] | None = None
    failed: list[Peer] | None = None
    for peer in peers:
        if peer is skip:
            continue
        channel = peer.channel
        try:
            if type(channel) is AsgiChannel:
                if channel._closed:
                    continue  # dropped, as `send_now` drops it
                socket = channel._socket
                if socket is not None:
                    if data is None:
                        data = binary_frame(frame)
                    # `LeanWebSocketProtocol.write_binary`'s checks, inlined
                    if not (
                        socket.close_sent
                        or socket.disconnected
                        or socket.writable is not _OPEN
                        # `state` is a property returning `_state`: one call less per
                        # delivery (tests/unit/test_room_fanout.py pins that they agree)
                        or socket.conn._state is not _STATE_OPEN
                    ):
                        socket.transport.write(data)
                        sent += 1
                        continue
            elif channel.send_now(frame):
                continue
        except (ConnectionError, RuntimeError, OSError):
            if failed is None:
                failed = []
            failed.append(peer)
            continue
        if unsent is None:
            unsent = []
        unsent.append(peer)
    if sent:
        _count_sent_many(frame, sent)
    return unsent, failed


def fan_out_all_now(
    peers: Iterable[Peer], sole: object, shared: tuple[bytes, ...], mine: tuple[bytes, ...]
) -> fanout.Outcome:
    """`syncd.room.fanout.send_all_each_now` with `AsgiChannel.send_all_now` inlined for
    channels over a lean socket: `shared` and `mine` each framed and joined once per pass,
    one transport write per peer, the frames counted once per pass."""
    data: bytes | None = None
    own: bytes | None = None
    sent = 0
    sent_mine = 0
    unsent: list[Peer] | None = None
    failed: list[Peer] | None = None
    for peer in peers:
        frames = mine if peer is sole else shared
        if not frames:
            continue
        channel = peer.channel
        try:
            if type(channel) is AsgiChannel:
                if channel._closed:
                    continue  # dropped, as `send_all_now` drops it
                socket = channel._socket
                # `LeanWebSocketProtocol.write_binaries`'s checks, inlined
                if socket is not None and not (
                    socket.close_sent
                    or socket.disconnected
                    or socket.writable is not _OPEN
                    or socket.conn._state is not _STATE_OPEN
                ):
                    if frames is shared:
                        if data is None:
                            data = binary_frames(shared)
                        socket.transport.write(data)
                        sent += 1
                    else:
                        if own is None:
                            own = binary_frames(mine)
                        socket.transport.write(own)
                        sent_mine += 1
                    continue
            elif len(frames) > 1:
                if channel.send_all_now(frames):
                    continue
            elif channel.send_now(frames[0]):
                continue
        except (ConnectionError, RuntimeError, OSError):
            if failed is None:
                failed = []
            failed.append(peer)
            continue
        if unsent is None:
            unsent = []
        unsent.append(peer)
    if sent:
        for frame in shared:
            _count_sent_many(frame, sent)
    if sent_mine:
        for frame in mine:
            _count_sent_many(frame, sent_mine)
    return unsent, failed


fanout.install(fan_out_now, fan_out_all_now)


def token_from_scope(scope: Scope) -> str | None:
    """`?token=` first (what browsers can send), else `Authorization: Bearer`; the
    headers are scanned only when there is no query token (the usual connect has one)."""
    token = query_or_bearer(scope.get("query_string", b""), None)
    if token is not None:
        return token
    header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), None)
    return bearer_token(header)


class SyncEndpoint:
    """ASGI app for one y-websocket connection per call."""

    def __init__(
        self,
        notes: NoteService,
        rooms: RoomRegistry,
        events: EventBus,
        *,
        max_message_bytes: int,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._notes = notes
        self._rooms = rooms
        #: peers joining and leaving (presence, sessions, versions subscribe)
        self._events = events
        self._max_bytes = max_message_bytes
        self._limiter = limiter
        self._shutting_down = False
        self._connections: set[AsgiChannel] = set()
        self._expiries = Expiries(CLOSE_UNAUTHORIZED)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path_params = scope.get("path_params")
        note_id: str = path_params["note_id"] if path_params else scope["path"][len(PATH_PREFIX) :]
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if self._shutting_down:
            await _refuse(send, CLOSE_GOING_AWAY, "server shutting down")
            return
        if self._limiter is not None and not await self._limiter.check_connect(client_ip(scope)):
            await _refuse(send, CLOSE_RATE_LIMITED, "too many connection attempts")
            return
        if not is_note_id(note_id):
            # No note can have this id: refused before the token, the cache or the store
            # see it (it would otherwise end up in keys, queries and log lines).
            await _refuse(send, CLOSE_NOT_FOUND, "unknown note")
            return
        try:
            principal = self._notes.verify_token(token_from_scope(scope))
        except AuthError as exc:
            await _refuse(send, CLOSE_UNAUTHORIZED, str(exc))
            return
        # Nothing reads the handshake's headers after the token (the scope lives as long
        # as the connection: a browser's headers are a kilobyte or two of every one).
        scope["headers"] = []
        try:
            access = await self._notes.connect_access(principal, note_id)
        except NoteNotFound:
            await _refuse(send, CLOSE_NOT_FOUND, "unknown note")
            return
        except StorageError:
            log.exception("access check for note %s failed", note_id)
            await _refuse(send, CLOSE_TRY_AGAIN, "storage unavailable, try again later")
            return
        if access < Access.VIEW:
            await _refuse(send, CLOSE_FORBIDDEN, "no view permission")
            return
        try:
            room = await self._rooms.acquire(note_id)
        except RoomLoadError:
            await _refuse(send, CLOSE_TRY_AGAIN, "note could not be loaded, try again later")
            return
        adopted = False
        try:
            # Under `syncd serve` a lean handshake is accepted together with the first
            # frames (`_serve`); anywhere else the accept goes first, on its own.
            lean = _lean_handshake(send)
            if lean is None:
                await send({"type": "websocket.accept"})
            metrics.WS_CONNECTIONS.inc()
            try:
                adopted = await self._serve(room, principal, access, receive, send, lean)
            finally:
                if not adopted:
                    metrics.WS_CONNECTIONS.dec()
        finally:
            if not adopted:
                self._rooms.release(room)

    async def _serve(
        self,
        room: Room,
        principal: Principal,
        access: Access,
        receive: Receive,
        send: Send,
        lean: LeanWebSocketProtocol | None,
    ) -> bool:
        """Serve the connection; True when it was handed to a `Connection` (task-less,
        see `lean_protocol`), which then ends it (`Connection.disconnected`). `lean`: the
        protocol of a lean handshake not yet accepted, accepted here with the first
        frames in one write."""
        channel = AsgiChannel(send, principal)
        peer = Peer(
            channel=channel,
            user_id=principal.user_id,
            can_write=access >= Access.EDIT,
            name=principal.name,
            privileged=principal.privileged,
        )
        self._connections.add(channel)
        self._expiries.add(channel, principal.expires_at)
        self._events.publish_nowait(PeerJoined(room.doc_id, room, peer))
        adopted = False
        try:
            frames = room.join(peer)
            if lean is not None:
                # no await between the join and this write: nothing of the room's can
                # reach the peer before its 101 and its sync step 1
                lean.accept_with(frames)
                for frame in frames:
                    _count_sent(frame)
            else:
                for frame in frames:
                    await channel.send(frame)
            budget = self._limiter.connection_budget() if self._limiter is not None else None
            socket = channel.socket
            if socket is not None:
                adopted = socket.adopt(Connection(self, room, peer, channel, budget, socket))
                if adopted:
                    return True
            await self._pump(room, peer, channel, receive, budget)
        except (ConnectionError, OSError):
            pass
        finally:
            if not adopted:
                self._leave(room, peer, channel)
        return False

    def _leave(self, room: Room, peer: Peer, channel: AsgiChannel) -> None:
        self._expiries.discard()
        self._connections.discard(channel)
        room.leave(peer)
        self._events.publish_nowait(PeerLeft(room.doc_id, room, peer))

    def _end(self, room: Room, peer: Peer, channel: AsgiChannel) -> None:
        """The end of an adopted connection: what `__call__` does after `_serve` returns."""
        try:
            self._leave(room, peer, channel)
        finally:
            metrics.WS_CONNECTIONS.dec()
            self._rooms.release(room)

    def receive_frame(
        self,
        room: Room,
        peer: Peer,
        channel: AsgiChannel,
        budget: ConnectionBudget | None,
        data: bytes | str,
    ) -> list[bytes] | None:
        """Count, check and apply one message from a client; return the frames to answer
        it with, or None when the connection is closing (refused, over a limit).

        A keystroke (a sync update whose length fits one byte: what `parse_message`
        reads as `SyncUpdate(data[3:])` in its fast path, always under any size limit)
        goes to `Room.handle_update` with no message object and no metrics call; the
        update is checked there as every update is."""
        update = False
        if type(data) is bytes:
            size = len(data)
            if 3 <= size < 131 and data[2] == size - 3 and data[0] == 0 and data[1] == 2:
                update = True
                entry = _IN_UPDATES
                entry[0] += 1
                entry[1] += size
            else:
                metrics.count_frame("in", metrics.frame_type(data), size)
        elif isinstance(data, bytes):
            size = len(data)
            metrics.count_frame("in", metrics.frame_type(data), size)
        else:
            size = len(data.encode())
            metrics.count_frame("in", "text", size)
        if budget is not None and not budget.allow(size):
            metrics.RATE_LIMITED.labels("ws_messages").inc()
            channel.close_now(CLOSE_RATE_LIMITED, "rate limit")
            return None
        if not isinstance(data, bytes):
            channel.close_now(CLOSE_MALFORMED, "text frames are not part of the protocol")
            return None
        if channel._closed:
            return None  # closed by the server (revoked, expired); wait for the disconnect
        try:
            if update:
                return room.handle_update(peer, data[3:])
            message = parse_message(data, max_bytes=self._max_bytes)
            if type(message) is Awareness:  # a cursor move: relayed as received
                room.handle_awareness(peer, message.payload, data)
                return _NO_REPLIES
            return room.handle(peer, message)
        except ProtocolError as exc:
            # One line, no traceback: a hostile client must not be able to fill the log.
            kind = metrics.frame_type(data)
            metrics.PROTOCOL_ERRORS.labels(kind, exc.kind).inc()
            log.info(
                "closing connection to note %s: %s frame refused (%s): %s",
                room.doc_id,
                kind,
                exc.kind,
                _clip(str(exc)),
            )
            channel.close_now(exc.close_code, _clip(str(exc), 120))
            return None

    async def _pump(
        self,
        room: Room,
        peer: Peer,
        channel: AsgiChannel,
        receive: Receive,
        budget: ConnectionBudget | None,
    ) -> None:
        """The connection's messages through ASGI `receive` (servers other than
        `syncd serve`'s uvicorn protocol)."""
        while True:
            event = await receive()
            kind = event["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            data = event.get("bytes")
            replies = self.receive_frame(
                room, peer, channel, budget, data if data is not None else event.get("text") or ""
            )
            if replies:
                await room.wait_durable()
                for frame in replies:
                    await channel.send(frame)

    async def shutdown(self) -> None:
        """Refuse new connections and close every open one with 1001."""
        self._shutting_down = True
        for channel in list(self._connections):
            await channel.close(CLOSE_GOING_AWAY, "server shutting down")


class Connection:
    """A y-websocket connection after its handshake, served without a task of its own.

    Its `LeanWebSocketProtocol` hands it the messages of each read as one burst; they are
    applied to the room in one doc transaction, and the room's flush (once per loop turn)
    logs and relays them together. A reply that cannot go out at once (the doc not yet
    durable, the transport paused) is sent by a task while reading is paused; messages
    already received wait behind it, so a client's messages are handled in order, as
    the ASGI pump handled them.
    """

    __slots__ = (
        "_backlog",
        "_budget",
        "_channel",
        "_endpoint",
        "_peer",
        "_room",
        "_socket",
        "_task",
    )

    def __init__(
        self,
        endpoint: SyncEndpoint,
        room: Room,
        peer: Peer,
        channel: AsgiChannel,
        budget: ConnectionBudget | None,
        socket: LeanWebSocketProtocol,
    ) -> None:
        self._endpoint = endpoint
        self._room = room
        self._peer = peer
        self._channel = channel
        self._budget = budget
        self._socket = socket
        #: messages waiting behind a reply being sent (None: nothing is being sent)
        self._backlog: list[bytes | str] | None = None
        self._task: asyncio.Task[None] | None = None

    def frames_received(self, frames: list[bytes | str]) -> None:
        if self._backlog is not None:
            self._backlog.extend(frames)
            return
        try:
            if len(frames) == 1:
                # one message (a keystroke's read): no transaction of its own around it
                # (measured 14% dearer alone), no context manager, no `_process` call
                replies = self._endpoint.receive_frame(
                    self._room, self._peer, self._channel, self._budget, frames[0]
                )
                if replies:
                    rest = self._reply_now(replies)
                    if rest:
                        self._backlog = []
                        self._socket.pause_reading()
                        loop = asyncio.get_running_loop()
                        self._task = loop.create_task(self._reply_later(rest))
                return
            self._process(frames)
        except Exception:
            log.exception("room %s: handling a burst failed", self._room.doc_id)
            self._channel.close_now(CLOSE_INTERNAL_ERROR, "internal error")

    def _process(self, frames: list[bytes | str]) -> None:
        """The messages of a read of several, in one doc transaction (`Room.burst`)."""
        endpoint, room, peer, channel, budget = (
            self._endpoint,
            self._room,
            self._peer,
            self._channel,
            self._budget,
        )
        with room.burst():
            for index, data in enumerate(frames):
                replies = endpoint.receive_frame(room, peer, channel, budget, data)
                if replies is None:
                    return  # closing: the rest of the burst is not applied
                if replies:
                    rest = self._reply_now(replies)
                    if rest:
                        self._backlog = frames[index + 1 :]
                        self._socket.pause_reading()
                        self._task = asyncio.get_running_loop().create_task(self._reply_later(rest))
                        return

    def _reply_now(self, replies: list[bytes]) -> list[bytes]:
        """Send what can go now; return the replies left to await (all of them while the
        doc holds updates not yet durable: a sync step 2 must not carry those)."""
        if not self._room.durable:
            return replies
        channel = self._channel
        for index, frame in enumerate(replies):
            if not channel.send_now(frame):
                return replies[index:]
        return []

    async def _reply_later(self, replies: list[bytes]) -> None:
        try:
            await self._room.wait_durable()
            for frame in replies:
                await self._channel.send(frame)
        except (ConnectionError, OSError):
            pass
        finally:
            self._task = None
            backlog, self._backlog = self._backlog, None
            self._socket.resume_reading()
        if backlog and not self._channel.closed:
            self.frames_received(backlog)

    def disconnected(self) -> None:
        self._backlog = None
        self._endpoint._end(self._room, self._peer, self._channel)


def _lean_handshake(send: Send) -> LeanWebSocketProtocol | None:
    """The uvicorn protocol behind `send` when its lean handshake waits for the accept
    (`LeanWebSocketProtocol.accept_with`), else None; None too when the client is gone
    (then ASGI `send` raises `ClientDisconnected` before the room is joined)."""
    owner = getattr(send, "__self__", None)
    if isinstance(owner, LeanWebSocketProtocol) and owner.lean_pending and not owner.disconnected:
        return owner
    return None


def _clip(text: str, size: int = 200) -> str:
    """Bound what a client's frame can put into a log line or a close reason (the
    reason must stay within the 123 bytes a close frame holds)."""
    if len(text) <= size:
        return text
    return text[: size - 3] + "..."


async def _refuse(send: Send, code: int, reason: str) -> None:
    """Accept, then close with `code`: a close before accept reaches a browser as a bare
    HTTP 403 and the client could not tell 4401 from 4404."""
    metrics.WS_CLOSES.labels(str(code)).inc()
    lean = _lean_handshake(send)
    if lean is not None:
        lean.refuse(code, reason[:120])  # the 101 and the close frame in one write
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code, "reason": reason[:120]})
