"""REST routes under `/api/collaborative-notes`: authenticate, authorise, call `NoteService`."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.errors import ApiError
from syncd.api.models.note_views import Applied, Note, NoteList, note_json, view_json
from syncd.api.models.notes import (
    CreateNote,
    DeleteQuery,
    ListQuery,
    NoteId,
    UpdateNote,
    YjsUpdate,
)
from syncd.api.operations import ERROR, operation, path_parameter
from syncd.api.requests import authenticate, require_access, require_note_id
from syncd.api.validation import read_body, read_query
from syncd.auth import Access
from syncd.content import UnsafeContent
from syncd.protocol import ProtocolError
from syncd.services.notes import Forbidden, NoteNotFound, NoteService
from syncd.storage import NoteExists, NoteMetadata, Permissions

path_parameter("note_id", NoteId)


def _notes(request: Request) -> NoteService:
    return request.app.state.services.notes


TAGS = ["notes"]


@operation(
    "Create a note; the caller owns it",
    body=CreateNote,
    responses={201: Note, 409: ERROR},
    tags=TAGS,
)
async def create_note(request: Request) -> Response:
    principal = authenticate(request)
    body = await read_body(request, CreateNote)
    try:
        view = await _notes(request).create(
            principal,
            note_id=body.id,
            title=body.title.strip(),
            lead_id=body.leadId,
            permissions=body.permissions.parse() if body.permissions else Permissions(),
            metadata=body.metadata.parse() if body.metadata else NoteMetadata(),
            content_json=body.doc,
        )
    except NoteExists:
        raise ApiError(409, "a note with this id exists") from None
    return JSONResponse(view_json(view), status_code=201)


@operation(
    "A note, its content read from the live doc", responses={200: Note, 404: ERROR}, tags=TAGS
)
async def get_note(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    await require_access(request, authenticate(request), note_id, Access.VIEW)
    try:
        view = await _notes(request).view(note_id)
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    return JSONResponse(view_json(view))


@operation(
    "Change title, lead, metadata, permissions (owner or admin) or content; content "
    "becomes a CRDT update sent live to editors",
    body=UpdateNote,
    responses={200: Note, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def update_note(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    principal = authenticate(request)
    body = await read_body(request, UpdateNote)
    require_note_id(note_id)  # rights are decided by the service on the row it reads
    changes = body.changes()
    try:
        view = await _notes(request).update(principal, note_id, content_json=body.doc, **changes)
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    except Forbidden as exc:
        raise ApiError(403, str(exc)) from None
    return JSONResponse(view_json(view))


@operation(
    "Move a note to the trash (delete right; its open connections close with 4404 and it "
    "answers 404 until restored), or with `permanent=true` purge it at once, live or from "
    "the trash (role admin only)",
    query=DeleteQuery,
    responses={204: None, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def delete_note(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    principal = authenticate(request)
    if read_query(request, DeleteQuery).permanent:
        require_note_id(note_id)
        if not principal.admin:
            raise ApiError(403, "only role admin may purge a note")
        try:
            await _notes(request).purge(note_id)
        except NoteNotFound:
            raise ApiError(404, "note not found") from None
        return Response(status_code=204)
    _, may_delete = await require_access(request, principal, note_id, Access.VIEW)
    if not may_delete:
        raise ApiError(403, "delete permission required")
    try:
        await _notes(request).delete(note_id)
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    return Response(status_code=204)


@operation(
    "Bring a note back from the trash with its content, versions and permissions (delete "
    "right); its users may connect again",
    responses={200: Note, 403: ERROR, 404: ERROR, 409: ERROR},
    tags=TAGS,
)
async def restore_note(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    principal = authenticate(request)
    require_note_id(note_id)
    notes = _notes(request)
    try:
        may_delete = await notes.trash_access(principal, note_id)
    except NoteNotFound:
        # a live note the caller may see is not in the trash; anything else is unknown
        await require_access(request, principal, note_id, Access.VIEW)
        raise ApiError(409, "the note is not in the trash") from None
    if not may_delete:
        raise ApiError(403, "delete permission required")
    try:
        view = await notes.restore(principal, note_id)
    except NoteNotFound:  # restored or purged meanwhile
        raise ApiError(404, "note not found in the trash") from None
    return JSONResponse(view_json(view))


@operation(
    "The notes the caller may view, newest first; with `deleted=true`, the notes in the "
    "trash the caller may delete (each with `deletedAt`), newest deletion first",
    query=ListQuery,
    responses={200: NoteList},
    tags=TAGS,
)
async def list_notes(request: Request) -> Response:
    principal = authenticate(request)
    params = read_query(request, ListQuery)
    page, limit = params.page, params.limit
    store = request.app.state.services.store
    records, total = await store.list_notes(
        viewer_id=None if principal.privileged else principal.user_id,
        lead_id=params.leadId or None,
        q=params.q or None,
        tag=params.tag or None,
        category=params.category or None,
        priority=params.priority or None,
        offset=(page - 1) * limit,
        limit=limit,
        trashed=params.deleted,
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
    "Apply a Yjs update server-side (422 if pycrdt rejects it, or if it would bring content "
    "outside the safe schema: `pointer` is then into the note's `contentJson` after it)",
    body=YjsUpdate,
    responses={200: Applied, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def apply_yjs_update(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    principal = authenticate(request)
    update = (await read_body(request, YjsUpdate)).update
    await require_access(request, principal, note_id, Access.EDIT)
    try:
        await _notes(request).apply_update(note_id, update, principal.user_id)
    except ProtocolError as exc:
        raise ApiError(422, str(exc)) from None
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
        Route(prefix + "/{note_id}/restore", restore_note, methods=["POST"]),
        Route(prefix + "/{note_id}/yjs-update", apply_yjs_update, methods=["POST"]),
    ]
