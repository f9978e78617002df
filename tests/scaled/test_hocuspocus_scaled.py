"""The Hocuspocus endpoint in the scaled mode: acks once the update is in the Redis stream,
and a provider on instance A edits with a y-websocket client on instance B."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.fixtures import StartServer, create_note
from tests.support.hocuspocus_node import hocuspocus_node, open_doc, open_socket
from tests.support.server import make_token
from tests.support.yjs_node import NodeYjs


@pytest.fixture
async def hp() -> AsyncIterator[NodeYjs]:
    async with hocuspocus_node() as hosted:
        yield hosted


async def test_a_provider_on_a_and_y_websocket_on_b_converge_and_acks_mean_durable(
    start_scaled: StartServer, hp: NodeYjs, node: NodeYjs
) -> None:
    a = await start_scaled(name="a")
    b = await start_scaled(name="b")
    note = await create_note(a)
    token = make_token("owner")
    await open_socket(hp, "s", f"ws://127.0.0.1:{a.port}/hocuspocus")
    tip = await open_doc(hp, "tip", socket="s", doc=note["id"], token=token, tiptap=True)
    await tip.wait("s.synced")
    peer = await node.connect("peer", url=b.ws_url, room=note["id"], token=token, reconnect=False)
    await peer.wait_synced()
    await tip.tiptap_type("over Redis")
    await peer.wait_pm_text(contains="over Redis")
    await peer.pm_insert_text(" and back")
    await tip.wait("s.tiptap.includes('and back')")
    await tip.type("acked")
    await tip.wait("s.unsynced === 0")
    await a.kill()  # acked means in the stream: B (or a restarted A) has it
    await tip.destroy()
    await peer.destroy()
    await b.kill()
    await b.start()
    check = await node.connect("check", url=b.ws_url, room=note["id"], token=token, reconnect=False)
    await check.wait_text(equals="acked")
    await check.wait_pm_text(contains="over Redis and back")


async def test_stateless_messages_reach_providers_on_another_instance(
    start_scaled: StartServer, hp: NodeYjs
) -> None:
    a = await start_scaled(name="a")
    b = await start_scaled(name="b")
    note = await create_note(a)
    token = make_token("owner")
    await open_socket(hp, "sa", f"ws://127.0.0.1:{a.port}/hocuspocus")
    await open_socket(hp, "sb", f"ws://127.0.0.1:{b.port}/hocuspocus")
    on_a = await open_doc(hp, "on_a", socket="sa", doc=note["id"], token=token)
    on_b = await open_doc(hp, "on_b", socket="sb", doc=note["id"], token=token)
    await on_a.wait("s.synced")
    await on_b.wait("s.synced")
    await on_a.stateless("from A")
    await on_b.wait("s.stateless.includes('from A')")
    await on_b.stateless("from B")
    await on_a.wait("s.stateless.includes('from B')")
    assert (await on_a.state())["stateless"] == ["from B"]  # nothing echoed or doubled
