"""Schemas of the notification, session, presence and monitoring routes (OpenAPI and body
validation share them)."""

from __future__ import annotations

from syncd.api.content_schemas import JSON_OBJECT
from syncd.api.note_schemas import NOTE_ID
from syncd.api.schema import (
    any_value,
    array,
    boolean,
    component,
    integer,
    nullable,
    number,
    obj,
    string,
    text,
)

_ID = text(min_length=1, max_length=200)
_TIME = string(fmt="date-time")

_NOTIFICATION = {
    "id": string(),
    "userId": string(),
    "type": string(),
    "category": string(),
    "title": string(),
    "message": string(),
    "data": obj({}, additional=True),
    "noteId": nullable(string()),
    "actorId": nullable(string()),
    "read": boolean(),
    "readAt": nullable(_TIME),
    "createdAt": _TIME,
}
NOTIFICATION = component("Notification", obj(_NOTIFICATION, required=_NOTIFICATION))
NOTIFICATION_LIST = obj(
    {
        "notifications": array(NOTIFICATION),
        "unreadCount": integer(minimum=0),
        "nextCursor": nullable(string(description="`cursor` of the next page; null: no more")),
    },
    required=("notifications", "unreadCount", "nextCursor"),
)
CREATED_NOTIFICATIONS = obj({"notifications": array(NOTIFICATION)}, required=("notifications",))
NEW_NOTIFICATION = {
    **obj(
        {
            "userIds": array(_ID, min_items=1, max_items=1000),
            "userId": _ID,
            "title": text(min_length=1, max_length=500),
            "message": text(max_length=10_000),
            "type": text(min_length=1, max_length=100),
            "category": text(min_length=1, max_length=100),
            "data": JSON_OBJECT,
            "noteId": nullable(NOTE_ID),
        },
        required=("title",),
        description="Recipients in `userIds` (or one `userId`)",
    ),
    "anyOf": [
        {"type": "object", "required": ["userIds"]},
        {"type": "object", "required": ["userId"]},
    ],
    "x-error": "userIds (or userId) must name at least one user",
}
UPDATED = obj({"updated": integer(minimum=0)}, required=("updated",))

_SESSION_STATS = {
    "updates": integer(minimum=0),
    "bytes": integer(minimum=0),
    "participantCount": integer(minimum=0),
    "durationSeconds": number(),
}
_SESSION = {
    "id": string(),
    "sessionId": string(),
    "noteId": string(),
    "participants": array(string()),
    "isActive": boolean(),
    "startedAt": _TIME,
    "endedAt": nullable(_TIME),
    "lastActivity": _TIME,
    "metadata": obj(_SESSION_STATS, required=_SESSION_STATS),
}
SESSION = component("CollaborativeSession", obj(_SESSION, required=_SESSION))
SESSION_LIST = obj(
    {"noteId": string(), "sessions": array(SESSION)}, required=("noteId", "sessions")
)
NOTE_REF = obj({"noteId": NOTE_ID}, required=("noteId",))

_PRESENT = {
    "userId": string(),
    "name": nullable(string()),
    "status": string(enum=("editing", "viewing", "idle")),
    "cursor": any_value(),
    "selection": any_value(),
    "lastSeen": _TIME,
    "connections": integer(minimum=1),
    "sources": array(string(enum=("websocket", "socket.io"))),
}
PRESENT_USER = component("PresentUser", obj(_PRESENT, required=_PRESENT))
PRESENCE = obj(
    {"noteId": string(), "users": array(PRESENT_USER), "count": integer(minimum=0)},
    required=("noteId", "users", "count"),
)

_QUEUE = {
    name: integer(minimum=0)
    for name in ("queued", "active", "scheduled", "complete", "failed", "retried")
}
_WORKER = {"running": boolean(), "concurrency": integer(minimum=0), "inFlight": integer(minimum=0)}
QUEUE_STATS = obj(
    {
        "mode": string(enum=("embedded", "redis")),
        "queues": obj({}, additional=obj(_QUEUE, required=_QUEUE)),
        "worker": obj(_WORKER, required=_WORKER),
        "jobs": array(string()),
    },
    required=("mode", "queues", "worker", "jobs"),
)
_JOB = {
    "id": string(),
    "function": string(),
    "queue": string(enum=("critical", "default", "bulk")),
    "status": string(enum=("queued", "scheduled", "active", "complete", "failed", "aborted")),
    "attempts": integer(minimum=0),
    "maxAttempts": integer(minimum=1),
    "enqueuedAt": number(),
    "startedAt": nullable(number()),
    "finishedAt": nullable(number()),
    "nextAttemptAt": nullable(number()),
    "error": nullable(string()),
    "result": any_value(),
}
JOB = component("Job", obj(_JOB, required=_JOB))
_CLUSTER = {
    "known": boolean(),
    "instances": integer(minimum=1),
    "connections": integer(minimum=0),
    "websocketConnections": integer(minimum=0),
}
SOCKET_STATS = obj(
    {
        "instance": obj({"id": string()}, required=("id",), additional=True),
        "cluster": obj(_CLUSTER, required=_CLUSTER),
    },
    required=("instance", "cluster"),
)
_STATUS = {
    "status": string(),
    "mode": string(enum=("embedded", "scaled")),
    "path": string(),
    "connections": integer(minimum=0),
}
SOCKET_STATUS = obj(_STATUS, required=_STATUS)
