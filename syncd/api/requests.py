"""Reading requests: the caller's identity, a size-bounded, validated JSON body and typed
query parameters. Hostile-input rules shared by every route live in `syncd.api.inputs`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from syncd.api.errors import ApiError
from syncd.api.inputs import InputError, decode_json
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
    """The body as a JSON object: 413 past the configured size, 415 when declared as
    something else than JSON, 400 when not UTF-8 JSON, 422 past the bounds every body
    obeys (`syncd.api.inputs`). With `optional`, an empty body reads as `{}`."""
    raw = await _read_bounded(request)
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(422, "a JSON object body is required")
    _require_json_media_type(request)
    try:
        body = decode_json(raw)
    except InputError as exc:
        raise ApiError(exc.status, exc.message) from None
    if not isinstance(body, dict):
        raise ApiError(422, "body must be a JSON object")
    return body


async def _read_bounded(request: Request) -> bytes:
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
    return b"".join(chunks)


def _require_json_media_type(request: Request) -> None:
    """No `Content-Type` reads as JSON (curl, scripts); a declared other type is refused
    rather than guessed at."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media_type, _, parameters = declared.partition(";")
    media_type = media_type.strip().lower()
    charset = re.search(r"charset\s*=\s*\"?([^\";\s]+)", parameters, re.IGNORECASE)
    if (media_type == "application/json" or _JSON_SUFFIX.fullmatch(media_type)) and (
        charset is None or charset.group(1).lower() in ("utf-8", "utf8")
    ):
        return
    raise ApiError(415, "the body must be application/json (UTF-8)")


_JSON_SUFFIX = re.compile(r"application/[a-z0-9.+-]+\+json")
_INTEGER = re.compile(r"-?[0-9]{1,18}")


def read_query(request: Request, declared: Mapping[str, Schema]) -> dict[str, Any]:
    """The declared query parameters that were given, converted to their schema's type and
    checked against it (422 naming the parameter); undeclared ones are ignored. An empty
    value is a value: `""` for a string (the routes read it as no filter), 422 for a
    number or a flag."""
    values: dict[str, Any] = {}
    for name, schema in declared.items():
        given = request.query_params.getlist(name)
        if not given:
            continue
        if len(given) > 1:
            raise ApiError(422, f"{name} is given more than once")
        raw = given[0]
        kind = schema.get("type")
        if kind == "integer":
            if not _INTEGER.fullmatch(raw):
                raise ApiError(422, f"{name} must be an integer")
            value: Any = int(raw)
        elif kind == "boolean":
            if raw not in ("true", "false"):
                raise ApiError(422, f"{name} must be true or false")
            value = raw == "true"
        else:
            value = raw
        try:
            check(schema, value, name)
        except SchemaError as exc:
            raise ApiError(422, str(exc)) from None
        values[name] = value
    return values


async def read_body(request: Request, schema: Schema, *, optional: bool = False) -> dict[str, Any]:
    """The body, validated against the schema its route declares in `/openapi.json`;
    with `optional`, an empty body reads as `{}`."""
    body = await read_json(request, optional=optional)
    try:
        check(schema, body)
    except SchemaError as exc:
        raise ApiError(422, str(exc), pointer=exc.pointer) from None
    return body


async def require_access(request: Request, note_id: str, level: Access) -> tuple[Access, bool]:
    """The caller's (level, may delete) on the note; 422 for an id no note can have (every
    route that names a note comes through here, and `/openapi.json` declares the pattern of
    each `{note_id}`), 404 for an unknown note, 403 below `level` (view included: as the
    WebSocket endpoint answers 4403, DESIGN.md's contract)."""
    if not is_note_id(note_id):
        raise ApiError(422, f"note id must match {NOTE_ID_PATTERN}")
    principal = authenticate(request)
    try:
        access, may_delete = await request.app.state.services.notes.access(principal, note_id)
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    if access < level:
        raise ApiError(403, f"{level.name.lower()} permission required")
    return access, may_delete
