"""The hostile-input rules of `syncd.api.inputs`, one function at a time (the REST tests
in tests/api hold the server to the same rules over HTTP)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.api.inputs import (
    MAX_JSON_DEPTH,
    InputError,
    check_json,
    decode_json,
    parse_query,
)


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_the_walk_costs_no_stack_however_deep_the_value() -> None:
    # built in Python, past what json.loads (or any recursive walk) could reach
    with pytest.raises(InputError, match=f"nested deeper than {MAX_JSON_DEPTH}") as caught:
        check_json(_nested(200_000))
    assert caught.value.status == 422
    check_json(_nested(MAX_JSON_DEPTH))


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"[" * 5000 + b"]" * 5000, 422, "nested deeper than 128 levels"),
        (b'{"a": {"b": ["ok", "x\\u0000"]}}', 422, "a.b[1] contains a NUL byte"),
        (b'{"a\\u0000": 1}', 422, "a key in body contains a NUL byte"),
        (b'{"a": "\\udc00"}', 422, "a contains an unpaired surrogate"),
        (b'{"a": 1, "a": 1}', 422, "'a' appears more than once"),
        (b'{"a": 9007199254740992}', 422, "a is beyond"),
        (b'{"a": 1e400}', 422, "a is beyond"),
        (b'{"a": ' + b"1" * 5000 + b"}", 422, "beyond"),
        (b'{"a": NaN}', 400, "NaN is not a JSON value"),
        (b'{"a": "\xff"}', 400, "not UTF-8"),
        (b'{"a": }', 400, "not valid JSON"),
    ],
)
def test_decode_json_refuses(raw: bytes, status: int, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[")) as caught:
        decode_json(raw)
    assert caught.value.status == status


_TEXT = st.characters(blacklist_characters="\x00", codec="utf-8")
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(-1e15, 1e15)
    | st.text(alphabet=_TEXT),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet=_TEXT, max_size=8), inner)
    ),
    max_leaves=20,
)


@given(_JSON)
def test_decode_json_takes_every_value_within_the_rules(value: object) -> None:
    assert decode_json(json.dumps(value).encode()) == value


def test_parse_query_decodes_strictly() -> None:
    assert parse_query(b"q=caf%C3%A9+au+lait&empty=&flag&&x=%2B") == [
        ("q", "café au lait"),
        ("empty", ""),
        ("flag", ""),
        ("x", "+"),
    ]
    with pytest.raises(InputError, match="query parameter q is not UTF-8"):
        parse_query(b"q=%FF")
    with pytest.raises(InputError, match="query parameter q contains a NUL byte"):
        parse_query(b"q=a%00")
