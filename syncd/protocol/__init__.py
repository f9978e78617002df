"""The y-websocket wire format as pure functions: bytes in, typed messages out, and back.

No I/O and no other syncd imports. ``check_state_vector`` and ``check_update`` walk the
Yjs payloads inside sync frames before pycrdt is given them. Everything malformed raises
``ProtocolError``,
whose ``close_code`` (4400, or 1009 for an oversize frame) tells the transport how
to close the one offending connection.
"""

from __future__ import annotations

from ._awareness import AwarenessEntry, encode_awareness_update, parse_awareness_update
from ._codec import MAX_SAFE_INTEGER
from ._errors import MessageTooLarge, ProtocolError
from ._messages import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Auth,
    Awareness,
    Message,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    encode,
    encode_awareness,
    encode_permission_denied,
    encode_query_awareness,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    is_write,
    parse_message,
)
from ._ylimits import YLimits
from ._ysplits import check_splits, surrogate_pairs
from ._ystructs import (
    UpdateShape,
    check_dependencies,
    check_state_vector,
    check_update,
    plain_keystroke,
    read_state_vector,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_SAFE_INTEGER",
    "Auth",
    "Awareness",
    "AwarenessEntry",
    "Message",
    "MessageTooLarge",
    "ProtocolError",
    "QueryAwareness",
    "SyncStep1",
    "SyncStep2",
    "SyncUpdate",
    "UpdateShape",
    "YLimits",
    "check_dependencies",
    "check_splits",
    "check_state_vector",
    "check_update",
    "encode",
    "encode_awareness",
    "encode_awareness_update",
    "encode_permission_denied",
    "encode_query_awareness",
    "encode_sync_step1",
    "encode_sync_step2",
    "encode_update",
    "is_write",
    "parse_awareness_update",
    "parse_message",
    "plain_keystroke",
    "read_state_vector",
    "surrogate_pairs",
]
