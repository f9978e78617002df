"""The Hocuspocus endpoint: `ws://HOST:PORT/hocuspocus`, for Tiptap's `@hocuspocus/provider`.

Unlike `/ws/notes/{id}`, the socket is accepted before any token is seen: tokens travel in
each document's auth message, so authentication and rights are per document
(`HocuspocusSocket`). Connection rate limits and shutdown are the same as y-websocket's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from syncd import metrics
from syncd.protocol.close_codes import (
    CLOSE_GOING_AWAY,
    CLOSE_RATE_LIMITED,
    CLOSE_UNAUTHORIZED,
)
from syncd.room import RoomRegistry
from syncd.services.events import EventBus
from syncd.services.notes import NoteService
from syncd.services.ratelimit import RateLimiter, client_ip
from syncd.settings import Limits
from syncd.transport.expiries import Expiries
from syncd.transport.hocuspocus.socket import Context, HocuspocusSocket, StatelessBus
from syncd.transport.hocuspocus.stateless import relay_stateless

Scope = dict[str, Any]
Receive = Any
Send = Any

#: where providers connect: `new HocuspocusProvider({url: 'ws://HOST:PORT/hocuspocus', ...})`
PATH = "/hocuspocus"


class HocuspocusEndpoint:
    """ASGI app for one Hocuspocus socket per call."""

    def __init__(
        self,
        notes: NoteService,
        rooms: RoomRegistry,
        events: EventBus,
        *,
        limits: Limits,
        limiter: RateLimiter | None = None,
        bus: StatelessBus | None = None,
    ) -> None:
        self._context = Context(notes, rooms, events, limits, Expiries(CLOSE_UNAUTHORIZED), bus)
        self._relays: set[asyncio.Task[int]] = set()
        self._limiter = limiter
        self._sockets: set[HocuspocusSocket] = set()
        self._shutting_down = False

    @property
    def connection_count(self) -> int:
        return len(self._sockets)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if self._shutting_down:
            await _refuse(send, CLOSE_GOING_AWAY, "server shutting down")
            return
        if self._limiter is not None and not await self._limiter.check_connect(client_ip(scope)):
            await _refuse(send, CLOSE_RATE_LIMITED, "too many connection attempts")
            return
        scope["headers"] = []  # nothing reads them later (see the y-websocket endpoint)
        await send({"type": "websocket.accept"})
        socket = HocuspocusSocket(self._context, send)
        self._sockets.add(socket)
        try:
            budget = self._limiter.connection_budget() if self._limiter is not None else None
            await socket.run(receive, budget)
        finally:
            self._sockets.discard(socket)

    def receive_remote_stateless(self, doc_id: str, payload: str) -> None:
        """A stateless message another instance relayed: pass it to this one's sockets."""
        room = self._context.rooms.get(doc_id)
        if room is None:
            return
        task = asyncio.get_running_loop().create_task(relay_stateless(room, None, payload))
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)

    async def shutdown(self) -> None:
        """Refuse new sockets and close every open one with 1001."""
        self._shutting_down = True
        for socket in list(self._sockets):
            await socket.close(CLOSE_GOING_AWAY, "server shutting down")


async def _refuse(send: Send, code: int, reason: str) -> None:
    metrics.WS_CLOSES.labels(str(code)).inc()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code, "reason": reason})
