"""List-view events over Socket.IO against a real server and socket.io-client: a note's
viewers hear `note:created`, `note:updated` and `note:deleted`; nobody else does."""

from __future__ import annotations

import pytest

from tests.integration.collab_helpers import FAST, NOTES
from tests.support.fixtures import StartServer, create_note
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs


@pytest.fixture
async def server(start_syncd: StartServer) -> SyncdProcess:
    return await start_syncd(env=FAST)


async def test_viewers_hear_a_note_created_renamed_shared_and_deleted(
    server: SyncdProcess, node: NodeYjs
) -> None:
    ann = await node.sio_connect("ann", server.http_url, token=make_token("ann"))
    bob = await node.sio_connect("bob", server.http_url, token=make_token("bob"))
    eve = await node.sio_connect("eve", server.http_url, token=make_token("eve"))

    note = await create_note(server, "ann", title="Plan", permissions={"canView": ["bob"]})
    for client in (ann, bob):
        [created] = await client.wait_sio_event("note:created", contains={"id": note["id"]})
        assert created["title"] == "Plan" and created["permissions"]["canView"] == ["bob"]

    async with server.client(make_token("ann")) as api:
        response = await api.put(f"{NOTES}/{note['id']}", json={"title": "Plan B"})
        assert response.status_code == 200
    [renamed] = await bob.wait_sio_event("note:updated", contains={"title": "Plan B"})
    assert renamed["id"] == note["id"]

    # Eve is shared in, Bob is dropped: for Bob's list the note is gone.
    async with server.client(make_token("ann")) as api:
        response = await api.put(
            f"{NOTES}/{note['id']}", json={"permissions": {"canEdit": ["eve"]}}
        )
        assert response.status_code == 200
    await eve.wait_sio_event("note:updated", contains={"id": note["id"]})
    await bob.wait_sio_event("note:deleted", contains={"id": note["id"]})

    async with server.client(make_token("ann")) as api:
        assert (await api.delete(f"{NOTES}/{note['id']}")).status_code == 204
    for client in (ann, eve):
        await client.wait_sio_event("note:deleted", contains={"id": note["id"]})
    # Eve heard nothing before she was shared in: her first list event is that update.
    eve_events = [e for e in node.client_events("eve", "sio") if e["name"].startswith("note:")]
    assert [e["name"] for e in eve_events] == ["note:updated", "note:deleted"]
    bob_events = [e for e in node.client_events("bob", "sio") if e["name"].startswith("note:")]
    assert [e["name"] for e in bob_events] == ["note:created", "note:updated", "note:deleted"]
