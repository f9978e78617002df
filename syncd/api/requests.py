"""Reading requests: the caller's identity and a size-bounded, validated JSON body."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from syncd.api.errors import ApiError
from syncd.api.schema import Schema, SchemaError, check
from syncd.auth import Access, AuthError, Principal
from syncd.ids import NOTE_ID_PATTERN, is_note_id
from syncd.notes import NoteNotFound


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


async def read_json(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object; 413 past the configured size, 400 when not JSON
    (with `optional`, an empty body reads as `{}`)."""
    limit: int = request.app.state.services.settings.limits.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
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
    if body is None and optional:
        return {}
    if not isinstance(body, dict):
        raise ApiError(422, "body must be a JSON object")
    return body


async def read_body(request: Request, schema: Schema, *, optional: bool = False) -> dict[str, Any]:
    """The body, validated against the schema its route declares in `/openapi.json`;
    with `optional`, an empty body reads as `{}`."""
    body = await read_json(request, optional=optional)
    try:
        check(schema, body)
    except SchemaError as exc:
        raise ApiError(422, str(exc)) from None
    return body


async def require_access(request: Request, note_id: str, level: Access) -> tuple[Access, bool]:
    """The caller's (level, may delete) on the note; 422 for an id no note can have (every
    route that names a note comes through here, and `/openapi.json` declares the pattern of
    each `{note_id}`), 404 without view (so note ids do not leak), 403 below `level`."""
    if not is_note_id(note_id):
        raise ApiError(422, f"note id must match {NOTE_ID_PATTERN}")
    principal = authenticate(request)
    try:
        access, may_delete = await request.app.state.services.notes.access(principal, note_id)
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    if access < Access.VIEW:
        raise ApiError(404, "note not found")
    if access < level:
        raise ApiError(403, f"{level.name.lower()} permission required")
    return access, may_delete
