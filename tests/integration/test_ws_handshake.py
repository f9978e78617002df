"""The WebSocket handshake of `syncd serve` over raw sockets and the stock y-websocket
client: a plain upgrade takes the lean path (`syncd.transport.lean_upgrade`), anything
unusual uvicorn's own, and both enforce the same token, limits and Origin policy (none:
the token is the credential, and browsers cannot send it cross-site on their own)."""

from __future__ import annotations

import asyncio
import base64
import os
import struct

import pytest
from websockets.utils import accept_key

from tests.support.fixtures import StartServer, create_note
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

TIMEOUT = 10.0


class RawSocket:
    """One TCP connection speaking just enough HTTP and RFC 6455 for these tests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def upgrade(
        cls,
        server: SyncdProcess,
        target: str,
        *,
        headers: dict[str, str] | None = None,
        version: str = "1.1",
        key: str | None = None,
    ) -> tuple[RawSocket, int, dict[str, str], str]:
        """Send an upgrade request; return the socket, status, headers (lower-cased
        names) and the key sent."""
        host, port = server.http_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        fields = {
            "Host": f"{host}:{port}",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
            **(headers or {}),
        }
        lines = [f"GET {target} HTTP/{version}", *(f"{k}: {v}" for k, v in fields.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
        answer = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            answer[name.lower()] = value.strip()
        return cls(reader, writer), int(status_line.split(" ")[1]), answer, key

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)

    async def frame(self) -> tuple[int, bytes]:
        """The next frame from the server (opcode, payload); server frames are unmasked."""
        async with asyncio.timeout(TIMEOUT):
            first, second = await self.reader.readexactly(2)
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(size)

    async def close_code(self) -> int:
        """Read frames until the server's close frame; its code."""
        while True:
            opcode, payload = await self.frame()
            if opcode == 0x8:
                return int(struct.unpack("!H", payload[:2])[0])

    def close(self) -> None:
        self.writer.close()


def _target(note_id: str, token: str | None) -> str:
    return f"/ws/notes/{note_id}" + (f"?token={token}" if token else "")


async def _sync_step1(sock: RawSocket) -> None:
    opcode, payload = await sock.frame()
    assert opcode == 0x2 and payload[:2] == b"\x00\x00"  # sync step 1 from the server


async def test_a_plain_upgrade_syncs_with_the_accept_key(syncd: SyncdProcess) -> None:
    note = await create_note(syncd)
    sock, status, headers, key = await RawSocket.upgrade(
        syncd,
        _target(note["id"], make_token("owner")),
        headers={"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"},
    )
    assert status == 101
    assert headers["sec-websocket-accept"] == accept_key(key)
    assert headers["upgrade"] == "websocket" and headers["connection"] == "Upgrade"
    assert "sec-websocket-extensions" not in headers  # offered, not negotiated: deflate is off
    await _sync_step1(sock)
    sock.send(0x2, b"\x00\x00\x01\x00")  # our sync step 1 (empty state vector)
    opcode, payload = await sock.frame()
    assert opcode == 0x2 and payload[:2] == b"\x00\x01"  # sync step 2
    sock.close()


async def _first_read(server: SyncdProcess, target: str) -> tuple[RawSocket, bytes, bytes]:
    """Send an upgrade request; the socket, the response head of its first read and the
    bytes after the head in that same read."""
    host, port = server.http_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(request.encode())
    async with asyncio.timeout(TIMEOUT):
        first = await reader.read(65536)
    head, _, rest = first.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert accept_key(key).encode() in head
    return RawSocket(reader, writer), head, rest


async def test_the_101_and_sync_step_1_come_in_one_write(syncd: SyncdProcess) -> None:
    """The lean path writes its 101 and the server's sync step 1 together: the first
    read of the socket after the request holds both (one segment on loopback)."""
    note = await create_note(syncd)
    sock, _, rest = await _first_read(syncd, _target(note["id"], make_token("owner")))
    # exactly one frame after the head: binary, sync step 1 (the note has no awareness)
    assert rest[0] == 0x82 and len(rest) == 2 + rest[1] and rest[2:4] == b"\x00\x00"
    sock.send(0x2, b"\x00\x00\x01\x00")
    opcode, payload = await sock.frame()
    assert opcode == 0x2 and payload[:2] == b"\x00\x01"  # and it syncs
    sock.close()


@pytest.mark.parametrize(
    ("case", "token", "code"),
    [("bad token", "not-a-jwt", 4401), ("unknown note", make_token("owner"), 4404)],
)
async def test_a_refusal_writes_the_101_and_its_close_frame_at_once(
    syncd: SyncdProcess, case: str, token: str, code: int
) -> None:
    note_id = (await create_note(syncd))["id"] if code != 4404 else "no-such-note"
    sock, _, rest = await _first_read(syncd, _target(note_id, token))
    assert rest[0] == 0x88 and len(rest) == 2 + rest[1], case  # one close frame
    assert int.from_bytes(rest[2:4], "big") == code, case
    sock.send(0x8, rest[2:4])  # the client's close: the server then ends the connection
    async with asyncio.timeout(TIMEOUT):
        assert await sock.reader.read() == b""
    sock.close()


async def test_a_ping_sent_at_once_after_the_101_is_answered_after_sync_step_1(
    syncd: SyncdProcess,
) -> None:
    """The client pings as soon as it has the 101 (before reading on): the pong cannot
    overtake the server's first frame, and the connection then syncs."""
    note = await create_note(syncd)
    sock, status, _, _ = await RawSocket.upgrade(syncd, _target(note["id"], make_token("owner")))
    assert status == 101
    sock.send(0x9, b"now")
    sock.send(0x2, b"\x00\x00\x01\x00")
    await _sync_step1(sock)
    assert await sock.frame() == (0xA, b"now")
    opcode, payload = await sock.frame()
    assert opcode == 0x2 and payload[:2] == b"\x00\x01"
    sock.close()


