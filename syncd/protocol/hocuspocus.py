"""The Hocuspocus wire format (``@hocuspocus/provider`` 2.x-4.x): pure functions, no I/O.

Every frame is ``var-string documentName`` + ``var-uint messageType`` + a body, so one
socket carries many documents. The bodies of types 0 (sync), 1 (awareness) and 3
(query-awareness) are exactly y-websocket's, so they are parsed by the y-websocket codec
and the room's frames are relayed with the document name put in front. The other types:

- 2 auth: ``var-uint authType`` + body. Client to server: 0 token + var-string token
  (+ var-string provider version since 3.x). Server to client: 0 "send your token again"
  (no body), 1 permission denied + var-string reason, 2 authenticated + var-string scope.
- 5 stateless: var-string payload, both ways.
- 7 close: client to server, no body ("I detached this document"); server to client,
  var-string reason (the provider then treats that document as closed).
- 8 sync status: server to client, var-int (1 = the update was applied; lib0's var-int
  and var-uint agree on 0 and 1).
- 9 ping / 10 pong: one bare byte, no document name (socket keep-alive, 4.x).

Errors: a frame whose document name cannot be read is a socket-level `ProtocolError`;
anything wrong after a readable name raises `DocumentError`, which names the document so
that only it is closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ._codec import read_var_string, read_var_uint, write_var_string, write_var_uint
from ._errors import MessageTooLarge, ProtocolError
from ._messages import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Awareness,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    encode,
    parse_message,
)

__all__ = [
    "DEFAULT_MAX_NAME_BYTES",
    "PING_FRAME",
    "PONG_FRAME",
    "SCOPE_READONLY",
    "SCOPE_READ_WRITE",
    "CloseDocument",
    "DocMessage",
    "DocumentError",
    "Envelope",
    "Frame",
    "Pong",
    "Stateless",
    "Token",
    "document_prefix",
    "encode_authenticated",
    "encode_client_frame",
    "encode_close",
    "encode_permission_denied",
    "encode_stateless",
    "encode_sync_status",
    "encode_token_request",
    "parse_frame",
]

SYNC = 0
AWARENESS = 1
AUTH = 2
QUERY_AWARENESS = 3
STATELESS = 5
CLOSE = 7
SYNC_STATUS = 8
PING = 9
PONG = 10

AUTH_TOKEN = 0
AUTH_PERMISSION_DENIED = 1
AUTH_AUTHENTICATED = 2

SCOPE_READ_WRITE = "read-write"
SCOPE_READONLY = "readonly"

DEFAULT_MAX_NAME_BYTES = 512
"""A document name is a note id (plus the provider's optional ``\\0sessionId``)."""

PING_FRAME = bytes((PING,))
PONG_FRAME = bytes((PONG,))


class DocumentError(ProtocolError):
    """A malformed message for one document: close that document, keep the socket."""

    document: str

    def __init__(self, document: str, message: str, *, close_code: int = 4400) -> None:
        super().__init__(message, close_code=close_code)
        self.document = document

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_document_error, (self.document, str(self), self.close_code))


def _rebuild_document_error(document: str, message: str, close_code: int) -> DocumentError:
    return DocumentError(document, message, close_code=close_code)


@dataclass(frozen=True, slots=True)
class Token:
    """The auth message a provider sends for a document: its token and, since 3.x, its
    version."""

    token: str
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Stateless:
    """An application message with no effect on the doc (relayed, never stored)."""

    payload: str


@dataclass(frozen=True, slots=True)
class CloseDocument:
    """The provider detached the document."""


@dataclass(frozen=True, slots=True)
class Pong:
    """The socket-level answer to a ping."""


