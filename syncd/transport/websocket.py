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

import contextlib
import logging
from collections.abc import MutableMapping
from typing import Any

from syncd import metrics
from syncd.auth import AuthError, Principal
from syncd.auth.bearer import query_or_bearer
from syncd.auth.permissions import Access
from syncd.ids import is_note_id
from syncd.protocol import ProtocolError, parse_message
from syncd.protocol.close_codes import (
    CLOSE_FORBIDDEN,
    CLOSE_GOING_AWAY,
    CLOSE_MALFORMED,
    CLOSE_NOT_FOUND,
    CLOSE_RATE_LIMITED,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
)
from syncd.room import Peer, Room, RoomLoadError, RoomRegistry
from syncd.services.events import EventBus, PeerJoined, PeerLeft
from syncd.services.notes import NoteNotFound, NoteService
from syncd.services.ratelimit import ConnectionBudget, RateLimiter, client_ip
from syncd.storage import StorageError
from syncd.transport.expiries import Expiries
from syncd.transport.lean_protocol import LeanWebSocketProtocol

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Any
Send = Any

#: the URL prefix of the endpoint: /ws/notes/{note_id}
PATH_PREFIX = "/ws/notes/"


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
        metrics.count_frame("out", metrics.frame_type(frame), len(frame))
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
        metrics.count_frame("out", metrics.frame_type(frame), len(frame))
        return True

    async def close(self, code: int, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        metrics.WS_CLOSES.labels(str(code)).inc()
        with contextlib.suppress(Exception):
            await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})


def token_from_scope(scope: Scope) -> str | None:
    """`?token=` first (what browsers can send), else `Authorization: Bearer`."""
    header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), None)
    return query_or_bearer(scope.get("query_string", b""), header)


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
        try:
            await send({"type": "websocket.accept"})
            metrics.WS_CONNECTIONS.inc()
            try:
                await self._serve(room, principal, access, receive, send)
            finally:
                metrics.WS_CONNECTIONS.dec()
        finally:
            self._rooms.release(room)

    async def _serve(
        self, room: Room, principal: Principal, access: Access, receive: Receive, send: Send
    ) -> None:
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
        try:
            for frame in room.join(peer):
                await channel.send(frame)
            budget = self._limiter.connection_budget() if self._limiter is not None else None
            await self._pump(room, peer, channel, receive, budget)
        except (ConnectionError, OSError):
            pass
        finally:
            self._expiries.discard()
            self._connections.discard(channel)
            room.leave(peer)
            self._events.publish_nowait(PeerLeft(room.doc_id, room, peer))

    async def _pump(
        self,
        room: Room,
        peer: Peer,
        channel: AsgiChannel,
        receive: Receive,
        budget: ConnectionBudget | None,
    ) -> None:
        while True:
            event = await receive()
            kind = event["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            data = event.get("bytes")
            size = len(data) if data is not None else len((event.get("text") or "").encode())
            metrics.count_frame("in", "text" if data is None else metrics.frame_type(data), size)
            if budget is not None and not budget.allow(size):
                metrics.RATE_LIMITED.labels("ws_messages").inc()
                await channel.close(CLOSE_RATE_LIMITED, "rate limit")
                return  # the client is gone as far as the room is concerned
            if data is None:
                await channel.close(CLOSE_MALFORMED, "text frames are not part of the protocol")
                continue
            if channel.closed:
                continue  # closed by the server (revoked, expired); wait for the disconnect
            try:
                replies = room.handle(peer, parse_message(data, max_bytes=self._max_bytes))
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
                await channel.close(exc.close_code, _clip(str(exc), 120))
                continue
            if replies:
                await room.wait_durable()
                for frame in replies:
                    await channel.send(frame)

    async def shutdown(self) -> None:
        """Refuse new connections and close every open one with 1001."""
        self._shutting_down = True
        for channel in list(self._connections):
            await channel.close(CLOSE_GOING_AWAY, "server shutting down")


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
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code, "reason": reason[:120]})
