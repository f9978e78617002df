"""Opaque keyset cursors for lists ordered newest first: `(created_at, id)` of the last
item of a page, so the next page neither skips nor repeats items that arrive meanwhile.
What one looks like in a query is `syncd.api.models.notifications.Cursor`."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from syncd.api.errors import ApiError


def encode_cursor(created_at: datetime, item_id: str) -> str:
    raw = f"{created_at.isoformat()}\n{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) of a cursor this server made; 422 for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, item_id = raw.split("\n", 1)
        created_at = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(422, "cursor is not a cursor this server made") from None
    if created_at.tzinfo is None or not item_id:
        raise ApiError(422, "cursor is not a cursor this server made")
    return created_at, item_id
