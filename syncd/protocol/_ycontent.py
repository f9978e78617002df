"""Walking the content of one Yjs item (update encoding v1) without building it.

The content reference is the low five bits of an item's info byte (yjs
`src/structs/Item.js`, `contentRefs`): 1 deleted, 2 JSON, 3 binary, 4 string, 5 embed,
6 format, 7 type, 8 any, 9 subdocument. 0 (GC) and 10 (skip) are structs of their own
and handled by the caller; 11-31 do not exist. Every reader here checks a declared
count or length against the bytes left before using it, which is the check pycrdt
skips before it allocates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from ._codec import MAX_SAFE_INTEGER, read_var_uint
from ._errors import ProtocolError
from ._ylimits import YLimits

__all__ = ["TYPE_CONTENT", "Cursor", "limit", "malformed", "skip_content", "surrogate_offsets"]

TYPE_CONTENT = 7
"""Content reference of a shared type (its item is the parent of the type's children)."""

# lib0 readAny tags (127 - tag is the index of lib0's readAnyLookupTable)
_UNDEFINED, _NULL, _INT, _FLOAT32, _FLOAT64, _BIGINT = 127, 126, 125, 124, 123, 122
_FALSE, _TRUE, _STRING, _OBJECT, _ARRAY, _BYTES = 121, 120, 119, 118, 117, 116
_FIXED_WIDTH = {_FLOAT32: 4, _FLOAT64: 8, _BIGINT: 8}
_NO_PAYLOAD = frozenset((_UNDEFINED, _NULL, _FALSE, _TRUE))
# yjs typeRefs: 0 array, 1 map, 2 text, 3 xml element (+ node name), 4 xml fragment,
# 5 xml hook (+ hook name), 6 xml text
_TYPE_REFS_WITH_NAME = frozenset((3, 5))
_MAX_TYPE_REF = 6


def malformed(message: str) -> ProtocolError:
    return ProtocolError(message, kind="malformed")


def limit(message: str) -> ProtocolError:
    return ProtocolError(message, kind="limit")


class Cursor:
    """A read position in an immutable buffer; every read is bounds checked."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0
        self.end = len(buf)

    @property
    def left(self) -> int:
        return self.end - self.pos

    def uint(self) -> int:
        # The common one-to-five-byte cases inline (client ids take five): this runs
        # several times per struct. Anything unusual goes through the strict reader.
        buf, pos, end = self.buf, self.pos, self.end
        value = shift = 0
        while pos < end and shift < 35:
            byte = buf[pos]
            pos += 1
            if byte < 0x80:
                if byte == 0 and shift:
                    break  # non-canonical: let read_var_uint say so
                self.pos = pos
                return value | (byte << shift)
            value |= (byte & 0x7F) << shift
            shift += 7
        value, self.pos = read_var_uint(buf, self.pos)
        return value

    def byte(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise malformed("truncated Yjs data")
        self.pos = pos + 1
        return self.buf[pos]

    def skip(self, size: int) -> None:
        if size > self.end - self.pos:
            raise malformed(f"{size} bytes declared where {self.left} are left")
        self.pos += size

    def count(self, what: str, cap: int, min_bytes: int = 1) -> int:
        """Read a declared number of entries: at most `cap`, and small enough that
        `min_bytes` per entry fit in what is left."""
        value = self.uint()
        if value > cap:
            raise limit(f"{value} {what} declared, over the limit of {cap}")
        if value * min_bytes > self.end - self.pos:
            raise malformed(f"{value} {what} declared where {self.left} bytes are left")
        return value

    def raw(self) -> bytes:
        size = self.uint()
        pos = self.pos
        if size > self.end - pos:
            raise malformed(f"a length of {size} declared where {self.left} bytes are left")
        self.pos = pos + size
        return self.buf[pos : pos + size]

    def string(self, max_bytes: int | None = None) -> str:
        raw = self.raw()
        if max_bytes is not None and len(raw) > max_bytes:
            raise limit(f"a name or key of {len(raw)} bytes, over {max_bytes}")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise malformed(f"invalid UTF-8 in a Yjs string: {exc.reason}") from None

    def var_int(self) -> None:
        """Skip a lib0 signed var-int (sign in bit 6 of the first byte)."""
        byte = self.byte()
        value = byte & 0x3F
        shift = 6
        while byte & 0x80:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            shift += 7
            if shift > 55:
                raise malformed("var-int longer than 8 bytes")
        if value > MAX_SAFE_INTEGER:
            raise malformed("var-int beyond 2**53 - 1")


def skip_content(cur: Cursor, ref: int, limits: YLimits, pairs: list[int] | None = None) -> int:
    """Walk one item's content; return its length in clock units (1 for most content,
    the element count for deleted/JSON/any, UTF-16 code units for a string).

    For a string with characters outside the BMP, the offset of each one's second
    UTF-16 unit (low surrogate) is appended to `pairs`: a clock no split may land on.
    """
    if ref == 4:  # string
        text = cur.string()
        if text.isascii():
            return _positive(len(text), "string")
        # Yjs counts in UTF-16 code units; a character outside the BMP takes two
        units = len(text.encode("utf-16-le")) >> 1
        if units != len(text) and pairs is not None:
            pairs.extend(surrogate_offsets(text))
        return _positive(units, "string")
    if ref == 8:  # any
        count = _positive(cur.count("values", cur.left), "any")
        for _ in range(count):
            _skip_any(cur, limits, 0)
        return count
    if ref == 6:  # format: key, then a JSON value
        cur.string(limits.max_key_bytes)
        _check_json(cur.string(), limits)
        return 1
    if ref == 7:  # type
        type_ref = cur.uint()
        if type_ref > _MAX_TYPE_REF:
            raise malformed(f"unknown shared type {type_ref}")
        if type_ref in _TYPE_REFS_WITH_NAME:
            cur.string(limits.max_key_bytes)
        return 1
    if ref == 1:  # deleted
        return _positive(cur.uint(), "deleted")
    if ref == 3:  # binary
        cur.raw()
        return 1
    if ref == 5:  # embed
        _check_json(cur.string(), limits)
        return 1
    if ref == 2:  # JSON (legacy): strings of JSON, "undefined" standing for undefined
        count = _positive(cur.count("JSON values", cur.left), "JSON")
        for _ in range(count):
            text = cur.string()
            if text != "undefined":
                _check_json(text, limits)
        return count
    if ref == 9:  # subdocument: guid, then its options as an Any
        cur.string(limits.max_key_bytes)
        _skip_any(cur, limits, 0)
        return 1
    raise malformed(f"unknown content type {ref}")


def surrogate_offsets(text: str) -> list[int]:
    """UTF-16 offsets of the low surrogates of `text` (one per character outside the BMP)."""
    found: list[int] = []
    units = 0
    for char in text:
        if ord(char) > 0xFFFF:
            found.append(units + 1)
            units += 2
        else:
            units += 1
    return found


def _positive(length: int, what: str) -> int:
    if length == 0:
        raise malformed(f"empty {what} content")  # Yjs never writes zero-length items
    return length


def _skip_any(cur: Cursor, limits: YLimits, depth: int) -> None:
    tag = cur.byte()
    if tag in _NO_PAYLOAD:
        return
    if tag == _STRING:
        cur.string()  # values may be long: only keys and names are capped
        return
    if tag == _INT:
        cur.var_int()
        return
    width = _FIXED_WIDTH.get(tag)
    if width is not None:
        cur.skip(width)
        return
    if tag == _BYTES:
        cur.raw()
        return
    if tag in (_OBJECT, _ARRAY):
        if depth >= limits.max_any_depth:
            raise limit(f"Any value nested deeper than {limits.max_any_depth}")
        if tag == _OBJECT:
            for _ in range(cur.count("object entries", cur.left, 2)):
                cur.string(limits.max_key_bytes)
                _skip_any(cur, limits, depth + 1)
        else:
            for _ in range(cur.count("array values", cur.left)):
                _skip_any(cur, limits, depth + 1)
        return
    raise malformed(f"unknown Any value tag {tag}")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# One decoder for every call: json.loads with an argument builds a new one each time.
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def _check_json(text: str, limits: YLimits) -> None:
    """JSON as JSON.parse takes it (no NaN/Infinity), nested at most `max_any_depth`."""
    try:
        value = _JSON.decode(text)
    except RecursionError:
        raise limit("JSON nested too deeply") from None
    except ValueError as exc:
        raise malformed(f"invalid JSON in Yjs content: {exc}") from None
    if isinstance(value, dict | list) and _json_depth(value) > limits.max_any_depth:
        raise limit(f"JSON nested deeper than {limits.max_any_depth}")


def _json_depth(value: object) -> int:
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[object]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
