"""Many stock y-websocket clients connecting at once to `syncd serve`, with REST requests
in between, on the lean handshake path: nothing of one connection may show up in
another's: each client syncs its own note, edits reach exactly the clients of that note, a bad
token is still refused, and HTTP requests on the same server are answered as usual."""

from __future__ import annotations

import asyncio

from tests.support.fixtures import create_note
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

NOTES = 3
PER_NOTE = 8


async def test_a_storm_of_connects_keeps_every_connection_apart(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    notes = [(await create_note(syncd))["id"] for _ in range(NOTES)]
    token = make_token("owner")

    async def rest() -> list[int]:
        async with syncd.client(token) as client:
            return [
                (await client.get(f"/api/collaborative-notes/{note_id}")).status_code
                for note_id in notes
            ]

    connects = [
        node.connect(f"c{n}-{i}", url=syncd.ws_url, room=note_id, token=token)
        for i in range(PER_NOTE)
        for n, note_id in enumerate(notes)
    ]
    refused_connect = node.connect(
        "bad", url=syncd.ws_url, room=notes[0], token="not-a-token", reconnect=False
    )
    *clients, refused, statuses = await asyncio.gather(*connects, refused_connect, rest())
    assert statuses == [200] * NOTES
    await asyncio.gather(*(client.wait_synced() for client in clients))
    assert (await refused.wait_closed())[0] == 4401

    for n in range(NOTES):
        await node.client(f"c{n}-0").insert(f"note {n}")
    for n in range(NOTES):
        await asyncio.gather(
            *(node.client(f"c{n}-{i}").wait_text(equals=f"note {n}") for i in range(PER_NOTE))
        )
    assert await rest() == [200] * NOTES
