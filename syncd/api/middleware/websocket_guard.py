"""Metrics and rate limits of y-websocket connections, around the sync endpoint.

Wrapping the endpoint's `receive` and `send` keeps the hot path free of both concerns: the
guard counts every frame by type and direction, refuses connection attempts over the
per-IP limit (close 4429), and when a connection exceeds its message or byte budget closes
it with 4429 and tells the endpoint the client disconnected, so the room lets it go like
any other leaving client.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd import metrics
from syncd.api.middleware.rate_limit import client_ip
from syncd.ratelimit import ConnectionBudget

CLOSE_RATE_LIMITED = 4429
SYNC_PREFIX = "/ws/"


class WebSocketGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(scope["app"].state, "services", None)
        if (
            scope["type"] != "websocket"
            or services is None
            or not scope["path"].startswith(SYNC_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        limiter = services.limiter
        if not await limiter.check_connect(client_ip(scope)):
            await _refuse(receive, send)
            return
        await _Guarded(self.app, limiter.connection_budget(), receive, send).run(scope)


class _Guarded:
    """One connection's wrapped `receive` and `send`."""

    def __init__(
        self, app: ASGIApp, budget: ConnectionBudget | None, receive: Receive, send: Send
    ) -> None:
        self._app = app
        self._budget = budget
        self._receive = receive
        self._send = send
        self._closed = False
        self._accepted = False

    async def run(self, scope: Scope) -> None:
        try:
            await self._app(scope, self.receive, self.send)
        finally:
            if self._accepted:
                metrics.WS_CONNECTIONS.dec()

    async def receive(self) -> Message:
        if self._closed:
            return {"type": "websocket.disconnect", "code": CLOSE_RATE_LIMITED}
        message = await self._receive()
        if message["type"] != "websocket.receive":
            return message
        data = message.get("bytes")
        if data is None:
            size = len((message.get("text") or "").encode())
            metrics.count_frame("in", "text", size)
        else:
            size = len(data)
            metrics.count_frame("in", metrics.frame_type(data), size)
        budget = self._budget
        if budget is not None and not budget.allow(size):
            metrics.RATE_LIMITED.labels("ws_messages").inc()
            await self.send(
                {"type": "websocket.close", "code": CLOSE_RATE_LIMITED, "reason": "rate limit"}
            )
            self._closed = True
            return {"type": "websocket.disconnect", "code": CLOSE_RATE_LIMITED}
        return message

    async def send(self, message: Message) -> None:
        if self._closed:
            return  # closed for exceeding its budget: the room may still flush to it
        kind = message["type"]
        if kind == "websocket.send":
            data = message.get("bytes")
            if data is not None:
                metrics.count_frame("out", metrics.frame_type(data), len(data))
        elif kind == "websocket.accept":
            if not self._accepted:
                self._accepted = True
                metrics.WS_CONNECTIONS.inc()
        elif kind == "websocket.close":
            metrics.WS_CLOSES.labels(str(message.get("code", 1000))).inc()
        await self._send(message)


async def _refuse(receive: Receive, send: Send) -> None:
    """Accept, then close with 4429: a close before accept reaches a browser as a bare
    HTTP 403 and the client could not tell why."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": CLOSE_RATE_LIMITED, "reason": "too many"})
    metrics.WS_CLOSES.labels(str(CLOSE_RATE_LIMITED)).inc()
