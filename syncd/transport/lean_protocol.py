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
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from syncd import metrics

__all__ = ["LeanWebSocketProtocol", "binary_frame"]

_FIN_BINARY = 0x82
#: the last payload framed and its frame: one fan-out sends one payload to every peer
_last_frame: tuple[bytes, bytes] = (b"", b"\x82\x00")


def binary_frame(payload: bytes) -> bytes:
    """`payload` as one unmasked, final binary WebSocket frame (RFC 6455 5.2).

    The frame of the last payload is kept: every peer of a fan-out pass is sent the same
    payload object, so it is framed once per pass, not once per peer.
    """
    global _last_frame
    if _last_frame[0] is payload:
        return _last_frame[1]
    size = len(payload)
    if size < 126:
        header = bytes((_FIN_BINARY, size))
    elif size < 1 << 16:
        header = bytes((_FIN_BINARY, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((_FIN_BINARY, 127)) + size.to_bytes(8, "big")
    frame = header + payload
    _last_frame = (payload, frame)
    return frame


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    _refused = False

    def start_keepalive(self) -> None:
        super().start_keepalive()
        # Called right after the 101 response went out; nothing reads these later.
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

    def write_binary(self, payload: bytes) -> bool:
        """Write `payload` as one binary message now and return True, if the connection
        is open and its transport not paused; otherwise write nothing and return False,
        and the caller sends through ASGI `send` (which waits out the pause or raises).

        The same checks as uvicorn's `send` for a `websocket.send`, minus its await when
        nothing has to be waited for; `websockets` keeps no state per data frame sent.
        """
        if (
            self.close_sent
            or self.disconnected
            or not self.writable.is_set()
            or self.conn.state is not State.OPEN
        ):
            return False
        self.transport.write(binary_frame(payload))
        return True
