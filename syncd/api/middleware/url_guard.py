"""Refuses hostile URL text on `/api/` before routing: path and query must be UTF-8 once
percent-decoded (400), with no NUL byte (422), within length bounds (422), and no path
segment may hide a `/` as `%2F` (422).

The ASGI server decodes the path and Starlette the query leniently (invalid UTF-8 becomes
U+FFFD) and both keep NUL bytes, which Postgres then refuses mid-request. Checking here
covers every path and query parameter of every route, declared or not; the routes' own
query schemas (`syncd.api.requests.read_query`) add types and per-parameter bounds.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from syncd.api.errors import error_response
from syncd.api.inputs import InputError, check_text, parse_query

#: bytes of the raw path and of the raw query string; ids are at most a few hundred bytes
MAX_PATH_BYTES = 2048
MAX_QUERY_BYTES = 8192


def check_url(scope: Scope) -> None:
    """Raise `InputError` for a path or query string a route must never see."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
    raw_path = raw_path.partition(b"?")[0]
    if len(raw_path) > MAX_PATH_BYTES:
        raise InputError(422, f"the path is longer than {MAX_PATH_BYTES} bytes")
    if b"%2f" in raw_path.lower():
        # Starlette routes on the decoded path: `a%2Fsessions` would reach another route
        raise InputError(422, "a path segment contains an encoded '/'")
    try:
        path = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(400, "the path is not UTF-8 once percent-decoded") from None
    check_text(path, "the path")
    query: bytes = scope.get("query_string", b"")
    if len(query) > MAX_QUERY_BYTES:
        raise InputError(422, f"the query string is longer than {MAX_QUERY_BYTES} bytes")
    parse_query(query)


class UrlGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            try:
                check_url(scope)
            except InputError as exc:
                await error_response(exc.status, exc.message)(scope, receive, send)
                return
        await self.app(scope, receive, send)
