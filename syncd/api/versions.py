"""Version history routes under `/api/collaborative-notes/{note_id}/versions`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.errors import ApiError
from syncd.api.models.versions import (
    MAX_NUMBER,
    DiffQuery,
    Label,
    Version,
    VersionContent,
    VersionDiff,
    VersionList,
    VersionNumber,
    version_json,
)
from syncd.api.operations import ERROR, operation, path_parameter
from syncd.api.requests import authenticate, require_access
from syncd.api.validation import read_body, read_query
from syncd.auth import Access
from syncd.content import json_to_text, sanitize
from syncd.services.versions import VersionNotFound, VersionService
from syncd.storage import NoteNotFound

TAGS = ["versions"]
path_parameter("number", VersionNumber)


def _versions(request: Request) -> VersionService:
    return request.app.state.services.versions


def _number(request: Request) -> int:
    number = request.path_params["number"]
    if not 1 <= number <= MAX_NUMBER:  # what storage holds, and what the document declares
        raise ApiError(422, f"the version number must be from 1 to {MAX_NUMBER}")
    return int(number)


@operation(
    "List a note's versions, newest first",
    responses={200: VersionList, 404: ERROR},
    tags=TAGS,
)
async def list_versions(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    await require_access(request, authenticate(request), note_id, Access.VIEW)
    records = await _versions(request).list(note_id)
    return JSONResponse({"versions": [version_json(r) for r in records]})


@operation(
    "Store the current content as a version (optionally labelled)",
    body=Label,
    body_required=False,
    responses={201: Version, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def create_version(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    principal = authenticate(request)
    body = await read_body(request, Label, optional=True)
    await require_access(request, principal, note_id, Access.EDIT)
    try:
        record = await _versions(request).take_version(
            note_id, label=body.text, created_by=principal.user_id
        )
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    assert record is not None
    return JSONResponse(version_json(record), status_code=201)


@operation(
    "A version's content as plain text and ProseMirror JSON",
    responses={200: VersionContent, 404: ERROR},
    tags=TAGS,
)
async def get_version(request: Request) -> Response:
    note_id, number = request.path_params["note_id"], _number(request)
    await require_access(request, authenticate(request), note_id, Access.VIEW)
    try:
        content = await _versions(request).content(note_id, number)
    except VersionNotFound:
        raise ApiError(404, "version not found") from None
    safe = sanitize(content.json)  # what Yjs clients wrote, within the safe schema
    return JSONResponse(
        {**version_json(content.record), "content": json_to_text(safe), "contentJson": safe}
    )


@operation(
    "What changed from `against` (a version number; default: the current content) to this version",
    query=DiffQuery,
    responses={200: VersionDiff, 404: ERROR},
    tags=TAGS,
)
async def diff_version(request: Request) -> Response:
    note_id, number = request.path_params["note_id"], _number(request)
    against = read_query(request, DiffQuery).against
    await require_access(request, authenticate(request), note_id, Access.VIEW)
    try:
        result = await _versions(request).diff(note_id, number, against)
    except VersionNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    return JSONResponse(
        {
            "number": result.number,
            "against": result.against,
            "diff": result.diff.unified,
            "added": list(result.diff.added),
            "removed": list(result.diff.removed),
        }
    )


@operation(
    "Bring the content back to this version: one CRDT update, sent live to connected "
    "editors, then stored as a new version",
    body=Label,
    body_required=False,
    responses={201: Version, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def restore_version(request: Request) -> Response:
    note_id, number = request.path_params["note_id"], _number(request)
    principal = authenticate(request)
    body = await read_body(request, Label, optional=True)
    await require_access(request, principal, note_id, Access.EDIT)
    try:
        record = await _versions(request).restore(
            note_id, number, editor=principal.user_id, label=body.text
        )
    except VersionNotFound:
        raise ApiError(404, "version not found") from None
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    return JSONResponse(version_json(record), status_code=201)


def routes() -> list[Route]:
    base = "/api/collaborative-notes/{note_id}/versions"
    return [
        Route(base, list_versions, methods=["GET"]),
        Route(base, create_version, methods=["POST"]),
        Route(base + "/{number:int}", get_version, methods=["GET"]),
        Route(base + "/{number:int}/diff", diff_version, methods=["GET"]),
        Route(base + "/{number:int}/restore", restore_version, methods=["POST"]),
    ]
