"""Tiptap's stock `@hocuspocus/provider` on syncd's `/hocuspocus` endpoint, beside y-websocket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.fixtures import create_note
from tests.support.hocuspocus_node import hocuspocus_node, open_doc, open_socket
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

pytestmark = pytest.mark.interop


def hp_url(server: SyncdProcess) -> str:
    return f"ws://127.0.0.1:{server.port}/hocuspocus"


@pytest.fixture
async def hp() -> AsyncIterator[NodeYjs]:
    async with hocuspocus_node() as hosted:
        yield hosted


async def test_tiptap_and_y_websocket_converge_and_see_each_other(
    syncd: SyncdProcess, hp: NodeYjs, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    await open_socket(hp, "s", hp_url(syncd))
    tip = await open_doc(
        hp,
        "tip",
        socket="s",
        doc=note["id"],
        token=make_token("owner"),
        tiptap=True,
        user={"name": "Tip"},
    )
    await tip.wait("s.synced && s.scope === 'read-write'")
    yws = await node.connect(
        "yws", url=syncd.ws_url, room=note["id"], token=make_token("owner"), reconnect=False
    )
    await yws.wait_synced()
    await tip.tiptap_type("Hello from Tiptap")
    await yws.wait_pm_text(contains="Hello from Tiptap")
    await yws.pm_insert_text(" and y-websocket")
    await tip.wait("s.tiptap.includes('and y-websocket')")
    await tip.wait("s.unsynced === 0")
    assert (await yws.pm_get()) is not None
