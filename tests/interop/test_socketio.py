"""Socket.IO (npm socket.io-client) and stock y-websocket clients on one real server:
joins, leaves and cursors reach the note's other listeners, and presence shows them."""

from __future__ import annotations

import pytest

from tests.integration.collab_helpers import FAST, NOTES, presence_of
from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

pytestmark = pytest.mark.interop


@pytest.fixture
async def server(start_syncd: StartServer) -> SyncdProcess:
    return await start_syncd(env=FAST)


async def test_note_join_is_announced_to_the_others_in_the_note(
    server: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(server, permissions={"canView": ["bob"]})
    ann = await node.sio_connect("ann", server.http_url, token=make_token("owner", name="Ann"))
    joined = await ann.sio_emit("note:join", {"noteId": note["id"]}, ack=True)
    assert joined["ok"] is True and [u["userId"] for u in joined["users"]] == ["owner"]
    bob = await node.sio_connect("bob", server.http_url, token=make_token("bob", name="Bob"))
    ack = await bob.sio_emit("note:join", {"noteId": note["id"]}, ack=True)
    assert sorted(u["userId"] for u in ack["users"]) == ["bob", "owner"]
    [event] = await ann.wait_sio_event("note:user-joined")
    assert event["noteId"] == note["id"] and event["user"] == {"id": "bob", "name": "Bob"}
    assert event["source"] == "socket.io"
    assert node.client_events("bob", "sio") == []  # not told about itself

    await bob.sio_emit("note:cursor", {"noteId": note["id"], "position": {"line": 3, "column": 7}})
    [moved] = await ann.wait_sio_event("note:cursor-update")
    assert moved["userId"] == "bob" and moved["position"] == {"line": 3, "column": 7}
    users = await eventually(
        lambda: _cursor_shown(server, note["id"], "bob"), what="bob's cursor in presence"
    )
    assert users["bob"]["sources"] == ["socket.io"]

    left = await bob.sio_emit("note:leave", {"noteId": note["id"]}, ack=True)
    assert left["ok"] is True
    [gone] = await ann.wait_sio_event("note:user-left")
    assert gone["userId"] == "bob" and gone["noteId"] == note["id"]
    assert [u["userId"] for u in await presence_of(server, note["id"])] == ["owner"]
    await ann.sio_disconnect()

    async def nobody() -> bool:
        return await presence_of(server, note["id"]) == []

    await eventually(nobody, what="presence emptied by the disconnect")


async def _cursor_shown(server: SyncdProcess, note_id: str, user: str) -> dict | None:
    users = {u["userId"]: u for u in await presence_of(server, note_id)}
    return users if users.get(user, {}).get("cursor") else None


async def test_joining_needs_view_rights_and_leaks_nothing(
    server: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(server)
    eve = await node.sio_connect("eve", server.http_url, token=make_token("eve"))
    for note_id in (note["id"], "no-such-note"):
        ack = await eve.sio_emit("note:join", {"noteId": note_id}, ack=True)
        assert ack == {"ok": False, "error": {"code": "not_found", "message": "note not found"}}
    bad = await eve.sio_emit("note:join", {"nope": 1}, ack=True)
    assert bad["ok"] is False and bad["error"]["code"] == "invalid"
    cursor = await eve.sio_emit("note:cursor", {"noteId": note["id"], "position": 1}, ack=True)
    assert cursor["error"]["code"] == "not_joined"


async def test_a_socket_that_loses_view_permission_leaves_the_note(
    server: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(server, permissions={"canView": ["bob"]})
    ann = await node.sio_connect("ann", server.http_url, token=make_token("owner", name="Ann"))
    assert (await ann.sio_emit("note:join", {"noteId": note["id"]}, ack=True))["ok"] is True
    bob = await node.sio_connect("bob", server.http_url, token=make_token("bob", name="Bob"))
    assert (await bob.sio_emit("note:join", {"noteId": note["id"]}, ack=True))["ok"] is True
    await ann.wait_sio_event("note:user-joined")
    async with server.client(make_token("owner")) as api:
        response = await api.put(f"{NOTES}/{note['id']}", json={"permissions": {"canView": []}})
        assert response.status_code == 200, response.text
    [gone] = await ann.wait_sio_event("note:user-left")
    assert gone["userId"] == "bob"
    assert [u["userId"] for u in await presence_of(server, note["id"])] == ["owner"]
    moved = await bob.sio_emit("note:cursor", {"noteId": note["id"], "position": 1}, ack=True)
    assert moved["error"]["code"] == "not_joined"


async def test_a_y_websocket_client_shows_in_presence_and_to_socket_io_listeners(
    server: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(server, permissions={"canEdit": ["ed"]})
    watcher = await node.sio_connect("watcher", server.http_url, token=make_token("owner"))
    await watcher.sio_emit("note:join", {"noteId": note["id"]}, ack=True)
    editor = await node.connect(
        "ed",
        url=server.ws_url,
        room=note["id"],
        token=make_token("ed", name="Ed"),
        wait_synced=True,
    )
    [joined] = await watcher.wait_sio_event("note:user-joined")
    assert joined["user"] == {"id": "ed", "name": "Ed"} and joined["source"] == "websocket"
    await editor.pm_type("hello")
    await editor.pm_cursor(2, 4)
    users = await eventually(
        lambda: _cursor_shown(server, note["id"], "ed"), what="ed's awareness cursor"
    )
    assert users["ed"]["status"] == "editing" and users["ed"]["sources"] == ["websocket"]
    assert set(users["ed"]["cursor"]) == {"anchor", "head"}
    assert users["owner"]["status"] == "viewing"
    await editor.disconnect()
    [left] = await watcher.wait_sio_event("note:user-left")
    assert left["userId"] == "ed" and left["source"] == "websocket"
    assert [u["userId"] for u in await presence_of(server, note["id"])] == ["owner"]


async def test_a_session_lasts_while_anyone_is_connected(
    server: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(server, permissions={"canEdit": ["bob"]})
    url = f"{NOTES}/{note['id']}/sessions"
    a = await node.connect(
        "a", url=server.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    b = await node.connect(
        "b", url=server.ws_url, room=note["id"], token=make_token("bob"), wait_synced=True
    )
    await a.pm_type("abc")
    await b.pm_type("xy")

    async def sessions() -> list[dict]:
        async with server.client(make_token("owner")) as api:
            response = await api.get(url)
        assert response.status_code == 200, response.text
        return response.json()["sessions"]

    async def active_with_both() -> dict | None:
        found = await sessions()
        if found and found[0]["isActive"] and len(found[0]["participants"]) == 2:
            return found[0]
        return None

    session = await eventually(active_with_both, what="one active session with both users")
    assert sorted(session["participants"]) == ["bob", "owner"]
    await a.disconnect()
    assert (await sessions())[0]["isActive"] is True
    await b.disconnect()

    async def ended() -> dict | None:
        found = await sessions()
        return found[0] if found and not found[0]["isActive"] else None

    done = await eventually(ended, what="the session ending with the last connection")
    assert done["id"] == session["id"] and len(await sessions()) == 1
    assert done["metadata"]["updates"] >= 5 and done["metadata"]["bytes"] > 0
    assert done["endedAt"] and done["metadata"]["durationSeconds"] > 0


async def test_sessions_over_rest(server: SyncdProcess) -> None:
    note = await create_note(server, permissions={"canView": ["bob"]})
    async with server.client(make_token("bob")) as api:
        started = await api.post(f"{NOTES}/sessions/start", json={"noteId": note["id"]})
        assert started.status_code == 200, started.text
        assert started.json()["isActive"] and started.json()["participants"] == ["bob"]
        again = await api.post(f"{NOTES}/sessions/start", json={"noteId": note["id"]})
        assert again.json()["id"] == started.json()["id"]
        ended = await api.post(f"{NOTES}/sessions/end", json={"noteId": note["id"]})
        assert ended.status_code == 200 and ended.json()["isActive"] is False
        assert (
            await api.post(f"{NOTES}/sessions/end", json={"noteId": note["id"]})
        ).status_code == 404
    async with server.client(make_token("eve")) as api:
        refused = await api.post(f"{NOTES}/sessions/start", json={"noteId": note["id"]})
        assert refused.status_code == 403
        assert (await api.get(f"{NOTES}/{note['id']}/sessions")).status_code == 403
        assert (await api.get(f"{NOTES}/{note['id']}/presence")).status_code == 403


async def test_socket_and_queue_monitoring(server: SyncdProcess, node: NodeYjs) -> None:
    await node.sio_connect("ann", server.http_url, token=make_token("ann"))
    async with server.client() as api:
        status = (await api.get("/socket-status")).json()
        stats = (await api.get("/socket-stats")).json()
        assert (await api.get("/api/queue-stats")).status_code == 401
    assert status["status"] == "ok" and status["connections"] == 1
    assert stats["instance"]["connections"] == 1 and stats["cluster"]["instances"] == 1
    assert stats["instance"]["namespaces"] == {"/": 1}
    async with server.client(make_token("ann")) as api:
        assert (await api.get("/api/queue-stats")).status_code == 403
    async with server.client(make_token("crm", roles=("service",))) as api:
        created = await api.post("/api/notifications", json={"userId": "ann", "title": "x"})
        assert created.status_code == 201
        stats = (await api.get("/api/queue-stats")).json()
        assert set(stats["queues"]) == {"critical", "default", "bulk"}
        assert stats["mode"] == "embedded" and stats["worker"]["running"] is True
        job_id = f"critical.deliver-{created.json()['notifications'][0]['id']}"

        async def finished() -> dict | None:
            body = (await api.get(f"/api/jobs/{job_id}")).json()
            return body if body.get("status") == "complete" else None

        job = await eventually(finished, what="the delivery job completing")
        assert job["function"] == "deliver_notification" and job["attempts"] == 1
        assert (await api.get("/api/jobs/critical.unknown")).status_code == 404
        assert (await api.get("/api/jobs/not-a-job")).status_code == 404
