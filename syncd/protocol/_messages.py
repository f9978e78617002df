"""y-websocket frames: typed messages, a strict parser and the encoders.

A frame is ``varuint messageType`` followed by a type-specific body:

- 0 sync: ``varuint syncType`` (0 step 1, 1 step 2, 2 update) + var-uint8-array
- 1 awareness: var-uint8-array holding an awareness update
- 2 auth: ``varuint authType`` (only 0, permission denied) + var-string reason
- 3 query-awareness: no body

Only the framing is checked here; the Yjs update and the awareness update
inside are validated where they are applied (pycrdt in the room,
``parse_awareness_update``), so relaying stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn, TypeAlias

from pycrdt import YMessageType, YSyncMessageType

from ._codec import read_var_string, read_var_uint, write_var_string, write_var_uint
from ._errors import MessageTooLarge, ProtocolError

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "Auth",
    "Awareness",
    "Message",
    "QueryAwareness",
    "SyncStep1",
    "SyncStep2",
    "SyncUpdate",
    "encode",
    "encode_awareness",
    "encode_permission_denied",
    "encode_query_awareness",
    "encode_sync_step1",
    "encode_sync_step2",
    "encode_update",
    "is_write",
    "parse_message",
]

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# Plain ints: comparing against IntEnum members costs a method call per test.
_SYNC = int(YMessageType.SYNC)
_AWARENESS = int(YMessageType.AWARENESS)
_AUTH = 2  # y-websocket's messageAuth; pycrdt does not define it
_QUERY_AWARENESS = 3  # y-websocket's messageQueryAwareness
_STEP1 = int(YSyncMessageType.SYNC_STEP1)
_STEP2 = int(YSyncMessageType.SYNC_STEP2)
_UPDATE = int(YSyncMessageType.SYNC_UPDATE)
_PERMISSION_DENIED = 0  # y-protocols/auth messagePermissionDenied


@dataclass(frozen=True, slots=True)
class SyncStep1:
    """Sync step 1: the sender's state vector, asking for what it lacks."""

    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    """Sync step 2: the update answering a step 1 (a write)."""

    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    """An incremental Yjs update (a write)."""

    update: bytes


