"""Malformed Hocuspocus frames from a raw socket: only their document or socket closes."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import ClientConnection

from syncd.protocol import SyncUpdate
from syncd.protocol.hocuspocus import Envelope, Token, encode_client_frame
from tests.support.fixtures import create_note
from tests.support.raw_ws import expect_close, open_raw
from tests.support.server import SyncdProcess, make_token

pytestmark = pytest.mark.interop


def split(frame: bytes) -> tuple[str, int, bytes]:
    """(document, message type, body) of a server frame (short names only)."""
    size = frame[0]
    return frame[1 : 1 + size].decode(), frame[1 + size], frame[2 + size :]


async def until(ws: ClientConnection, document: str, kind: int) -> bytes:
    async with asyncio.timeout(10):
        while True:
            frame = await ws.recv()
            assert isinstance(frame, bytes)
            if len(frame) > 1 and split(frame)[:2] == (document, kind):
                return split(frame)[2]


async def open_document(ws: ClientConnection, document: str) -> None:
    await ws.send(encode_client_frame(Envelope(document, Token(make_token("owner"), "4.8.0"))))
    assert (await until(ws, document, 2))[0] == 2  # authenticated


async def test_a_malformed_message_closes_its_document_only(syncd: SyncdProcess) -> None:
    one, two = await create_note(syncd), await create_note(syncd)
    ws = await open_raw(f"ws://127.0.0.1:{syncd.port}/hocuspocus")
    await open_document(ws, one["id"])
    name = encode_client_frame(Envelope(one["id"], SyncUpdate(b"\x00\x00")))[: 1 + len(one["id"])]
    for body in (b"\x2a", b"\x00\x02\x05ab", b"\x00\x02\x02\x00\x00\xff", b"\x02\x01\x00"):
        await ws.send(name + body)
        reason = (await until(ws, one["id"], 7)).decode(errors="replace")
        assert "4400 bad-message" in reason
        await open_document(ws, one["id"])  # a fresh token opens it again
    await open_document(ws, two["id"])
    await ws.send(encode_client_frame(Envelope(two["id"], SyncUpdate(b"\x01\x00"))))
    assert "4400" in (await until(ws, two["id"], 7)).decode(errors="replace")
    await ws.close()
    assert "Traceback" not in syncd.log_tail(400)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x03\xff\xfe\xfd\x00", 4400),  # document name is not UTF-8
        (b"\x80", 4400),  # truncated name length
        (b"", 4400),
        (b"\x00\x00", 4400),  # empty document name
        ("text", 4400),
    ],
)
async def test_an_unreadable_frame_closes_the_socket(
    syncd: SyncdProcess, frame: bytes | str, code: int
) -> None:
    ws = await open_raw(f"ws://127.0.0.1:{syncd.port}/hocuspocus")
    await ws.send(frame)
    assert (await expect_close(ws))[0] == code
    assert "Traceback" not in syncd.log_tail(400)


async def test_a_socket_that_never_authenticates_is_closed(start_syncd: object) -> None:
    server = await start_syncd(env={"SYNCD_HOCUSPOCUS_AUTH_TIMEOUT": "0.5"})  # type: ignore[operator]
    ws = await open_raw(f"ws://127.0.0.1:{server.port}/hocuspocus")
    assert (await expect_close(ws))[0] == 4401


async def test_documents_beyond_the_bounds_are_refused_not_the_socket(
    start_syncd: object,
) -> None:
    server = await start_syncd(  # type: ignore[operator]
        env={"SYNCD_MAX_MESSAGE_BYTES": "4096", "SYNCD_HOCUSPOCUS_MAX_DOCUMENTS": "2"}
    )
    one, two, three = [await create_note(server) for _ in range(3)]
    ws = await open_raw(f"ws://127.0.0.1:{server.port}/hocuspocus")
    await open_document(ws, one["id"])
    # Sent before any token: queued up to the bound, then that document is refused.
    update = encode_client_frame(Envelope(two["id"], SyncUpdate(b"\x00" * 1000)))
    for _ in range(5):
        await ws.send(update)
    denied = await until(ws, two["id"], 2)
    assert denied[0] == 1 and b"4429 rate-limited" in denied
    await ws.send(encode_client_frame(Envelope(three["id"], Token(make_token("owner")))))
    denied = await until(ws, three["id"], 2)  # two documents already: one open, one refused
    assert denied[0] == 1 and b"too many documents" in denied
    await ws.send(encode_client_frame(Envelope(one["id"], SyncUpdate(b"\x00\x00"))))
    assert await until(ws, one["id"], 8) == b"\x01"  # the socket and its document go on
    await ws.close()


async def test_a_new_token_for_an_open_document_reopens_it_with_the_whole_doc(
    syncd: SyncdProcess,
) -> None:
    note = await create_note(syncd)
    ws = await open_raw(f"ws://127.0.0.1:{syncd.port}/hocuspocus")
    await open_document(ws, note["id"])
    update = b"\x01\x01\xb9\x0a\x00\x04\x01\x04text\x02hi\x00"  # one Y.Text insert
    await ws.send(encode_client_frame(Envelope(note["id"], SyncUpdate(update))))
    assert await until(ws, note["id"], 8) == b"\x01"  # acked once durable
    await open_document(ws, note["id"])  # same socket, same document, a new token
    step2 = await until(ws, note["id"], 0)
    while step2[0] != 1:  # skip the server's step 1; its step 2 holds the whole doc
        step2 = await until(ws, note["id"], 0)
    assert b"hi" in step2
    await ws.close()
