"""Bounds for walking Yjs state vectors and updates, derived from the frame size limit.

Every declared count must also fit in the bytes left (each entry takes at least one or
two bytes), so these caps only matter for frames near the size limit; they keep the
work and the memory pycrdt spends on one frame proportional to its size.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._messages import DEFAULT_MAX_MESSAGE_BYTES

__all__ = ["MAX_ANY_DEPTH", "MAX_CLOCK", "MAX_KEY_BYTES", "MAX_TYPE_DEPTH", "YLimits"]

MAX_CLOCK = (1 << 32) - 1
"""yrs keeps clocks as u32: a clock or clock + length beyond it cannot come from a client
pycrdt can talk to, and would wrap inside it."""

MAX_KEY_BYTES = 4096
"""Names and keys: root type names, map keys, format keys, XML node names, Any keys."""

MAX_ANY_DEPTH = 128
"""Nesting of Any values (arrays and objects) and of JSON held in embeds and formats."""

MAX_TYPE_DEPTH = 128
"""Nesting of shared types created within one update (a type inside a type ...)."""

_MIN_CAP = 1024


@dataclass(frozen=True, slots=True)
class YLimits:
    """Per-frame caps; build with `for_message_bytes` from the configured frame limit."""

    max_clients: int
    max_structs: int
    max_delete_ranges: int
    max_key_bytes: int = MAX_KEY_BYTES
    max_any_depth: int = MAX_ANY_DEPTH
    max_type_depth: int = MAX_TYPE_DEPTH

    @classmethod
    def for_message_bytes(cls, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> YLimits:
        """Clients ≤ size/32, structs ≤ size/8, delete ranges ≤ size/4, each at least 1,024."""
        return cls(
            max_clients=max(_MIN_CAP, max_message_bytes // 32),
            max_structs=max(_MIN_CAP, max_message_bytes // 8),
            max_delete_ranges=max(_MIN_CAP, max_message_bytes // 4),
        )
