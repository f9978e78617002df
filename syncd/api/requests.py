"""Reading requests: the caller's identity and a size-bounded, validated JSON body."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from syncd.api.errors import ApiError
from syncd.auth import AuthError, Principal


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def authenticate(request: Request) -> Principal:
    """The verified principal of a REST call, or 401."""
    services = request.app.state.services
    try:
        return services.notes.verify_token(bearer_token(request))
    except AuthError as exc:
        raise ApiError(401, str(exc)) from None


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object; 413 past the configured size, 400 when not JSON."""
    limit: int = request.app.state.services.settings.limits.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body over {limit} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks) or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(422, "body must be a JSON object")
    return body
