"""The connect path's `?token=` reader agrees with `urllib.parse.parse_qs`, which it
replaced for speed (first non-empty `token`, `+` and %-escapes decoded)."""

from __future__ import annotations

from urllib.parse import parse_qs

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.auth.bearer import query_or_bearer, query_token


def reference(query: str) -> str | None:
    values = parse_qs(query).get("token")
    return values[0] if values and values[0] else None


@settings(max_examples=2000)
@given(st.text(alphabet="tokenab=&%+2012GZ;é ", max_size=40))
def test_reads_the_token_as_parse_qs_does(query: str) -> None:
    assert query_token(query) == reference(query)


def test_examples() -> None:
    assert query_token("token=abc") == "abc"
    assert query_token("x=1&token=&token=a%2Bb+c") == "a+b c"
    assert query_token("tok%65n=t") == "t"
    assert query_token("token") is None
    assert query_or_bearer(b"other=1", b"Bearer h") == "h"
    assert query_or_bearer(b"token=q", b"Bearer h") == "q"
