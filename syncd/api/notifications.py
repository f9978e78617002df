"""REST routes under `/api/notifications`: a user's own notifications, and creation by
`service` / `admin` callers (the CRM back end)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.cursors import decode_cursor, encode_cursor
from syncd.api.errors import ApiError
from syncd.api.models.notifications import (
    CategoryQuery,
    CreatedNotifications,
    ListQuery,
    NewNotification,
    Notification,
    NotificationList,
    Updated,
)
from syncd.api.operations import ERROR, operation
from syncd.api.requests import authenticate
from syncd.api.validation import read_body, read_query
from syncd.services.notifications import NotificationService, notification_json
from syncd.storage import NewNotification as StoredNotification

TAGS = ["notifications"]


def _service(request: Request) -> NotificationService:
    return request.app.state.services.collab.notifications


@operation(
    "The caller's notifications, newest first, and their unread count; `nextCursor` "
    "(null on the last page) as `cursor` gives the next page",
    query=ListQuery,
    responses={200: NotificationList},
    tags=TAGS,
)
async def list_notifications(request: Request) -> Response:
    principal = authenticate(request)
    params = read_query(request, ListQuery)
    after = decode_cursor(params.cursor) if params.cursor is not None else None
    records, unread = await _service(request).store.list(
        principal.user_id,
        limit=params.limit + 1,  # one more than asked: is there a next page?
        category=params.category or None,
        unread=params.unread,
        after=after,
    )
    page = records[: params.limit]
    more = len(records) > params.limit
    return JSONResponse(
        {
            "notifications": [notification_json(r) for r in page],
            "unreadCount": unread,
            "nextCursor": encode_cursor(page[-1].created_at, page[-1].id) if more else None,
        }
    )


@operation(
    "Mark one of the caller's notifications read",
    responses={200: Notification, 404: ERROR},
    tags=TAGS,
)
async def mark_read(request: Request) -> Response:
    principal = authenticate(request)
    record = await _service(request).mark_read(
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
    query=CategoryQuery,
    responses={200: Updated},
    tags=TAGS,
)
async def mark_all_read(request: Request) -> Response:
    principal = authenticate(request)
    category = read_query(request, CategoryQuery).category or None
    updated = await _service(request).mark_all_read(principal.user_id, category=category)
    return JSONResponse({"updated": updated})


@operation(
    "Create a notification for users (role service or admin); delivered over Socket.IO "
    "(`notification:new`) and by e-mail to users who are offline, by the jobs in `jobIds`",
    body=NewNotification,
    responses={201: CreatedNotifications, 403: ERROR},
    tags=TAGS,
)
async def create_notifications(request: Request) -> Response:
    principal = authenticate(request)
    if not principal.privileged:
        raise ApiError(403, "only service or admin tokens create notifications")
    body = await read_body(request, NewNotification)
    new = StoredNotification(
        type=body.type,
        category=body.category,
        title=body.title,
        message=body.message,
        data=body.data,
        note_id=body.noteId,
        actor_id=principal.user_id,
    )
    queued = await _service(request).notify(body.recipients, new)
    return JSONResponse(
        {
            "notifications": [notification_json(record) for record, _ in queued],
            "jobIds": [job_id for _, job_id in queued if job_id is not None],
        },
        status_code=201,
    )


def routes() -> list[Route]:
    prefix = "/api/notifications"
    return [
        Route(prefix, list_notifications, methods=["GET"]),
        Route(prefix, create_notifications, methods=["POST"]),
        Route(prefix + "/mark-all-read", mark_all_read, methods=["PUT"]),
        Route(prefix + "/{notification_id}/read", mark_read, methods=["PUT"]),
        Route(prefix + "/{notification_id}", delete_notification, methods=["DELETE"]),
    ]
