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
from syncd.api.errors import ApiError
from syncd.api.openapi import ERROR, operation
from syncd.api.requests import authenticate, read_body
from syncd.api.schema import boolean, integer, string
from syncd.notifications import NotificationService, notification_json
from syncd.storage import NewNotification

MAX_LIMIT = 200
TAGS = ["notifications"]


def _service(request: Request) -> NotificationService:
    return request.app.state.services.collab.notifications


def _flag(raw: str | None, name: str) -> bool | None:
    if raw is None or raw == "":
        return None
    if raw.lower() in {"1", "true", "yes"}:
        return True
    if raw.lower() in {"0", "false", "no"}:
        return False
    raise ApiError(422, f"{name} must be true or false")


@operation(
    "The caller's notifications, newest first, and their unread count",
    query={
        "limit": integer(minimum=1, maximum=MAX_LIMIT),
        "category": string(),
        "unread": boolean(),
    },
    responses={200: NOTIFICATION_LIST},
    tags=TAGS,
)
async def list_notifications(request: Request) -> Response:
    principal = authenticate(request)
    params = request.query_params
    raw_limit = params.get("limit") or "50"
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ApiError(422, f"limit must be an integer from 1 to {MAX_LIMIT}")
    records, unread = await _service(request).store.list(
        principal.user_id,
        limit=int(raw_limit),
        category=params.get("category") or None,
        unread=_flag(params.get("unread"), "unread"),
    )
    return JSONResponse(
        {"notifications": [notification_json(r) for r in records], "unreadCount": unread}
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
    "Mark all the caller's notifications read (of one category, if given)",
    query={"category": string()},
    responses={200: UPDATED},
    tags=TAGS,
)
async def mark_all_read(request: Request) -> Response:
    principal = authenticate(request)
    category = request.query_params.get("category") or None
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
    users = body.get("userIds") or ([body["userId"]] if body.get("userId") else [])
    if not users:
        raise ApiError(422, "userIds must name at least one user")
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
    ]
