"""What a client typed survives a graceful stop and a kill -9 of the (embedded) server."""

from __future__ import annotations

import signal

from tests.support.fixtures import create_note
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs


async def test_content_survives_a_graceful_stop(syncd: SyncdProcess, node: NodeYjs) -> None:
    note = await create_note(syncd)
    a = await node.connect(
        "a",
        url=syncd.ws_url,
        room=note["id"],
        token=make_token("owner"),
        reconnect=False,
        wait_synced=True,
    )
    await a.type("survives SIGTERM")
    await a.pm_set(
        {
            "type": "doc",
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "rich too"}]}],
        }
    )
    # Once a second client holds everything, the server has it (it relays only after storing).
    witness = await node.connect(
        "w", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    await witness.wait_text(equals="survives SIGTERM")
    await witness.wait_pm_text(contains="rich too")

    # uvicorn re-raises SIGTERM once it has shut down cleanly, as process managers expect
    assert await syncd.stop() in (0, -signal.SIGTERM)
    code, _ = await a.wait_closed()
    assert code == 1001
    await syncd.start()

    fresh = await node.connect(
        "fresh", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    assert await fresh.text() == "survives SIGTERM"
    assert await fresh.pm_text() == "rich too"
    async with syncd.client(make_token("owner")) as api:
        body = (await api.get(f"/api/collaborative-notes/{note['id']}")).json()
    assert body["content"] == "rich too"


async def test_an_update_another_client_received_survives_kill_9(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    writer = await node.connect(
        "w",
        url=syncd.ws_url,
        room=note["id"],
        token=make_token("owner"),
        reconnect=False,
        wait_synced=True,
    )
    reader = await node.connect(
        "r",
        url=syncd.ws_url,
        room=note["id"],
        token=make_token("owner"),
        reconnect=False,
        wait_synced=True,
    )
    markers = [f"<m{i}>" for i in range(30)]
    for marker in markers:
        await writer.insert(marker)
    await reader.wait_text(contains=markers[-1])
    received = await reader.text()

    await syncd.kill()
    await syncd.start()

    fresh = await node.connect(
        "fresh", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    text = await fresh.text()
    assert all(marker in text for marker in markers if marker in received)
    assert text == received