@dataclass(frozen=True, slots=True)
class Awareness:
    """An awareness update, kept as raw bytes; see ``parse_awareness_update``."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Auth:
    """The y-protocols auth message; on the wire only "permission denied" exists."""

    permission_denied: bool
    reason: str


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    """A request for all known awareness states."""


Message: TypeAlias = SyncStep1 | SyncStep2 | SyncUpdate | Awareness | Auth | QueryAwareness

_SYNC_CLASSES: dict[int, type[SyncStep1] | type[SyncStep2] | type[SyncUpdate]] = {
    _STEP1: SyncStep1,
    _STEP2: SyncStep2,
    _UPDATE: SyncUpdate,
}


def parse_message(frame: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Message:
    """Parse one binary WebSocket frame into a message.

    Raises ``MessageTooLarge`` (close 1009) for a frame over ``max_bytes``,
    checked before anything is read, and ``ProtocolError`` (close 4400) for
    anything else that a stock y-websocket client would not send: empty frame,
    unknown message/sync/auth type, truncated or out-of-range var-uint, a length
    past the end, invalid UTF-8, trailing bytes.
    """
    size = len(frame)
    if size > max_bytes:
        raise MessageTooLarge(f"frame of {size} bytes is over the {max_bytes}-byte limit")
    if type(frame) is not bytes:
        if isinstance(frame, str):
            # y-websocket only sends binary frames; a text frame is a confused client.
            raise ProtocolError("text frame where a binary frame was expected")
        # Slices of a bytearray/memoryview would be mutable views; payloads must be bytes.
        frame = bytes(frame)
    if not size:
        raise ProtocolError("empty frame")
    kind = frame[0]
    if kind == _SYNC:
        # Fast path for the common shape: one-byte sync type and one-byte length.
        if size >= 3 and frame[1] < 0x80 and frame[2] < 0x80:
            sync_type = frame[1]
            start = 3
            length = frame[2]
            cls = _SYNC_CLASSES.get(sync_type)
        else:
            sync_type, pos = read_var_uint(frame, 1)
            # The type decides what follows: an unknown one is reported as such, not as
            # whatever reading its (absent) length would fail with.
            cls = _SYNC_CLASSES.get(sync_type)
            if cls is None:
                _unknown_sync_type(sync_type)
            length, start = read_var_uint(frame, pos)
        if cls is None:
            _unknown_sync_type(sync_type)
        if start + length != size:
            _bad_end(start + length, size)
        return cls(frame[start:])
    if kind == _AWARENESS:
        length, start = read_var_uint(frame, 1)
        if start + length != size:
            _bad_end(start + length, size)
        return Awareness(frame[start:])
    if kind == _AUTH:
        auth_type, pos = read_var_uint(frame, 1)
        if auth_type != _PERMISSION_DENIED:
            raise ProtocolError(f"unknown auth message type {auth_type}")
        reason, pos = read_var_string(frame, pos)
        if pos != size:
            _bad_end(pos, size)
        return Auth(permission_denied=True, reason=reason)
    if kind == _QUERY_AWARENESS:
        if size != 1:
            _bad_end(1, size)
        return QueryAwareness()
    # Reading the type properly reports truncated/overlong var-uints as such.
    kind, _ = read_var_uint(frame, 0)
    raise ProtocolError(f"unknown message type {kind}")


def _unknown_sync_type(sync_type: int) -> NoReturn:
    raise ProtocolError(f"unknown sync message type {sync_type}")


def _bad_end(end: int, size: int) -> NoReturn:
    if end > size:
        raise ProtocolError("length runs past the end of the frame")
    raise ProtocolError(f"{size - end} trailing bytes after the message")


#: a tuple, not a `X | Y` union: that builds a union object on every call
_WRITES = (SyncStep2, SyncUpdate)


def is_write(message: Message) -> bool:
    """Whether the message changes the doc, i.e. what a read-only client may not send."""
    return isinstance(message, _WRITES)


def _sync_frame(header: bytes, payload: bytes) -> bytes:
    size = len(payload)
    if size < 0x80:
        return header + bytes((size,)) + payload
    return header + write_var_uint(size) + payload


_STEP1_HEADER = bytes((_SYNC, _STEP1))
_STEP2_HEADER = bytes((_SYNC, _STEP2))
_UPDATE_HEADER = bytes((_SYNC, _UPDATE))
_AWARENESS_HEADER = bytes((_AWARENESS,))
_PERMISSION_DENIED_HEADER = bytes((_AUTH, _PERMISSION_DENIED))
_QUERY_AWARENESS_FRAME = bytes((_QUERY_AWARENESS,))


def encode_sync_step1(state_vector: bytes) -> bytes:
    """Frame a state vector as sync step 1."""
    return _sync_frame(_STEP1_HEADER, state_vector)


def encode_sync_step2(update: bytes) -> bytes:
    """Frame an update as sync step 2 (the answer to a step 1)."""
    return _sync_frame(_STEP2_HEADER, update)


def encode_update(update: bytes) -> bytes:
    """Frame an incremental Yjs update."""
    return _sync_frame(_UPDATE_HEADER, update)


def encode_awareness(payload: bytes) -> bytes:
    """Frame an encoded awareness update."""
    return _sync_frame(_AWARENESS_HEADER, payload)


def encode_permission_denied(reason: str) -> bytes:
    """Frame the y-protocols "permission denied" auth message."""
    return _PERMISSION_DENIED_HEADER + write_var_string(reason)


def encode_query_awareness() -> bytes:
    """Frame a query-awareness request."""
    return _QUERY_AWARENESS_FRAME


def encode(message: Message) -> bytes:
    """Encode any message; the inverse of ``parse_message``."""
    match message:
        case SyncUpdate(update):
            return encode_update(update)
        case SyncStep1(state_vector):
            return encode_sync_step1(state_vector)
        case SyncStep2(update):
            return encode_sync_step2(update)
        case Awareness(payload):
            return encode_awareness(payload)
        case Auth(permission_denied, reason):
            if not permission_denied:
                raise ValueError("only the permission-denied auth message has a wire form")
            return encode_permission_denied(reason)
        case QueryAwareness():
            return encode_query_awareness()
    raise TypeError(f"not a protocol message: {message!r}")
