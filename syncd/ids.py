"""Note ids: one alphabet and length, checked at every edge (REST, WebSocket, auto-create).

Ids end up in Redis key names, log lines, URLs and Postgres text columns. Restricting them
to a URL- and key-safe alphabet means no id can contain a hash-tag brace, a key separator,
a path separator or a NUL byte, whatever layer handles it. The bound keeps keys short.
"""

from __future__ import annotations

import re

__all__ = ["NOTE_ID_MAX", "NOTE_ID_PATTERN", "is_note_id"]

NOTE_ID_MAX = 128
#: what `POST /api/collaborative-notes` accepts as `id` and what `/ws/notes/{id}` serves
NOTE_ID_PATTERN = rf"^[A-Za-z0-9_-]{{1,{NOTE_ID_MAX}}}$"
_NOTE_ID = re.compile(NOTE_ID_PATTERN[1:-1])


def is_note_id(value: object) -> bool:
    """Whether `value` is a well-formed note id (says nothing about whether it exists)."""
    return isinstance(value, str) and _NOTE_ID.fullmatch(value) is not None