@pytest.mark.parametrize(
    ("case", "token", "headers"),
    [
        ("no token", None, {}),
        ("garbage token", "not-a-jwt", {}),
        ("expired token", make_token("owner", ttl=-60), {}),
        ("bad bearer header", None, {"Authorization": "Bearer not-a-jwt"}),
        ("bad token, subprotocol offered (uvicorn's path)", "x", {"Sec-WebSocket-Protocol": "y"}),
    ],
)
async def test_a_bad_or_missing_token_is_closed_4401(
    syncd: SyncdProcess, case: str, token: str | None, headers: dict[str, str]
) -> None:
    note = await create_note(syncd)
    sock, status, _, _ = await RawSocket.upgrade(syncd, _target(note["id"], token), headers=headers)
    assert status == 101, case
    assert await sock.close_code() == 4401, case
    sock.close()


async def test_the_bearer_header_and_a_foreign_origin_are_taken(syncd: SyncdProcess) -> None:
    note = await create_note(syncd)
    sock, status, _, _ = await RawSocket.upgrade(
        syncd,
        _target(note["id"], None),
        headers={
            "Authorization": f"Bearer {make_token('owner')}",
            "Origin": "https://elsewhere.example",
        },
    )
    assert status == 101
    await _sync_step1(sock)
    sock.close()


@pytest.mark.parametrize(
    ("case", "headers", "version"),
    [
        ("subprotocol offered", {"Sec-WebSocket-Protocol": "y-websocket"}, "1.1"),
        ("HTTP/1.0", {}, "1.0"),
        ("two Connection tokens in two headers", {"Connection": "keep-alive, Upgrade"}, "1.1"),
        ("odd header name", {"X-Odd.Name~": "1"}, "1.1"),
        ("an empty body announced", {"Content-Length": "0"}, "1.1"),
    ],
)
async def test_an_unusual_upgrade_falls_back_and_still_syncs(
    syncd: SyncdProcess, case: str, headers: dict[str, str], version: str
) -> None:
    note = await create_note(syncd)
    sock, status, answer, key = await RawSocket.upgrade(
        syncd, _target(note["id"], make_token("owner")), headers=headers, version=version
    )
    assert status == 101, case
    assert answer["sec-websocket-accept"] == accept_key(key), case
    assert "sec-websocket-protocol" not in answer, case  # syncd selects none
    await _sync_step1(sock)
    sock.close()


@pytest.mark.parametrize(
    ("case", "headers", "key", "status"),
    [
        ("key not base64", {}, "not base64!", 400),
        ("key of 8 bytes", {}, base64.b64encode(b"12345678").decode(), 400),
        ("version 8", {"Sec-WebSocket-Version": "8"}, None, 400),
    ],
)
async def test_a_bad_handshake_is_refused_by_websockets(
    syncd: SyncdProcess, case: str, headers: dict[str, str], key: str | None, status: int
) -> None:
    note = await create_note(syncd)
    sock, answer, _, _ = await RawSocket.upgrade(
        syncd, _target(note["id"], make_token("owner")), headers=headers, key=key
    )
    assert answer == status, case
    sock.close()


async def test_an_oversize_frame_is_closed_1009(start_syncd: StartServer) -> None:
    server = await start_syncd(env={"SYNCD_MAX_MESSAGE_BYTES": "4096"})
    note = await create_note(server)
    sock, status, _, _ = await RawSocket.upgrade(server, _target(note["id"], make_token("owner")))
    assert status == 101
    await _sync_step1(sock)
    sock.send(0x2, b"\x00\x02" + b"\x00" * 8000)
    assert await sock.close_code() == 1009
    sock.close()


async def test_connection_attempts_are_rate_limited_on_the_lean_path(
    start_syncd: StartServer,
) -> None:
    server = await start_syncd(env={"SYNCD_RATE_LIMIT_WS_CONNECTS": "2/minute"})
    note = await create_note(server)
    target = _target(note["id"], make_token("owner"))
    held = []
    for _ in range(2):
        sock, status, _, _ = await RawSocket.upgrade(server, target)
        assert status == 101
        await _sync_step1(sock)
        held.append(sock)
    refused, status, _, _ = await RawSocket.upgrade(server, target)
    assert status == 101
    assert await refused.close_code() == 4429
    for sock in (*held, refused):
        sock.close()


async def test_the_stock_client_syncs_on_both_paths(syncd: SyncdProcess, node: NodeYjs) -> None:
    """y-websocket over Node's `ws` (which offers permessage-deflate): lean with a query
    token, with a bearer header, and through uvicorn's path (an empty `Content-Length`,
    which the lean path leaves to `websockets`)."""
    note = await create_note(syncd)
    url, room = syncd.ws_url, note["id"]
    lean = await node.connect("lean", url=url, room=room, token=make_token("owner"))
    bearer = await node.connect(
        "bearer",
        url=url,
        room=room,
        headers={"Authorization": f"Bearer {make_token('owner')}"},
    )
    stock = await node.connect(
        "stock", url=url, room=room, token=make_token("owner"), headers={"Content-Length": "0"}
    )
    for client in (lean, bearer, stock):
        await client.wait_synced()
    await lean.insert("a")
    await stock.wait_text(equals="a")
    await bearer.wait_text(equals="a")
    await stock.insert("b", 1)
    await lean.wait_text(equals="ab")
    refused = await node.connect("bad", url=url, room=room, token="bad", reconnect=False)
    assert (await refused.wait_closed())[0] == 4401
