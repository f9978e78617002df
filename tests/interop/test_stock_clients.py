"""Stock Yjs clients (y-websocket's WebsocketProvider, y-prosemirror) editing through syncd."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.fixtures import create_note
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

pytestmark = pytest.mark.interop


async def connect(
    node: NodeYjs, server: SyncdProcess, name: str, note_id: str, user: str = "owner"
):
    client = await node.connect(
        name, url=server.ws_url, room=note_id, token=make_token(user), reconnect=False
    )
    await client.wait_synced()
    return client


async def test_two_clients_converge_on_a_y_text(syncd: SyncdProcess, node: NodeYjs) -> None:
    note = await create_note(syncd)
    a = await connect(node, syncd, "a", note["id"])
    b = await connect(node, syncd, "b", note["id"])
    await a.insert("hello ")
    await b.insert("world")
    await a.wait_text(contains="world")
    await b.wait_text(contains="hello")
    assert await a.text() == await b.text()


async def test_two_clients_converge_on_the_prosemirror_fragment(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    a = await connect(node, syncd, "a", note["id"])
    b = await connect(node, syncd, "b", note["id"])
    doc = {
        "type": "doc",
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 1},
                "content": [{"type": "text", "text": "Call"}],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "bold", "marks": [{"type": "strong"}]},
                    {"type": "text", "text": " and plain"},
                ],
            },
        ],
    }
    await a.pm_set(doc)
    await b.wait_pm_text(contains="bold and plain")
    await b.pm_insert_text(" — noted")
    await a.wait_pm_text(contains="noted")
    assert await a.pm_get() == await b.pm_get()


async def test_a_late_joiner_gets_the_full_state(syncd: SyncdProcess, node: NodeYjs) -> None:
    note = await create_note(syncd)
    a = await connect(node, syncd, "a", note["id"])
    await a.type("typed before anyone else came")
    await a.pm_set(
        {
            "type": "doc",
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "rich"}]}],
        }
    )
    late = await connect(node, syncd, "late", note["id"])
    await late.wait_text(equals="typed before anyone else came")
    await late.wait_pm_text(contains="rich")


async def test_edits_made_offline_merge_after_reconnect(syncd: SyncdProcess, node: NodeYjs) -> None:
    note = await create_note(syncd)
    a = await connect(node, syncd, "a", note["id"])
    b = await connect(node, syncd, "b", note["id"])
    await a.insert("base.")
    await b.wait_text(equals="base.")
    await b.disconnect()
    await b.insert(" offline-b")
    await a.insert(" online-a")
    await b.reconnect(token=make_token("owner"))
    await b.wait_text(contains="online-a")
    await a.wait_text(contains="offline-b")
    assert await a.text() == await b.text()


async def test_twenty_clients_making_fifty_edits_each_converge(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    clients = await asyncio.gather(*(connect(node, syncd, f"c{i}", note["id"]) for i in range(20)))
    await asyncio.gather(*(c.type(f"<{i}>" * 10, timeout=60) for i, c in enumerate(clients)))
    # 20 clients x 10 markers x 3 or 4 chars: every client must end with every marker.
    expected_length = sum(len(f"<{i}>") * 10 for i in range(20))
    await asyncio.gather(*(c.wait_text(min_length=expected_length, timeout=60) for c in clients))
    texts = await asyncio.gather(*(c.text() for c in clients))
    assert len(set(texts)) == 1
    assert all(texts[0].count(f"<{i}>") == 10 for i in range(20))


async def test_fifty_single_character_edits_per_client_converge(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    clients = await asyncio.gather(*(connect(node, syncd, f"c{i}", note["id"]) for i in range(20)))
    letters = "abcdefghijklmnopqrst"
    await asyncio.gather(*(c.type(letters[i] * 50, timeout=60) for i, c in enumerate(clients)))
    await asyncio.gather(*(c.wait_text(min_length=1000, timeout=60) for c in clients))
    texts = await asyncio.gather(*(c.text() for c in clients))
    assert len(set(texts)) == 1
    assert sorted(texts[0]) == sorted("".join(ch * 50 for ch in letters))


async def test_awareness_reaches_others_and_is_removed_on_disconnect(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    a = await connect(node, syncd, "a", note["id"])
    b = await connect(node, syncd, "b", note["id"])
    await a.awareness_set({"user": {"name": "Ada"}, "cursor": {"anchor": 3, "head": 3}})
    states = await b.wait_awareness(client_id=a.client_id)
    assert states[a.client_id]["user"]["name"] == "Ada"
    await a.disconnect()
    await b.wait_awareness(client_id=a.client_id, absent=True)
