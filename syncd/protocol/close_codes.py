"""Every WebSocket close code syncd sends, in one place (DESIGN.md, "Close codes").

RFC 6455 codes for what the protocol names (going away, too big, try again); the 44xx
range mirrors the HTTP status a REST client would get for the same refusal.
"""

from __future__ import annotations

CLOSE_GOING_AWAY = 1001
"""The server is shutting down (the client reconnects to another instance)."""

CLOSE_TOO_LARGE = 1009

CLOSE_INTERNAL_ERROR = 1011
"""The server failed on its side (a send that failed); 1006 is reserved for "closed
without a close frame" and is never sent."""
"""A frame over `SYNCD_MAX_MESSAGE_BYTES` (RFC 6455 "message too big")."""

CLOSE_TRY_AGAIN = 1013
"""Storage unavailable, or a client too slow to keep up: reconnect later."""

CLOSE_MALFORMED = 4400
"""A malformed message, or an update that pycrdt rejects."""

CLOSE_UNAUTHORIZED = 4401
"""Missing, invalid or expired token (also at the token's `exp` while connected)."""

CLOSE_FORBIDDEN = 4403
"""No view permission (also when it is revoked while connected)."""

CLOSE_NOT_FOUND = 4404
"""Unknown note, or the note was deleted while connected."""

CLOSE_RATE_LIMITED = 4429
"""Rate limit exceeded."""
