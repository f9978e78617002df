"""Where a caller's token is read from, the same way on every transport: the `token`
query parameter (what browsers can give a WebSocket or Socket.IO handshake), else an
`Authorization: Bearer` header. The one parser of that header."""

from __future__ import annotations

from urllib.parse import unquote_plus


def bearer_token(authorization: str | bytes | None) -> str | None:
    """The credentials of an `Authorization: Bearer <token>` header value, else None."""
    if not authorization:
        return None
    if isinstance(authorization, bytes):
        authorization = authorization.decode("latin-1")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


def query_or_bearer(query_string: str | bytes, authorization: str | bytes | None) -> str | None:
    """`?token=` first, else the bearer header."""
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    return query_token(query_string) or bearer_token(authorization)


def query_token(query_string: str) -> str | None:
    """The first non-empty `token` parameter, as `urllib.parse.parse_qs` reads it
    (`&`-separated, `+` and %-escapes decoded, blank values skipped), without building
    the whole mapping: it ran on every connect for one parameter (py-spy: 1-2% of it)."""
    for pair in query_string.split("&"):
        name, _, value = pair.partition("=")
        if not value:
            continue
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if name == "token":
            return unquote_plus(value) if "%" in value or "+" in value else value
    return None


#: the request-state key under which a REST request's verified `Principal` is kept
PRINCIPAL = "syncd.principal"
