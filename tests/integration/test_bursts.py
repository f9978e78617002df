"""Several y-websocket messages in one TCP write, against a real `syncd serve`: the server
handles the messages of one read as one burst (one doc transaction, one flush), and every
message of a burst counts as if it had come alone: all of them apply, in order; a message
that needs an answer gets it; a bad one closes the connection with its DESIGN.md close
code while the good ones before it stay applied, and nothing after it is."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import ClientConnection

from syncd.protocol import SyncStep1, SyncStep2, encode_sync_step1, encode_update
from tests.support.fixtures import create_note
from tests.support.polling import eventually
from tests.support.raw_ws import expect_close, open_raw, recv_message
from tests.support.server import SyncdProcess, make_token
from tests.support.typed import typed_updates

EMPTY_STEP1 = encode_sync_step1(b"\x00")
#: an update frame whose update is not a Yjs update (closes 4400)
MALFORMED = bytes.fromhex("0002 05 ffffffffff")


def keystrokes(text: str, client_id: int = 4242) -> list[bytes]:
    """One Yjs update per character typed into the root text `burst`."""
    return typed_updates(client_id, text, root="burst")


async def joined(url: str, user: str = "owner") -> ClientConnection:
    ws = await open_raw(url, token=make_token(user))
    assert isinstance(await recv_message(ws), SyncStep1)  # joined the loaded room
    return ws


async def write_at_once(ws: ClientConnection, frames: list[bytes]) -> None:
    """All `frames` as binary messages in one write to the socket (one TCP segment on
    loopback: the server reads them together)."""
    for frame in frames:
        ws.protocol.send_binary(frame)
    ws.transport.write(b"".join(ws.protocol.data_to_send()))


async def server_text(url: str) -> str:
    """The `burst` text as a new client syncs it."""
    ws = await joined(url)
    try:
        await ws.send(EMPTY_STEP1)
        while True:
            message = await recv_message(ws)
            if isinstance(message, SyncStep2):
                doc = Doc()
                doc.apply_update(message.update)
                return str(doc.get("burst", type=Text))
    finally:
        await ws.close()


@pytest.mark.timeout(60)
async def test_every_message_of_one_write_applies_in_order(syncd: SyncdProcess) -> None:
    note = await create_note(syncd)
    url = f"{syncd.ws_url}/{note['id']}"
    writer = await joined(url)
    await write_at_once(writer, [encode_update(u) for u in keystrokes("hello, bursts")])

    async def text() -> str:
        return await server_text(url)

    assert await eventually(text, what="the burst's text") == "hello, bursts"
    await writer.close()


@pytest.mark.timeout(60)
async def test_a_sync_step1_inside_a_burst_is_answered_with_what_came_before_it(
    syncd: SyncdProcess,
) -> None:
    note = await create_note(syncd)
    url = f"{syncd.ws_url}/{note['id']}"
    writer = await joined(url)
    first, second = keystrokes("ab")
    await write_at_once(writer, [encode_update(first), EMPTY_STEP1, encode_update(second)])
    while True:  # the answer waits until `first` is durable, then comes before anything else
        message = await recv_message(writer)
        if isinstance(message, SyncStep2):
            break
    doc = Doc()
    doc.apply_update(message.update)
    assert str(doc.get("burst", type=Text)) in {"a", "ab"}

    async def text() -> str:
        return await server_text(url)

    assert await eventually(text, what="both keystrokes") == "ab"
    await writer.close()


@pytest.mark.timeout(60)
async def test_a_bad_message_in_a_burst_closes_4400_and_keeps_the_good_ones_before_it(
    syncd: SyncdProcess,
) -> None:
    note = await create_note(syncd)
    url = f"{syncd.ws_url}/{note['id']}"
    writer = await joined(url)
    updates = keystrokes("good!")
    frames = [encode_update(u) for u in updates[:4]] + [MALFORMED, encode_update(updates[4])]
    await write_at_once(writer, frames)
    code, _ = await expect_close(writer)
    assert code == 4400

    async def text() -> str:
        return await server_text(url)

    # the four before the bad message, never the one after it
    assert await eventually(text, what="the good keystrokes") == "good"


@pytest.mark.timeout(60)
async def test_a_text_message_in_a_burst_closes_4400_after_the_ones_before_it(
    syncd: SyncdProcess,
) -> None:
    note = await create_note(syncd)
    url = f"{syncd.ws_url}/{note['id']}"
    writer = await joined(url)
    updates = keystrokes("xyz")
    writer.protocol.send_binary(encode_update(updates[0]))
    writer.protocol.send_binary(encode_update(updates[1]))
    writer.protocol.send_text(b"not y-websocket")
    writer.protocol.send_binary(encode_update(updates[2]))
    writer.transport.write(b"".join(writer.protocol.data_to_send()))
    code, _ = await expect_close(writer)
    assert code == 4400

    async def text() -> str:
        return await server_text(url)

    assert await eventually(text, what="the keystrokes before the text message") == "xy"


@pytest.mark.timeout(60)
async def test_a_viewers_burst_is_refused_once_and_applies_nothing(syncd: SyncdProcess) -> None:
    note = await create_note(syncd, permissions={"canView": ["viewer"]})
    url = f"{syncd.ws_url}/{note['id']}"
    viewer = await joined(url, "viewer")
    await write_at_once(viewer, [encode_update(u) for u in keystrokes("nope")])
    denied = await recv_message(viewer)
    assert type(denied).__name__ == "Auth"
    assert await server_text(url) == ""
    await viewer.close()
