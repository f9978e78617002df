"""Version history routes under `/api/collaborative-notes/{note_id}/versions`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.errors import ApiError
from syncd.api.openapi import ERROR, operation, path_parameter
from syncd.api.requests import authenticate, read_body, read_query, require_access
from syncd.api.schema import (
    array,
    boolean,
    component,
    integer,
    nullable,
    obj,
    string,
    text,
)
from syncd.auth import Access
from syncd.content import json_to_text, sanitize
from syncd.storage import NoteNotFound, VersionRecord
from syncd.versions import VersionNotFound, VersionService

MAX_LABEL = 200
#: version numbers are 32-bit integers in storage; anything above names no version
MAX_NUMBER = 2**31 - 1
TAGS = ["versions"]
path_parameter("number", integer(minimum=1, maximum=MAX_NUMBER))
DIFF_QUERY = {"against": integer(minimum=1, maximum=MAX_NUMBER)}

_VERSION_FIELDS = {
    "number": integer(minimum=1),
    "label": nullable(string()),
    "createdAt": string(fmt="date-time"),
    "createdBy": nullable(string()),
    "authors": array(string()),
    "size": integer(minimum=0),
    "automatic": boolean(),
    "restoredFrom": nullable(integer(minimum=1)),
}
VERSION = component(
    "Version",
    obj(
        _VERSION_FIELDS,
        required=_VERSION_FIELDS,
        description="A stored version; size is the byte size of its Yjs state",
    ),
)
_CONTENT_FIELDS = {
    **_VERSION_FIELDS,
    "content": string(description="plain text"),
    "contentJson": obj({}, additional=True, description="ProseMirror JSON"),
}
VERSION_CONTENT = component("VersionContent", obj(_CONTENT_FIELDS, required=_CONTENT_FIELDS))
VERSION_DIFF = component(
    "VersionDiff",
    obj(
        {
            "number": integer(minimum=1),
            "against": nullable(integer(minimum=1)),
            "diff": string(description="unified diff, line based"),
            "added": array(string()),
            "removed": array(string()),
        },
        required=("number", "against", "diff", "added", "removed"),
    ),
)
LABEL_BODY = obj({"label": nullable(text(max_length=MAX_LABEL))})


def timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def version_json(record: VersionRecord) -> dict[str, Any]:
    return {
        "number": record.number,
        "label": record.label,
        "createdAt": timestamp(record.created_at),
        "createdBy": record.created_by,
        "authors": list(record.authors),
        "size": record.size,
        "automatic": record.automatic,
        "restoredFrom": record.restored_from,
    }


def _versions(request: Request) -> VersionService:
    return request.app.state.services.versions


def _number(request: Request) -> int:
    number = request.path_params["number"]
    if not 1 <= number <= MAX_NUMBER:  # what storage holds, and what the document declares
        raise ApiError(422, f"the version number must be from 1 to {MAX_NUMBER}")
    return int(number)


def _label(body: dict[str, Any]) -> str | None:
    label = body.get("label")
    return label.strip() or None if isinstance(label, str) else None


@operation(
    "List a note's versions, newest first",
    responses={200: obj({"versions": array(VERSION)}, required=("versions",)), 404: ERROR},
    tags=TAGS,
)
async def list_versions(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    await require_access(request, note_id, Access.VIEW)
    records = await _versions(request).list(note_id)
    return JSONResponse({"versions": [version_json(r) for r in records]})


@operation(
    "Store the current content as a version (optionally labelled)",
    body=LABEL_BODY,
    body_required=False,
    responses={201: VERSION, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def create_version(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    principal = authenticate(request)
    body = await read_body(request, LABEL_BODY, optional=True)
    await require_access(request, note_id, Access.EDIT)
    try:
        record = await _versions(request).take_version(
            note_id, label=_label(body), created_by=principal.user_id
        )
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    assert record is not None
    return JSONResponse(version_json(record), status_code=201)


@operation(
    "A version's content as plain text and ProseMirror JSON",
    responses={200: VERSION_CONTENT, 404: ERROR},
    tags=TAGS,
)
async def get_version(request: Request) -> Response:
    note_id, number = request.path_params["note_id"], _number(request)
    await require_access(request, note_id, Access.VIEW)
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
    query=DIFF_QUERY,
    responses={200: VERSION_DIFF, 404: ERROR},
    tags=TAGS,
)
async def diff_version(request: Request) -> Response:
    note_id, number = request.path_params["note_id"], _number(request)
    against = read_query(request, DIFF_QUERY).get("against")
    await require_access(request, note_id, Access.VIEW)
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
    body=LABEL_BODY,
    body_required=False,
    responses={201: VERSION, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def restore_version(request: Request) -> Response:
    note_id, number = request.path_params["note_id"], _number(request)
    principal = authenticate(request)
    body = await read_body(request, LABEL_BODY, optional=True)
    await require_access(request, note_id, Access.EDIT)
    try:
        record = await _versions(request).restore(
            note_id, number, editor=principal.user_id, label=_label(body)
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
