"""`TokenVerifier` answers a token it verified lately from its cache, and only that exact
token, and never past the token's expiry."""

from __future__ import annotations

import pytest

from syncd.auth import AuthError, TokenVerifier, mint_token, tokens

SECRET = "unit-secret-unit-secret-unit-secret-1234"


def test_a_repeated_token_gives_the_same_principal() -> None:
    verifier = TokenVerifier(SECRET)
    token = mint_token(SECRET, "u1", name="U")
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # cached, not decoded again
    assert first.user_id == "u1" and first.name == "U"


def test_a_changed_token_is_verified_afresh() -> None:
    verifier = TokenVerifier(SECRET)
    token = mint_token(SECRET, "u1")
    verifier.verify(token)
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    with pytest.raises(AuthError):
        verifier.verify(forged)
    with pytest.raises(AuthError):
        verifier.verify(mint_token("another-secret-another-secret-1234", "u1"))


def test_a_cached_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(SECRET)
    token = mint_token(SECRET, "u1", ttl_seconds=60)
    principal = verifier.verify(token)
    later = principal.expires_at + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(AuthError, match="expired"):
        verifier.verify(token)  # from the cache
    assert token not in verifier._verified  # dropped: decoded (and refused) afresh next time


def test_the_cache_is_bounded() -> None:
    verifier = TokenVerifier(SECRET)
    for i in range(TokenVerifier.CACHE_SIZE + 10):
        verifier.verify(mint_token(SECRET, f"u{i}"))
    assert len(verifier._verified) == TokenVerifier.CACHE_SIZE
