"""Opaque keyset cursors for lists ordered newest first: `(created_at, id)` of the last
item of a page, so the next page neither skips nor repeats items that arrive meanwhile.
What one looks like in a query is `syncd.api.models.notifications.Cursor`. Jobs carry their
time as epoch seconds: their cursor keeps the float exactly (`repr` round-trips)."""

from __future__ import annotations

import base64
import binascii
import math
from datetime import datetime

from syncd.api.errors import ApiError

_NOT_OURS = "cursor is not a cursor this server made"


def _encode(stamp: str, item_id: str) -> str:
    raw = f"{stamp}\n{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, item_id = raw.split("\n", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(422, _NOT_OURS) from None
    if not item_id:
        raise ApiError(422, _NOT_OURS)
    return stamp, item_id


def encode_cursor(created_at: datetime, item_id: str) -> str:
    return _encode(created_at.isoformat(), item_id)


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) of a cursor this server made; 422 for anything else."""
    stamp, item_id = _decode(cursor)
    try:
        created_at = datetime.fromisoformat(stamp)
    except ValueError:
        raise ApiError(422, _NOT_OURS) from None
    if created_at.tzinfo is None:
        raise ApiError(422, _NOT_OURS)
    return created_at, item_id


def encode_epoch_cursor(at: float, item_id: str) -> str:
    return _encode(repr(at), item_id)


def decode_epoch_cursor(cursor: str) -> tuple[float, str]:
    """The (epoch seconds, id) of a cursor this server made; 422 for anything else."""
    stamp, item_id = _decode(cursor)
    try:
        at = float(stamp)
    except ValueError:
        raise ApiError(422, _NOT_OURS) from None
    if not math.isfinite(at):
        raise ApiError(422, _NOT_OURS)
    return at, item_id
