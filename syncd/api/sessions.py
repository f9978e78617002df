"""Collaborative sessions and presence of a note: `/api/collaborative-notes/sessions/*`,
`/api/collaborative-notes/:id/sessions`, `/api/collaborative-notes/:id/presence`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.errors import ApiError
from syncd.api.models.sessions import (
    CollaborativeSession,
    HistoryQuery,
    NoteRef,
    Presence,
    SessionList,
)
from syncd.api.operations import ERROR, operation
from syncd.api.requests import authenticate, require_access
from syncd.api.validation import read_body, read_query
from syncd.auth import Access
from syncd.services.presence.presence import merge_by_user
from syncd.services.sessions import session_json
from syncd.storage import StorageError

PREFIX = "/api/collaborative-notes"
TAGS = ["sessions"]


@operation(
    "Open the note's collaborative session (or join the active one)",
    body=NoteRef,
    responses={200: CollaborativeSession, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def start_session(request: Request) -> Response:
    principal = authenticate(request)
    note_id = (await read_body(request, NoteRef)).noteId
    await require_access(request, principal, note_id, Access.VIEW)
    user_id = principal.user_id
    try:
        record = await request.app.state.services.collab.sessions.start(note_id, (user_id,))
    except StorageError as exc:  # the note was deleted meanwhile
        raise ApiError(404, "note not found") from exc
    return JSONResponse(session_json(record))


@operation(
    "End the note's session, unless someone is still connected to the note: then it "
    "stays active and ends when the last connection leaves",
    body=NoteRef,
    responses={200: CollaborativeSession, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def end_session(request: Request) -> Response:
    principal = authenticate(request)
    note_id = (await read_body(request, NoteRef)).noteId
    await require_access(request, principal, note_id, Access.VIEW)
    collab = request.app.state.services.collab

    async def nobody(note_ids: list[str]) -> list[str]:
        """Asked with the session locked: a connection recorded meanwhile keeps it."""
        return [] if await collab.hub.presence(note_id) else note_ids

    ended = await collab.sessions.end_many([note_id], confirm=nobody)
    record = ended[0] if ended else await collab.sessions.active(note_id)
    if record is None:
        raise ApiError(404, "no active session for this note")
    return JSONResponse(session_json(record))


@operation(
    "The note's collaborative sessions, newest first",
    query=HistoryQuery,
    responses={200: SessionList, 404: ERROR},
    tags=TAGS,
)
async def list_sessions(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    limit = read_query(request, HistoryQuery).limit
    await require_access(request, authenticate(request), note_id, Access.VIEW)
    records = await request.app.state.services.collab.sessions.history(note_id, limit=limit)
    return JSONResponse({"noteId": note_id, "sessions": [session_json(r) for r in records]})


@operation(
    "Who is on the note now, on every instance: status, cursor and selection per user",
    responses={200: Presence, 404: ERROR},
    tags=TAGS,
)
async def presence(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    await require_access(request, authenticate(request), note_id, Access.VIEW)
    users = merge_by_user(await request.app.state.services.collab.hub.presence(note_id))
    return JSONResponse({"noteId": note_id, "users": users, "count": len(users)})


def routes() -> list[Route]:
    return [
        Route(PREFIX + "/sessions/start", start_session, methods=["POST"]),
        Route(PREFIX + "/sessions/end", end_session, methods=["POST"]),
        Route(PREFIX + "/{note_id}/sessions", list_sessions, methods=["GET"]),
        Route(PREFIX + "/{note_id}/presence", presence, methods=["GET"]),
    ]
