"""Where a caller's token is read from, the same way on every transport: the `token`
query parameter (what browsers can give a WebSocket or Socket.IO handshake), else an
`Authorization: Bearer` header. The one parser of that header."""

from __future__ import annotations

from urllib.parse import parse_qs


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
    values = parse_qs(query_string).get("token")
    if values and values[0]:
        return values[0]
    return bearer_token(authorization)


#: the request-state key under which a REST request's verified `Principal` is kept
PRINCIPAL = "syncd.principal"
