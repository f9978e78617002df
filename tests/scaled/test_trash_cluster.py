"""The trash on two instances with live stock y-websocket clients: a note deleted on A
closes its connections on A and B with 4404 and answers 404 everywhere; restored on B, it
comes back with its content, and the same clients reconnect and edit together again."""

from __future__ import annotations

from tests.integration.collab_helpers import NOTES
from tests.support.fixtures import StartServer, create_note
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs


async def _connect(node: NodeYjs, name: str, server: SyncdProcess, note_id: str, user: str):
    return await node.connect(
        name,
        url=server.ws_url,
        room=note_id,
        token=make_token(user),
        reconnect=False,
        wait_synced=True,
    )


async def test_the_trash_cycle_across_two_instances(
    start_scaled: StartServer, node: NodeYjs
) -> None:
    a = await start_scaled(name="a")
    b = await start_scaled(name="b")
    note = await create_note(a, title="Q3 plan", permissions={"canEdit": ["bob"]})
    note_id = note["id"]
    url = f"{NOTES}/{note_id}"
    on_a = await _connect(node, "on-a", a, note_id, "owner")
    on_b = await _connect(node, "on-b", b, note_id, "bob")
    await on_a.pm_insert_text("typed on A. ", at="new_paragraph")
    await on_b.wait_pm_text(contains="typed on A.")
    await on_b.pm_insert_text("typed on B.")
    await on_a.wait_pm_text(equals="typed on A. typed on B.")

    async with a.client(make_token("owner")) as owner:
        assert (await owner.delete(url)).status_code == 204
    assert (await on_a.wait_closed())[0] == 4404
    assert (await on_b.wait_closed())[0] == 4404
    for name, server in (("a", a), ("b", b)):
        async with server.client(make_token("owner")) as api:
            assert (await api.get(url)).status_code == 404
            assert (await api.get(f"{url}/versions")).status_code == 404
            listed = (await api.get(NOTES)).json()["notes"]
            assert note_id not in {n["id"] for n in listed}
            trash = (await api.get(NOTES, params={"deleted": "true"})).json()["notes"]
            assert [n["id"] for n in trash] == [note_id] and "deletedAt" in trash[0]
        late = await node.connect(
            f"late-{name}",
            url=server.ws_url,
            room=note_id,
            token=make_token("owner"),
            reconnect=False,
        )
        assert (await late.wait_closed())[0] == 4404

    async with b.client(make_token("owner")) as owner:
        restored = await owner.post(f"{url}/restore")
    assert restored.status_code == 200, restored.text
    body = restored.json()
    assert body["content"] == "typed on A. typed on B."
    assert body["permissions"]["canEdit"] == ["bob"] and "deletedAt" not in body

    # the same providers connect again, on their own instances, and see the content
    await on_a.reconnect()
    await on_b.reconnect()
    await on_a.pm_insert_text(" Back on A.")
    await on_b.wait_pm_text(equals="typed on A. typed on B. Back on A.")
    for name, server in (("a", a), ("b", b)):
        fresh = await _connect(node, f"fresh-{name}", server, note_id, "bob")
        await fresh.wait_pm_text(equals="typed on A. typed on B. Back on A.")
        async with server.client(make_token("bob")) as api:
            assert (await api.get(url)).status_code == 200
