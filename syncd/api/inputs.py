"""Hostile-input checks every REST edge shares, whatever the route or its schema.

A JSON body is decoded strictly (UTF-8, no duplicate keys, no NaN) and then walked without
recursion: bounded nesting, no NUL byte or unpaired surrogate in any string or key, bounded
keys, and numbers within ±(2**53 - 1), which a JavaScript client reads back exactly and
Postgres holds in a bigint. URL text (path and query) gets the same
text rules. Route schemas add per-field bounds on top; these rules hold even for a field
no schema describes (free-form `data`, ProseMirror attributes), and before any value can
reach storage: Postgres refuses a NUL byte, the drivers refuse unpaired surrogates and
integers past 64 bits, and Python's decoder raises `RecursionError` near 1,000 levels.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

__all__ = [
    "JSON_SAFE_INT",
    "MAX_JSON_DEPTH",
    "MAX_KEY_LENGTH",
    "InputError",
    "check_json",
    "check_text",
    "decode_json",
    "parse_query",
]

#: Nesting bound of a JSON body (objects and lists). A ProseMirror node costs two levels
#: (the node and its `content` list), so 128 admits about 60 nested nodes: editors cap list
#: indentation near 9 levels (two nodes each), and a table adds three, so real documents
#: stay under 30 nodes deep. It also stays far below Python's recursion limit, which the
#: recursive consumers of a body (schema check, content checks, the Yjs writer) rely on.
MAX_JSON_DEPTH = 128
#: object keys are names (of fields, attributes, data entries), never content
MAX_KEY_LENGTH = 256
#: the largest number in a body (Number.MAX_SAFE_INTEGER of JavaScript)
JSON_SAFE_INT = 2**53 - 1
_MAX_INT_DIGITS = len(str(JSON_SAFE_INT)) + 1  # room for a sign
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


class InputError(ValueError):
    """Input refused before it reaches a handler: 400 when it is not what it claims to be
    (not UTF-8, not JSON), 422 when it is well-formed but out of bounds."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_text(value: str, where: str) -> None:
    """No NUL byte (Postgres refuses it) and no unpaired surrogate (not encodable as UTF-8)."""
    bad = _BAD_TEXT.search(value)
    if bad is not None:
        what = "a NUL byte" if bad.group() == "\x00" else "an unpaired surrogate"
        raise InputError(422, f"{where} contains {what}")


def decode_json(raw: bytes, where: str = "body") -> Any:
    """`raw` as a JSON value, checked by `check_json`; `InputError` on anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(400, f"{where} is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_int=_bounded_int,
        )
    except InputError:
        raise
    except RecursionError:
        raise InputError(422, f"{where} is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise InputError(400, f"{where} is not valid JSON: {exc}") from None
    check_json(value, where)
    return value


def check_json(value: Any, where: str = "body") -> None:
    """Walk a decoded JSON value iteratively (so depth costs no stack) and apply the rules."""
    # (value, depth, path): a path is (parent path, key), rendered only for an error
    pending: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 1, (None, where))]
    while pending:
        item, depth, path = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or not item.isascii():
                _check_at(item, path)
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise InputError(422, f"{where} is nested deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    if len(key) > MAX_KEY_LENGTH:
                        raise InputError(
                            422, f"{_render(path)} has a key longer than {MAX_KEY_LENGTH}"
                        )
                    if "\x00" in key or not key.isascii():
                        check_text(key, f"a key in {_render(path)}")
                    pending.append((child, depth + 1, (path, key)))
            else:
                pending.extend((child, depth + 1, (path, i)) for i, child in enumerate(item))
        elif (
            isinstance(item, int | float)
            and not isinstance(item, bool)
            and not -JSON_SAFE_INT <= item <= JSON_SAFE_INT  # also true for NaN
        ):
            raise InputError(422, f"{_render(path)} is beyond ±(2**53 - 1)")


def parse_query(raw: bytes) -> list[tuple[str, str]]:
    """A query string as (name, value) pairs, decoded strictly: `InputError` 400 when a
    percent-decoded part is not UTF-8, 422 for a NUL byte. Splits the way Starlette's
    `request.query_params` does, so both see the same pairs."""
    pairs: list[tuple[str, str]] = []
    for part in raw.split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        name = _unquote(raw_name, "a query parameter name")
        pairs.append((name, _unquote(raw_value, f"query parameter {name[:64]}")))
    return pairs


def _unquote(raw: bytes, where: str) -> str:
    try:
        text = unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(400, f"{where} is not UTF-8") from None
    check_text(text, where)
    return text


def _check_at(text: str, path: tuple[Any, ...]) -> None:
    check_text(text, _render(path))


def _render(path: tuple[Any, ...]) -> str:
    keys: list[Any] = []
    node: tuple[Any, ...] | None = path
    while node is not None:
        node, key = node
        keys.append(key)
    keys.reverse()
    rendered = str(keys[0])
    for key in keys[1:]:
        if isinstance(key, int):
            rendered += f"[{key}]"
        else:
            name = str(key)[:64]
            rendered = name if rendered == "body" else f"{rendered}.{name}"
    return rendered if len(rendered) <= 200 else rendered[:200] + "..."


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python keeps the last of duplicate keys, other parsers the first: a proxy or log
    # reader could see a different body than this handler does
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InputError(422, f"key {key[:64]!r} appears more than once in an object")
            seen.add(key)
    return value


def _no_constant(name: str) -> Any:
    raise InputError(400, f"{name} is not a JSON value")


def _bounded_int(literal: str) -> int:
    # checked on the literal, before Python builds an arbitrarily long integer from it
    if len(literal) > _MAX_INT_DIGITS:
        raise InputError(422, "a number in the body is beyond ±(2**53 - 1)")
    return int(literal)
