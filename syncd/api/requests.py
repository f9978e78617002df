"""Reading requests: the caller's identity and access, and a size-bounded JSON body.
Hostile-input rules shared by every route live in `syncd.api.inputs`; the body's and
query's own rules in their models (`syncd.api.validation`)."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from syncd.api.errors import ApiError
from syncd.api.inputs import InputError, decode_json
from syncd.auth import Access, AuthError, Principal
from syncd.auth.bearer import PRINCIPAL, bearer_token
from syncd.ids import NOTE_ID_PATTERN, is_note_id
from syncd.services.notes import NoteNotFound


def authenticate(request: Request) -> Principal:
    """The verified principal of a REST call, or 401. The rate-limit middleware verified
    the token already (`PRINCIPAL` in the request state): it is not verified twice."""
    verified = request.scope.get("state", {}).get(PRINCIPAL)
    if isinstance(verified, Principal):
        return verified
    services = request.app.state.services
    try:
        return services.notes.verify_token(bearer_token(request.headers.get("authorization")))
    except AuthError as exc:
        raise ApiError(401, str(exc)) from None


def authenticate_privileged(request: Request) -> Principal:
    """The caller of an operator route (webhook endpoints, jobs): 403 unless its token has
    the role service or admin. An admin is recorded as a user, off the request's path as a
    socket's user is (`NoteService.remember_user`): the admins told when a webhook endpoint
    is disabled are the users recorded with that role, and an admin who only ever used
    these routes would otherwise stay unknown."""
    principal = authenticate(request)
    if not principal.privileged:
        raise ApiError(403, "service or admin role required")
    if principal.admin:
        request.app.state.services.notes.remember_user(principal)
    return principal


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


def require_note_id(note_id: str) -> None:
    """422 for an id no note can have."""
    if not is_note_id(note_id):
        raise ApiError(422, f"note id must match {NOTE_ID_PATTERN}")


async def require_access(
    request: Request, principal: Principal, note_id: str, level: Access
) -> tuple[Access, bool]:
    """The (level, may delete) on the note of `principal`, whom the handler authenticated
    (once); 422 for an id no note can have (every route that names a note comes through
    here, and `/openapi.json` declares the pattern of each `{note_id}`), 404 for an unknown
    note, 403 below `level` (view included: as the WebSocket endpoint answers 4403,
    DESIGN.md's contract)."""
    require_note_id(note_id)
    try:
        access, may_delete = await request.app.state.services.notes.access(principal, note_id)
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    if access < level:
        raise ApiError(403, f"{level.name.lower()} permission required")
    return access, may_delete
