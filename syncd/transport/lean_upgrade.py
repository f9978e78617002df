"""uvicorn's httptools HTTP protocol, with the WebSocket handshake of a plain sync
connection done from the headers httptools already parsed.

uvicorn hands an upgrade to its WebSocket protocol by serialising the request again and
feeding it to `websockets`, which parses it a second time into a `Request` and answers
with a `Response` (each with a `Headers` of its own), all in Python, for every connect.
Here, a request that is plainly a WebSocket upgrade of the sync path (`GET`, HTTP/1.1,
one `Upgrade: websocket`, one `Connection` with `upgrade`, one valid
`Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`, no subprotocol offered, header names
and values as `websockets` accepts them) goes straight to `LeanWebSocketProtocol.
start_upgraded`, which builds the ASGI scope and, on `websocket.accept`, the 101 itself.

Everything else takes uvicorn's own path unchanged, so `websockets` answers it as before
(a 400 for a bad key, a 426 for another version, a 403 on a close before accept, ...).
Nothing of what syncd enforces lives in the handshake: the token, rate limits, connection
limits and metrics are the endpoint's, on both paths. `websockets` is run with no
`origins` (no Origin check) and, with `ws_per_message_deflate` off, ignores extension
offers; the lean path does the same, and with deflate on it leaves every request to
uvicorn.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from websockets.utils import accept_key

from syncd.transport.lean_protocol import HEADER_NAME, HEADER_VALUE, LeanWebSocketProtocol

__all__ = ["LeanHttpToolsProtocol", "plain_upgrade"]

#: the paths served by the lean handshake (the y-websocket endpoint's)
LEAN_PREFIX = b"/ws/notes/"
#: a request target the lean path takes: printable ASCII, no fragment
_TARGET = re.compile(rb"/[\x21-\x22\x24-\x7e]*")
#: headers the lean path reads; a request with any of `_ELSEWHERE` (a subprotocol offer,
#: a body, which `websockets` refuses) takes uvicorn's path
_ELSEWHERE = frozenset((b"sec-websocket-protocol", b"content-length", b"transfer-encoding"))
_HANDSHAKE = frozenset(
    (b"sec-websocket-key", b"sec-websocket-version", b"upgrade", b"connection", *_ELSEWHERE)
)
#: the bytes `HEADER_NAME` and `HEADER_VALUE` allow: a name or value is valid when deleting
#: them leaves nothing (tests/unit/test_lean_upgrade.py checks both against the patterns)
_NAME_BYTES = bytes(b for b in range(256) if HEADER_NAME.fullmatch(bytes((b,))))
_VALUE_BYTES = bytes(b for b in range(256) if HEADER_VALUE.fullmatch(bytes((b,))))
#: `websockets`' limits (its defaults): past them it answers 414 / 431
_MAX_HEADERS = 128
_MAX_LINE = 8192


def plain_upgrade(
    method: str, http_version: str, url: bytes, headers: list[tuple[bytes, bytes]]
) -> str | None:
    """The `Sec-WebSocket-Key` of a plain WebSocket upgrade of the sync path that
    `websockets` would accept as is, else None (then uvicorn's path answers it).

    `headers` as uvicorn's httptools protocol keeps them: names lower-cased, values
    without trailing blanks.
    """
    if method != "GET" or http_version != "1.1" or not url.startswith(LEAN_PREFIX):
        return None
    if len(url) + 15 > _MAX_LINE or not _TARGET.fullmatch(url) or len(headers) > _MAX_HEADERS:
        return None
    key: bytes | None = None
    seen_upgrade = seen_connection = seen_version = False
    for name, value in headers:
        # `HEADER_NAME` / `HEADER_VALUE` as one C call each (`_NAME_BYTES`): regex matches
        # of every header were most of this check's time
        if (
            not name
            or len(name) + len(value) + 4 > _MAX_LINE
            or name.translate(None, _NAME_BYTES)
            or value.translate(None, _VALUE_BYTES)
        ):
            return None
        if name not in _HANDSHAKE:
            continue
        if name == b"sec-websocket-key":
            if key is not None:
                return None
            key = value.strip()
        elif name == b"sec-websocket-version":
            if seen_version or value.strip() != b"13":
                return None
            seen_version = True
        elif name == b"upgrade":
            if seen_upgrade or value.strip().lower() != b"websocket":
                return None
            seen_upgrade = True
        elif name == b"connection":
            tokens = [token.strip().lower() for token in value.split(b",")]
            if seen_connection or b"upgrade" not in tokens:
                return None
            seen_connection = True
        elif name in _ELSEWHERE:
            return None
    if key is None or not (seen_upgrade and seen_connection and seen_version):
        return None
    try:
        if len(b64decode(key, validate=True)) != 16:
            return None
    except (binascii.Error, ValueError):
        return None
    return key.decode("ascii")


class LeanHttpToolsProtocol(HttpToolsProtocol):
    """`http=` for uvicorn: its httptools protocol, with the lean handshake (module
    docstring) when the WebSocket protocol is a `LeanWebSocketProtocol`."""

    def handle_websocket_upgrade(self) -> None:
        protocol_class: Any = self.ws_protocol_class
        key = None
        if (
            isinstance(protocol_class, type)
            and issubclass(protocol_class, LeanWebSocketProtocol)
            and not self.config.ws_per_message_deflate
            and not self.root_path
        ):
            key = plain_upgrade(
                self.scope["method"], self.scope.get("http_version", "1.1"), self.url, self.headers
            )
        if key is None:
            super().handle_websocket_upgrade()
            return
        self.connections.discard(self)
        protocol = protocol_class(
            config=self.config, server_state=self.server_state, app_state=self.app_state
        )
        _hand_over(self, protocol)
        self.transport.set_protocol(protocol)
        path, _, query = self.url.partition(b"?")
        protocol.start_upgraded(path, query, self.headers, accept_key(key))


def _hand_over(http: HttpToolsProtocol, protocol: LeanWebSocketProtocol) -> None:
    """uvicorn's `WebSocketsSansIOProtocol.connection_made` for a transport the HTTP
    protocol already looked at: its addresses are reused rather than asked of the socket
    again (two `getsockname`/`getpeername` calls and socket objects per connect)."""
    protocol.connections.add(protocol)
    protocol.transport = http.transport
    protocol.server = http.server
    protocol.client = http.client
    protocol.scheme = "wss" if http.scheme == "https" else "ws"
