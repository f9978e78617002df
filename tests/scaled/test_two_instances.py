"""Two syncd instances on one Redis and one Postgres: an edit travels client → A → Redis →
B → client, and what happens on one instance is honoured on the other."""

from __future__ import annotations

import pytest

from tests.support.fixtures import StartServer, create_note
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs


@pytest.fixture
async def pair(start_scaled: StartServer) -> tuple[SyncdProcess, SyncdProcess]:
    return await start_scaled(name="a"), await start_scaled(name="b")


async def test_clients_on_two_instances_converge(pair, node: NodeYjs) -> None:
    a, b = pair
    note = await create_note(a)
    on_a = await node.connect(
        "on-a", url=a.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    on_b = await node.connect(
        "on-b", url=b.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    await on_a.insert("from A. ")
    await on_b.wait_text(contains="from A.")
    await on_b.insert("from B.")
    await on_a.wait_text(contains="from B.")
    assert await on_a.text() == await on_b.text()


async def test_awareness_crosses_instances_and_is_removed(pair, node: NodeYjs) -> None:
    a, b = pair
    note = await create_note(a)
    on_a = await node.connect(
        "on-a", url=a.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    on_b = await node.connect(
        "on-b", url=b.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    await on_a.awareness_set({"user": {"name": "Ada"}})
    states = await on_b.wait_awareness(client_id=on_a.client_id)
    assert states[on_a.client_id]["user"]["name"] == "Ada"
    late_b = await node.connect(
        "late-b", url=b.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    await late_b.wait_awareness(client_id=on_a.client_id)
    await on_a.disconnect()
    await on_b.wait_awareness(client_id=on_a.client_id, absent=True)


async def test_a_late_joiner_on_either_instance_gets_the_full_state(pair, node: NodeYjs) -> None:
    a, b = pair
    note = await create_note(a)
    writer = await node.connect(
        "w", url=a.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    await writer.type("typed on A")
    witness = await node.connect(
        "witness", url=a.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    await witness.wait_text(equals="typed on A")
    for server, name in ((b, "late-b"), (a, "late-a")):
        late = await node.connect(
            name, url=server.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
        )
        await late.wait_text(equals="typed on A")


async def test_a_permission_revoked_on_a_closes_the_connection_on_b(pair, node: NodeYjs) -> None:
    a, b = pair
    note = await create_note(a, permissions={"canEdit": ["bob"]})
    bob = await node.connect(
        "bob",
        url=b.ws_url,
        room=note["id"],
        token=make_token("bob"),
        reconnect=False,
        wait_synced=True,
    )
    async with a.client(make_token("owner")) as api:
        response = await api.put(
            f"/api/collaborative-notes/{note['id']}", json={"permissions": {"canEdit": []}}
        )
        assert response.status_code == 200, response.text
    assert (await bob.wait_closed())[0] == 4403


async def test_a_note_deleted_on_a_closes_its_connections_on_b(pair, node: NodeYjs) -> None:
    a, b = pair
    note = await create_note(a)
    on_b = await node.connect(
        "on-b",
        url=b.ws_url,
        room=note["id"],
        token=make_token("owner"),
        reconnect=False,
        wait_synced=True,
    )
    async with a.client(make_token("owner")) as api:
        assert (await api.delete(f"/api/collaborative-notes/{note['id']}")).status_code == 204
    assert (await on_b.wait_closed())[0] == 4404


async def test_readyz_reports_redis_and_the_database(pair) -> None:
    a, _ = pair
    async with a.client() as api:
        body = (await api.get("/readyz")).json()
    assert body["status"] == "ready", body
    assert body["checks"]["redis"] == "ok" and body["checks"]["database"] == "ok"
