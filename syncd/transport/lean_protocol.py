"""uvicorn's sans-I/O WebSocket protocol, minus the handshake it keeps for life.

uvicorn's `WebSocketsSansIOProtocol` holds the parsed upgrade request and the handshake
response (each with its headers) for as long as the connection lives, though neither is
read after the 101 is sent: about 2 KB of every idle connection (tracemalloc, 2,000
connections). This subclass lets go of both once the handshake is done, in the hook
uvicorn calls exactly then, so the per-frame path is untouched.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def start_keepalive(self) -> None:
        super().start_keepalive()
        # Called right after the 101 response went out; nothing reads these later.
        self.request = None  # type: ignore[assignment]
        self.response = None  # type: ignore[assignment]
