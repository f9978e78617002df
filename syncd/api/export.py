"""Export of a note's content (or a version's) as HTML, Markdown, plain text or JSON.

Whatever Yjs clients wrote, every format is rendered from the `sanitize`d ProseMirror
JSON (HTML is cleaned by nh3 once more), so a CRM can put an export in a page, a PDF or
an e-mail as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.errors import ApiError
from syncd.api.models.export import EXPORT, ExportQuery
from syncd.api.models.versions import MAX_NUMBER
from syncd.api.operations import ERROR, operation
from syncd.api.requests import authenticate, require_access
from syncd.api.validation import read_query
from syncd.auth import Access
from syncd.content import json_to_text, sanitize
from syncd.content.export_html import render_html_document
from syncd.content.export_markdown import render_markdown
from syncd.services.notes import NoteNotFound
from syncd.services.versions import VersionNotFound

TAGS = ["export"]

#: format: (media type, file extension)
FORMATS: Mapping[str, tuple[str, str]] = {
    "html": ("text/html; charset=utf-8", "html"),
    "markdown": ("text/markdown; charset=utf-8; variant=CommonMark", "md"),
    "text": ("text/plain; charset=utf-8", "txt"),
    "json": ("application/json", "json"),
}

_RENDER: Mapping[str, Callable[[dict[str, Any], str], str]] = {
    "html": lambda pm, title: render_html_document(pm, title),
    "markdown": lambda pm, title: render_markdown(pm),
    "text": lambda pm, title: json_to_text(pm) + "\n",
}


def _export(fmt: str, pm_json: dict[str, Any], title: str, name: str) -> Response:
    media_type, extension = FORMATS[fmt]
    safe = sanitize(pm_json)
    # the file name is built from ids ([A-Za-z0-9_-]) only: nothing to quote or escape
    headers = {"content-disposition": f'attachment; filename="{name}.{extension}"'}
    if fmt == "json":
        return JSONResponse(safe, headers=headers)
    return Response(_RENDER[fmt](safe, title), media_type=media_type, headers=headers)


@operation(
    "The note's content as HTML, Markdown (CommonMark), plain text or ProseMirror JSON, "
    "sanitised, as a download",
    query=ExportQuery,
    responses={200: EXPORT, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def export_note(request: Request) -> Response:
    note_id = request.path_params["note_id"]
    await require_access(request, authenticate(request), note_id, Access.VIEW)
    fmt = read_query(request, ExportQuery).format  # a bad format before loading the doc
    try:
        view = await request.app.state.services.notes.view(note_id)
    except NoteNotFound:
        raise ApiError(404, "note not found") from None
    return _export(fmt, view.json, view.record.title, note_id)


@operation(
    "A version's content as HTML, Markdown (CommonMark), plain text or ProseMirror JSON, "
    "sanitised, as a download",
    query=ExportQuery,
    responses={200: EXPORT, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def export_version(request: Request) -> Response:
    note_id, number = request.path_params["note_id"], request.path_params["number"]
    if not 1 <= number <= MAX_NUMBER:
        raise ApiError(422, f"the version number must be from 1 to {MAX_NUMBER}")
    await require_access(request, authenticate(request), note_id, Access.VIEW)
    fmt = read_query(request, ExportQuery).format
    try:
        content = await request.app.state.services.versions.content(note_id, number)
    except VersionNotFound:
        raise ApiError(404, "version not found") from None
    record = await request.app.state.services.notes.record(note_id)
    title = record.title if record is not None else note_id
    return _export(fmt, content.json, f"{title} (version {number})", f"{note_id}-v{number}")


def routes() -> list[Route]:
    prefix = "/api/collaborative-notes/{note_id}"
    return [
        Route(prefix + "/export", export_note, methods=["GET"]),
        Route(prefix + "/versions/{number:int}/export", export_version, methods=["GET"]),
    ]
