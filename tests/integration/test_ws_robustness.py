"""Bad input closes only the connection that sent it; the room and its other clients go on."""

from __future__ import annotations

import base64
import contextlib
import random

import pytest
from websockets.exceptions import ConnectionClosed

from tests.integration.test_metrics import delta, scrape
from tests.support.fixtures import StartServer, create_note
from tests.support.raw_ws import expect_close, open_raw
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

LIMIT = 64 * 1024


def _random_frame(seed: int) -> bytes:
    rng = random.Random(seed)
    # Leading 0x00 0x02 makes it look like a sync update, so the garbage reaches the parser's
    # deeper paths (length checks, pycrdt) rather than failing on the message type.
    return b"\x00\x02" + rng.randbytes(200)


BAD_FRAMES = {
    "random bytes": _random_frame(1),
    "random bytes, no header": random.Random(2).randbytes(300),
    "truncated var-uint": b"\x00\x02\xff\xff",
    "length past the end": b"\x00\x02\x40abc",
    "invalid Yjs update": b"\x00\x02\x05\x01\x02\x03\x04\x05",
    "unknown message type": b"\x09\x00",
    "awareness with bad JSON": b"\x01\x08\x01\x05\x01\x04{no}",
}


@pytest.fixture
async def limited(start_syncd: StartServer) -> SyncdProcess:
    return await start_syncd(env={"SYNCD_MAX_MESSAGE_BYTES": str(LIMIT)})


async def _room_with_two_editors(server: SyncdProcess, node: NodeYjs):
    note = await create_note(server)
    a = await node.connect(
        "a", url=server.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    b = await node.connect(
        "b", url=server.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    return note, a, b


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
async def test_a_malformed_frame_closes_only_its_connection(
    limited: SyncdProcess, node: NodeYjs, case: str
) -> None:
    note, a, b = await _room_with_two_editors(limited, node)
    await a.insert("before ")
    await b.wait_text(equals="before ")

    bad = await open_raw(f"{limited.ws_url}/{note['id']}", token=make_token("owner"))
    await bad.send(BAD_FRAMES[case])
    code, reason = await expect_close(bad)
    assert code == 4400, (case, code, reason)

    await a.insert("after")
    await b.wait_text(equals="before after")
    assert (await a.info())["status"] == "connected"


async def test_a_text_frame_is_closed_4400(limited: SyncdProcess) -> None:
    note = await create_note(limited)
    ws = await open_raw(f"{limited.ws_url}/{note['id']}", token=make_token("owner"))
    await ws.send("hello")
    assert (await expect_close(ws))[0] == 4400


async def test_an_oversize_frame_is_closed_1009_and_the_room_goes_on(
    limited: SyncdProcess, node: NodeYjs
) -> None:
    note, a, b = await _room_with_two_editors(limited, node)
    bad = await open_raw(f"{limited.ws_url}/{note['id']}", token=make_token("owner"))
    await bad.send(b"\x00\x02" + b"\xff" * (LIMIT + 10))
    assert (await expect_close(bad))[0] == 1009
    await a.insert("still syncing")
    await b.wait_text(equals="still syncing")


async def test_a_frame_far_over_the_default_limit_ends_in_a_clean_1009_every_time(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    """A frame more than uvicorn's slack over the limit fails in its parser while the
    client is still sending: the close frame must reach the client (not a reset, which
    it reports as 1006), be counted, and leave the room's other clients alone. Node's `ws`
    client, then Python's `websockets`."""
    note, a, b = await _room_with_two_editors(syncd, node)
    url = f"{syncd.ws_url}/{note['id']}?token={make_token('owner')}"
    before = await scrape(syncd)
    head = base64.b64encode(b"\x00\x02").decode()
    fill = 4 * 1024 * 1024 + 64 * 1024
    codes = []
    for _ in range(20):
        closed = await node.call("send_frame_and_close", url=url, head=head, fill=fill, timeout=30)
        codes.append(closed["code"])
    assert codes == [1009] * 20
    bad = await open_raw(f"{syncd.ws_url}/{note['id']}", token=make_token("owner"))
    with contextlib.suppress(ConnectionClosed):  # the close may come while the frame goes out
        await bad.send(b"\x00\x02" + b"\xff" * fill)
    assert (await expect_close(bad))[0] == 1009
    after = await scrape(syncd)
    assert delta(after, before, "syncd_ws_closes_total", code="1009") == 21
    await a.insert("unaffected")
    await b.wait_text(equals="unaffected")
    assert (await a.info())["status"] == "connected"


async def test_bad_input_stores_nothing(limited: SyncdProcess, node: NodeYjs) -> None:
    note, a, _ = await _room_with_two_editors(limited, node)
    await a.insert("kept")
    bad = await open_raw(f"{limited.ws_url}/{note['id']}", token=make_token("owner"))
    await bad.send(BAD_FRAMES["invalid Yjs update"])
    await expect_close(bad)
    async with limited.client(make_token("owner")) as api:
        response = await api.post(
            f"/api/collaborative-notes/{note['id']}/yjs-update", json={"update": "AQIDBA=="}
        )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"
    late = await node.connect(
        "late", url=limited.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    assert await late.text() == "kept"
