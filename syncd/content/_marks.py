"""How y-prosemirror names marks in Yjs text formatting, and JSON value hygiene.

y-prosemirror stores each ProseMirror mark of a text run as one formatting
attribute of a ``Y.XmlText``: key = mark type name, value = the mark's attrs
object.  A mark type that does not exclude itself (``excludes: ""``, e.g.
comments) can occur several times on one run, so its key gets a suffix
``--`` + 8 base64 chars of a hash of the mark's JSON
(``marksToAttributes`` / ``yattr2markname`` in ``plugins/sync-plugin.js``,
``hashOfJSON`` in ``utils.js``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "JSON_SAFE_INT",
    "hashed_mark_key",
    "is_hashed_key",
    "mark_name",
    "normalize_value",
    "sort_marks",
]

# Same pattern as y-prosemirror's `hashedMarkNameRegex`; JS `exec` is unanchored at
# the start and `.` stops at a newline, hence `search` without DOTALL and `\Z`.
_HASHED_KEY = re.compile(r"(.*)(--[a-zA-Z0-9+/=]{8})\Z")

JSON_SAFE_INT = 2**53 - 1
"""Largest integer a JS number (hence a Yjs client) holds exactly."""

# ProseMirror orders a node's marks by schema rank, Yjs by format-item order, and
# yrs hands formatting back as an unordered map.  Emitting marks in the rank order
# of the usual schemas (prosemirror-schema-basic: link, em, strong, code; Tiptap:
# link (priority 1000), bold, code, italic, strike, underline) reproduces what
# y-prosemirror returns for content it wrote; other marks follow by name.  Order
# carries no meaning: ProseMirror re-sorts marks by rank when it parses JSON.
_KNOWN_MARK_RANK = {
    name: rank
    for rank, name in enumerate(
        ("link", "em", "strong", "bold", "code", "italic", "strike", "underline")
    )
}


def mark_name(key: str) -> str:
    """Mark type name of a Yjs formatting key (strip an overlapping-mark hash)."""
    m = _HASHED_KEY.search(key)
    return m.group(1) if m else key


def is_hashed_key(key: str) -> bool:
    return _HASHED_KEY.search(key) is not None


def normalize_value(value: Any) -> Any:
    """Return a JSON value the way a JS client sees it.

    yrs hands every number back as a float; JS has one number type, so integral
    floats become ints (``level: 2``, not ``2.0``).  Dict keys are sorted so that
    output is deterministic (yrs maps are unordered).
    """
    if isinstance(value, float) and value.is_integer() and abs(value) <= JSON_SAFE_INT:
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): normalize_value(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [normalize_value(v) for v in value]
    to_py = getattr(value, "to_py", None)  # a shared type nested in an attribute
    if callable(to_py):
        return normalize_value(to_py())
    return value


def sort_marks(marks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deterministic mark order: known schema rank, then name, then attrs."""
    unknown = len(_KNOWN_MARK_RANK)
    return sorted(
        marks,
        key=lambda m: (
            _KNOWN_MARK_RANK.get(m["type"], unknown),
            m["type"],
            json.dumps(m.get("attrs"), sort_keys=True, default=str),
        ),
    )


def hashed_mark_key(mark_type: str, attrs: Mapping[str, Any]) -> str:
    """Key y-prosemirror gives an overlapping mark: ``name--<hashOfJSON(mark.toJSON())>``.

    The hash only has to keep distinct marks of one type apart (readers strip
    it), but matching y-prosemirror's value avoids needless rewrites when an
    editor later re-syncs the same run.
    """
    mark_json: dict[str, Any] = {"type": mark_type}
    if attrs:  # ProseMirror's Mark.toJSON omits empty attrs
        mark_json["attrs"] = attrs
    digest = bytearray(hashlib.sha256(_encode_any(mark_json)).digest())
    for i in range(6, len(digest)):  # y-prosemirror's `_convolute` down to 6 bytes
        digest[i % 6] ^= digest[i]
    return f"{mark_type}--{base64.b64encode(bytes(digest[:6])).decode()}"


# --- lib0 `encoding.writeAny`, the input of y-prosemirror's hash ------------------


def _encode_any(value: Any) -> bytes:
    out = bytearray()
    _write_any(out, value)
    return bytes(out)


def _write_var_uint(out: bytearray, num: int) -> None:
    while num > 0x7F:
        out.append(0x80 | (num & 0x7F))
        num >>= 7
    out.append(num)


def _write_var_string(out: bytearray, s: str) -> None:
    data = s.encode("utf-8", "replace")
    _write_var_uint(out, len(data))
    out += data


def _write_number(out: bytearray, num: float) -> None:
    if num.is_integer() and abs(num) <= 0x7FFFFFFF:  # lib0: integer -> signed var int
        n = abs(int(num))
        negative = num < 0 or math.copysign(1.0, num) < 0
        out.append(125)
        out.append((0x80 if n > 0x3F else 0) | (0x40 if negative else 0) | (n & 0x3F))
        n >>= 6
        while n > 0:
            out.append((0x80 if n > 0x7F else 0) | (n & 0x7F))
            n >>= 7
        return
    try:
        packed32 = struct.pack(">f", num)
    except OverflowError:
        packed32 = b""
    if packed32 and struct.unpack(">f", packed32)[0] == num:  # exact as float32
        out.append(124)
        out += packed32
    else:
        out.append(123)
        out += struct.pack(">d", num)


def _js_key_order(keys: Iterable[str]) -> list[str]:
    # JS objects list integer-like keys first, ascending, then the rest in insertion order.
    keys = list(keys)
    index_keys = [k for k in keys if k.isdigit() and str(int(k)) == k and int(k) < 2**32 - 1]
    rest = [k for k in keys if k not in set(index_keys)]
    return sorted(index_keys, key=int) + rest


def _write_any(out: bytearray, value: Any) -> None:
    if isinstance(value, str):
        out.append(119)
        _write_var_string(out, value)
    elif isinstance(value, bool):
        out.append(120 if value else 121)
    elif isinstance(value, int | float):
        try:
            num = float(value)
        except OverflowError:
            num = math.copysign(math.inf, value)
        _write_number(out, num)
    elif value is None:
        out.append(126)
    elif isinstance(value, list | tuple):
        out.append(117)
        _write_var_uint(out, len(value))
        for item in value:
            _write_any(out, item)
    elif isinstance(value, Mapping):
        out.append(118)
        keys = _js_key_order(str(k) for k in value)
        _write_var_uint(out, len(keys))
        by_str = {str(k): v for k, v in value.items()}
        for key in keys:
            _write_var_string(out, key)
            _write_any(out, by_str[key])
    else:
        out.append(127)  # undefined
