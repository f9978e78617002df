"""Helpers of the notification, presence and session tests (real servers, real clients)."""

from __future__ import annotations

from typing import Any, TypeVar

from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

T = TypeVar("T")

NOTES = "/api/collaborative-notes"
#: quick checkpoints, job polls and presence refreshes, so tests wait less
FAST = {
    "SYNCD_COMPACT_INTERVAL": "0.3",
    "SYNCD_JOB_POLL_INTERVAL": "0.05",
    "SYNCD_PRESENCE_REFRESH": "0.5",
}


async def notifications_of(
    server: SyncdProcess, user: str, **params: str
) -> tuple[list[dict[str, Any]], int]:
    async with server.client(make_token(user)) as api:
        response = await api.get("/api/notifications", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["notifications"], body["unreadCount"]


async def notify(server: SyncdProcess, users: list[str], title: str, **extra: Any) -> list[dict]:
    """Create notifications over REST with a service token."""
    async with server.client(make_token("crm", roles=("service",))) as api:
        response = await api.post(
            "/api/notifications", json={"userIds": users, "title": title, **extra}
        )
    assert response.status_code == 201, response.text
    return response.json()["notifications"]


async def introduce(server: SyncdProcess, node: NodeYjs, user: str, email: str) -> None:
    """The user connects once (syncd learns their e-mail from the token), then leaves."""
    client = await node.sio_connect(user, server.http_url, token=make_token(user, email=email))
    await client.sio_disconnect()

    async def offline() -> bool:
        async with server.client(make_token("ops", roles=("admin",))) as api:
            return (await api.get("/socket-status")).json()["connections"] == 0

    await eventually(offline, what=f"{user} disconnected")


async def presence_of(server: SyncdProcess, note_id: str, user: str = "owner") -> list[dict]:
    async with server.client(make_token(user)) as api:
        response = await api.get(f"{NOTES}/{note_id}/presence")
    assert response.status_code == 200, response.text
    return response.json()["users"]


async def job_stats(server: SyncdProcess) -> dict[str, Any]:
    async with server.client(make_token("ops", roles=("admin",))) as api:
        response = await api.get("/api/queue-stats")
    assert response.status_code == 200, response.text
    return response.json()


def mention(user_id: str, text_before: str = "Ask ") -> dict[str, Any]:
    """ProseMirror JSON with a y-prosemirror mention node for `user_id`."""
    return {
        "type": "doc",
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": text_before},
                    {"type": "mention", "attrs": {"id": user_id, "label": user_id.title()}},
                    {"type": "text", "text": " about it"},
                ],
            }
        ],
    }