DocMessage: TypeAlias = (
    SyncStep1
    | SyncStep2
    | SyncUpdate
    | Awareness
    | QueryAwareness
    | Token
    | Stateless
    | CloseDocument
)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message for one document of a socket."""

    document: str
    message: DocMessage


Frame: TypeAlias = Envelope | Pong


def parse_frame(
    frame: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_name_bytes: int = DEFAULT_MAX_NAME_BYTES,
) -> Frame:
    """Parse one binary frame a provider sent.

    Raises `MessageTooLarge` (1009) over `max_bytes`, `ProtocolError` (4400) when the
    document name is unreadable (the socket cannot be trusted), and `DocumentError` (4400)
    for anything wrong after the name: unknown type, truncation, trailing bytes, bad UTF-8,
    a server-only message.
    """
    size = len(frame)
    if size > max_bytes:
        raise MessageTooLarge(f"frame of {size} bytes is over the {max_bytes}-byte limit")
    if isinstance(frame, str):
        raise ProtocolError("text frame where a binary frame was expected")
    if type(frame) is not bytes:
        frame = bytes(frame)
    if not size:
        raise ProtocolError("empty frame")
    if size == 1 and frame[0] == PONG:
        return Pong()
    name_length, pos = read_var_uint(frame, 0)
    if name_length > max_name_bytes:
        raise ProtocolError(f"document name of {name_length} bytes is over {max_name_bytes}")
    document, pos = read_var_string(frame, 0)
    if not document:
        raise ProtocolError("empty document name")
    try:
        return Envelope(document, _parse_body(frame, pos, size))
    except DocumentError:
        raise
    except ProtocolError as exc:
        raise DocumentError(document, str(exc), close_code=exc.close_code) from None


def _parse_body(frame: bytes, pos: int, size: int) -> DocMessage:
    kind, body = read_var_uint(frame, pos)
    if kind in (SYNC, AWARENESS, QUERY_AWARENESS):
        # The y-websocket frame starts at the type byte: reuse its parser as is.
        message = parse_message(frame[pos:], max_bytes=size)
        if isinstance(message, SyncStep1 | SyncStep2 | SyncUpdate | Awareness | QueryAwareness):
            return message
        raise ProtocolError(f"unexpected message {type(message).__name__}")  # pragma: no cover
    if kind == AUTH:
        auth_type, body = read_var_uint(frame, body)
        if auth_type != AUTH_TOKEN:
            raise ProtocolError(f"auth message type {auth_type} is not sent by clients")
        token, body = read_var_string(frame, body)
        version = None
        if body < size:
            version, body = read_var_string(frame, body)
        _end(body, size)
        return Token(token, version)
    if kind == STATELESS:
        payload, body = read_var_string(frame, body)
        _end(body, size)
        return Stateless(payload)
    if kind == CLOSE:
        _end(body, size)
        return CloseDocument()
    raise ProtocolError(f"unknown message type {kind}")


def _end(pos: int, size: int) -> None:
    if pos != size:
        raise ProtocolError(f"{size - pos} trailing bytes after the message")


# -- encoders ---------------------------------------------------------------------------


def document_prefix(document: str) -> bytes:
    """The bytes every frame of `document` starts with; put in front of a room's frames."""
    return write_var_string(document)


def encode_authenticated(prefix: bytes, scope: str) -> bytes:
    return prefix + bytes((AUTH, AUTH_AUTHENTICATED)) + write_var_string(scope)


def encode_permission_denied(prefix: bytes, reason: str) -> bytes:
    return prefix + bytes((AUTH, AUTH_PERMISSION_DENIED)) + write_var_string(reason)


def encode_token_request(prefix: bytes) -> bytes:
    """Asks the provider to send its token again (it calls its token function)."""
    return prefix + bytes((AUTH, AUTH_TOKEN))


def encode_stateless(prefix: bytes, payload: str) -> bytes:
    return prefix + bytes((STATELESS,)) + write_var_string(payload)


def encode_close(prefix: bytes, reason: str) -> bytes:
    """Server to client: this document is closed (the socket stays open)."""
    return prefix + bytes((CLOSE,)) + write_var_string(reason)


_SAVED = bytes((SYNC_STATUS, 1))
_NOT_SAVED = bytes((SYNC_STATUS, 0))


def encode_sync_status(prefix: bytes, saved: bool) -> bytes:
    return prefix + (_SAVED if saved else _NOT_SAVED)


def encode_client_frame(envelope: Envelope) -> bytes:
    """Encode what a provider sends; the inverse of `parse_frame` (tests, bench)."""
    prefix = document_prefix(envelope.document)
    message = envelope.message
    match message:
        case Token(token, version):
            body = bytes((AUTH, AUTH_TOKEN)) + write_var_string(token)
            if version is not None:
                body += write_var_string(version)
            return prefix + body
        case Stateless(payload):
            return encode_stateless(prefix, payload)
        case CloseDocument():
            return prefix + write_var_uint(CLOSE)
        case SyncStep1() | SyncStep2() | SyncUpdate() | Awareness() | QueryAwareness():
            return prefix + encode(message)
    raise TypeError(f"not a client message: {message!r}")
