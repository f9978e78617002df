"""REST routes under `/api/collaborative-notes`: authenticate, authorise, call `NoteService`."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.errors import ApiError
from syncd.api.note_schemas import (
    APPLIED,
    CREATE_NOTE,
    LIST_QUERY,
    NOTE,
    NOTE_LIST,
    UPDATE_NOTE,
    YJS_UPDATE,
)
from syncd.api.note_shapes import (
    invalid,
    note_json,
    parse_content,
    parse_lead_id,
    parse_metadata,
    parse_permissions,
    parse_title,
    view_json,
)
from syncd.api.openapi import ERROR, operation
from syncd.api.requests import authenticate, read_body, read_query, require_access
from syncd.auth import Access
from syncd.content import UnsafeContent
from syncd.notes import Forbidden, NoteNotFound, NoteService
from syncd.protocol import ProtocolError
from syncd.storage import NoteExists


def _notes(request: Request) -> NoteService:
    return request.app.state.services.notes


TAGS = ["notes"]


@operation(
    "Create a note; the caller owns it",
    body=CREATE_NOTE,
    responses={201: NOTE, 409: ERROR},
    tags=TAGS,
)
async def create_note(request: Request) -> Response:
    principal = authenticate(request)
    body = await read_body(request, CREATE_NOTE)
    if "title" not in body:
        raise invalid("title is required")
    note_id = body.get("id")  # None, or a note id (the schema checks its pattern)
    try:
        view = await _notes(request).create(
            principal,
            note_id=note_id,
            title=parse_title(body["title"]),
            lead_id=parse_lead_id(body.get("leadId")),
            permissions=parse_permissions(body.get("permissions") or {}),
            metadata=parse_metadata(body.get("metadata") or {}),
            content_json=parse_content(body),
        )
    except NoteExists:
        raise ApiError(409, "a note with this id exists") from None
    return JSONResponse(view_json(view), status_code=201)


@operation(
    "A note, its content read from the live doc", responses={200: NOTE, 404: ERROR}, tags=TAGS
)
async def get_note(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    await require_access(request, note_id, Access.VIEW)
    try:
        view = await _notes(request).view(note_id)
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    return JSONResponse(view_json(view))


@operation(
    "Change title, lead, metadata, permissions (owner or admin) or content; content "
    "becomes a CRDT update sent live to editors",
    body=UPDATE_NOTE,
    responses={200: NOTE, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def update_note(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    principal = authenticate(request)
    body = await read_body(request, UPDATE_NOTE)
    await require_access(request, note_id, Access.EDIT)
    changes: dict[str, Any] = {}
    if "title" in body:
        changes["title"] = parse_title(body["title"])
    if "leadId" in body:
        changes["lead_id"] = parse_lead_id(body["leadId"])
    if "metadata" in body:
        changes["metadata"] = parse_metadata(body["metadata"] or {})
    if "permissions" in body:
        changes["permissions"] = parse_permissions(body["permissions"] or {})
        record = await _notes(request).record(note_id)
        if (
            record is not None
            and record.created_by != principal.user_id
            and not (principal.privileged)
        ):
            raise ApiError(403, "only the owner or an admin may change permissions")
    content = parse_content(body)
    try:
        view = await _notes(request).update(principal, note_id, content_json=content, **changes)
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    except Forbidden as exc:
        raise ApiError(403, str(exc)) from None
    return JSONResponse(view_json(view))


@operation(
    "Delete a note and its doc; open connections close with 4404",
    responses={204: None, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def delete_note(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    _, may_delete = await require_access(request, note_id, Access.VIEW)
    if not may_delete:
        raise ApiError(403, "delete permission required")
    try:
        await _notes(request).delete(note_id)
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    return Response(status_code=204)


@operation(
    "The notes the caller may view, newest first",
    query=LIST_QUERY,
    responses={200: NOTE_LIST},
    tags=TAGS,
)
async def list_notes(request: Request) -> Response:
    principal = authenticate(request)
    params = read_query(request, LIST_QUERY)
    page: int = params.get("page", 1)
    limit: int = params.get("limit", 20)
    store = request.app.state.services.store
    records, total = await store.list_notes(
        viewer_id=None if principal.privileged else principal.user_id,
        lead_id=params.get("leadId") or None,
        q=params.get("q") or None,
        tag=params.get("tag") or None,
        category=params.get("category") or None,
        priority=params.get("priority") or None,
        offset=(page - 1) * limit,
        limit=limit,
    )
    return JSONResponse(
        {
            "notes": [note_json(r, content=r.content_text) for r in records],
            "pagination": {
                "page": page,
                "limit": limit,
                "total": total,
                "pages": math.ceil(total / limit) if total else 0,
            },
        }
    )


@operation(
    "Apply a Yjs update server-side (422 if pycrdt rejects it)",
    body=YJS_UPDATE,
    responses={200: APPLIED, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def apply_yjs_update(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    principal = authenticate(request)
    body = await read_body(request, YJS_UPDATE)
    await require_access(request, note_id, Access.EDIT)
    raw = body.get("update")
    if not isinstance(raw, str) or not raw:
        raise invalid("update must be a base64 string")
    try:
        update = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("update is not valid base64") from None
    try:
        await _notes(request).apply_update(note_id, update, principal.user_id)
    except ProtocolError as exc:
        raise invalid(str(exc)) from None
    except UnsafeContent as exc:  # the pointer is into the note's contentJson after it
        raise ApiError(422, f"update: {exc.reason}", pointer=exc.pointer) from None
    return JSONResponse({"applied": True, "bytes": len(update)})


def routes() -> list[Route]:
    prefix = "/api/collaborative-notes"
    return [
        Route(prefix, list_notes, methods=["GET"]),
        Route(prefix, create_note, methods=["POST"]),
        Route(prefix + "/{note_id}", get_note, methods=["GET"]),
        Route(prefix + "/{note_id}", update_note, methods=["PUT"]),
        Route(prefix + "/{note_id}", delete_note, methods=["DELETE"]),
        Route(prefix + "/{note_id}/yjs-update", apply_yjs_update, methods=["POST"]),
    ]
