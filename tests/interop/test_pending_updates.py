"""A client back from offline that types before its sync step 2: its update depends on
offline edits the server has not seen yet. Yjs keeps it pending; syncd holds it for that
connection and applies it once the step 2 brings the edits, instead of closing 4400."""

from __future__ import annotations

import httpx
import pytest
from pycrdt import Doc, Text

from syncd.protocol import (
    SyncStep1,
    SyncStep2,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)
from tests.support.fixtures import create_note
from tests.support.raw_ws import open_raw, recv_message
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

pytestmark = pytest.mark.interop


async def recv_step2(ws) -> bytes:  # type: ignore[no-untyped-def]
    """The next sync step 2 the server sends (awareness and updates skipped)."""
    while True:
        message = await recv_message(ws)
        if isinstance(message, SyncStep2):
            return message.update


def text_of(update: bytes) -> str:
    doc = Doc()
    doc.apply_update(update)
    return str(doc.get("text", type=Text))


async def missing_refusals(server: SyncdProcess) -> float:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as client:
        body = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith("syncd_protocol_errors_total{") and 'kind="missing"' in line
    )


async def test_an_update_sent_before_the_step_2_it_depends_on_is_held_not_refused(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    """The race, made deterministic: the updates are a stock Y.Doc's, the frames are sent
    over a raw socket in the order a WebsocketProvider sends them when its user types
    between the socket opening and the server's sync step 1 arriving."""
    note = await create_note(syncd)
    observer = await node.connect(
        "observer", url=syncd.ws_url, room=note["id"], token=make_token("owner"), reconnect=False
    )
    await observer.wait_synced()
    await observer.insert("base.")

    writer = await node.create("writer")  # a Y.Doc whose provider is offline
    await writer.apply_update(await observer.state_update())
    await writer.insert(" offline")
    before_typing = await writer.state_vector()
    await writer.insert(" typed")
    typed = await writer.state_update(before_typing)  # depends on " offline"

    ws = await open_raw(f"{syncd.ws_url}/{note['id']}", token=make_token("owner"))
    try:
        server_step1 = await recv_message(ws)
        assert isinstance(server_step1, SyncStep1)
        await ws.send(encode_sync_step1(await writer.state_vector()))
        await recv_step2(ws)  # the server's answer to the client's step 1
        await ws.send(encode_update(typed))  # typed before the step 2
        # a probe: answered after the update above was handled; it is not in the doc
        await ws.send(encode_sync_step1(b"\x00"))
        assert text_of(await recv_step2(ws)) == "base."
        await ws.send(encode_sync_step2(await writer.state_update(server_step1.state_vector)))
        await observer.wait_text(equals="base. offline typed")
        await ws.send(encode_sync_step1(b"\x00"))  # still open, and the doc is whole
        assert text_of(await recv_step2(ws)) == "base. offline typed"
    finally:
        await ws.close()
    assert await missing_refusals(syncd) == 0
    assert (await observer.info())["closes"] == []

    await syncd.kill()  # kill -9: what the observer received must be in the store
    await syncd.start()
    fresh = await node.connect(
        "fresh", url=syncd.ws_url, room=note["id"], token=make_token("owner"), reconnect=False
    )
    await fresh.wait_synced()
    await fresh.wait_text(equals="base. offline typed")


async def test_a_stock_client_typing_through_its_reconnect_is_not_closed(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    """A WebsocketProvider reconnecting with offline edits while its user keeps typing, one
    keystroke every 2 ms: some of them land between the socket opening and its step 2."""
    note = await create_note(syncd)
    kwargs = {"url": syncd.ws_url, "room": note["id"], "token": make_token("owner")}
    a = await node.connect("a", reconnect=False, **kwargs)
    b = await node.connect("b", reconnect=False, **kwargs)
    await a.wait_synced()
    await b.wait_synced()
    await a.insert("base.")
    await b.wait_text(equals="base.")
    for round_ in range(5):
        await b.disconnect()
        await b.insert(f" off{round_}")
        await b.reconnect(token=make_token("owner"))
        await b.type(f" typed{round_}", interval_ms=2)
        await b.wait_synced()
        text = await b.text()
        await a.wait_text(equals=text)
    assert (await b.info())["closes"] == []
    assert await missing_refusals(syncd) == 0
    assert await a.text() == await b.text()
