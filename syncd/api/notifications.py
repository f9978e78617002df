"""REST routes under `/api/notifications`: a user's own notifications, and creation by
`service` / `admin` callers (the CRM back end)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.collab_schemas import (
    CREATED_NOTIFICATIONS,
    NEW_NOTIFICATION,
    NOTIFICATION,
    NOTIFICATION_LIST,
    UPDATED,
)
from syncd.api.cursors import CURSOR, decode_cursor, encode_cursor
from syncd.api.errors import ApiError
from syncd.api.openapi import ERROR, operation
from syncd.api.requests import authenticate, read_body, read_query
from syncd.api.schema import boolean, integer, text
from syncd.notifications import NotificationService, notification_json
from syncd.storage import NewNotification

MAX_LIMIT = 200
TAGS = ["notifications"]
_CATEGORY = text(max_length=100)
LIST_QUERY = {
    "limit": integer(minimum=1, maximum=MAX_LIMIT),
    "category": _CATEGORY,
    "unread": boolean(),
    "cursor": CURSOR,
}
CATEGORY_QUERY = {"category": _CATEGORY}


def _service(request: Request) -> NotificationService:
    return request.app.state.services.collab.notifications


@operation(
    "The caller's notifications, newest first, and their unread count; `nextCursor` "
    "(null on the last page) as `cursor` gives the next page",
    query=LIST_QUERY,
    responses={200: NOTIFICATION_LIST},
    tags=TAGS,
)
async def list_notifications(request: Request) -> Response:
    principal = authenticate(request)
    params = read_query(request, LIST_QUERY)
    limit: int = params.get("limit", 50)
    after = decode_cursor(params["cursor"]) if "cursor" in params else None
    records, unread = await _service(request).store.list(
        principal.user_id,
        limit=limit + 1,  # one more than asked: is there a next page?
        category=params.get("category") or None,
        unread=params.get("unread"),
        after=after,
    )
    page = records[:limit]
    more = len(records) > limit
    return JSONResponse(
        {
            "notifications": [notification_json(r) for r in page],
            "unreadCount": unread,
            "nextCursor": encode_cursor(page[-1].created_at, page[-1].id) if more else None,
        }
    )


@operation(
    "Mark one of the caller's notifications read",
    responses={200: NOTIFICATION, 404: ERROR},
    tags=TAGS,
)
async def mark_read(request: Request) -> Response:
    principal = authenticate(request)
    record = await _service(request).store.mark_read(
        principal.user_id, request.path_params["notification_id"]
    )
    if record is None:
        raise ApiError(404, "notification not found")
    return JSONResponse(notification_json(record))


@operation(
    "Delete one of the caller's notifications",
    responses={204: None, 404: ERROR},
    tags=TAGS,
)
async def delete_notification(request: Request) -> Response:
    principal = authenticate(request)
    notification_id = request.path_params["notification_id"]
    if not await _service(request).store.delete(principal.user_id, notification_id):
        raise ApiError(404, "notification not found")
    return Response(status_code=204)


@operation(
    "Mark all the caller's notifications read (of one category, if given)",
    query=CATEGORY_QUERY,
    responses={200: UPDATED},
    tags=TAGS,
)
async def mark_all_read(request: Request) -> Response:
    principal = authenticate(request)
    category = read_query(request, CATEGORY_QUERY).get("category") or None
    updated = await _service(request).store.mark_all_read(principal.user_id, category=category)
    return JSONResponse({"updated": updated})


@operation(
    "Create a notification for users (role service or admin); delivered over Socket.IO "
    "(`notification:new`) and by e-mail to users who are offline",
    body=NEW_NOTIFICATION,
    responses={201: CREATED_NOTIFICATIONS, 403: ERROR},
    tags=TAGS,
)
async def create_notifications(request: Request) -> Response:
    principal = authenticate(request)
    if not principal.privileged:
        raise ApiError(403, "only service or admin tokens create notifications")
    body = await read_body(request, NEW_NOTIFICATION)
    users = body.get("userIds") or [body["userId"]]
    new = NewNotification(
        type=body.get("type") or "general",
        category=body.get("category") or "general",
        title=body["title"],
        message=body.get("message") or "",
        data=body.get("data") or {},
        note_id=body.get("noteId"),
        actor_id=principal.user_id,
    )
    records = await _service(request).notify(users, new)
    return JSONResponse({"notifications": [notification_json(r) for r in records]}, status_code=201)


def routes() -> list[Route]:
    prefix = "/api/notifications"
    return [
        Route(prefix, list_notifications, methods=["GET"]),
        Route(prefix, create_notifications, methods=["POST"]),
        Route(prefix + "/mark-all-read", mark_all_read, methods=["PUT"]),
        Route(prefix + "/{notification_id}/read", mark_read, methods=["PUT"]),
        Route(prefix + "/{notification_id}", delete_notification, methods=["DELETE"]),
    ]
