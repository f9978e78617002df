"""Fuzz a real `syncd serve` with frames mutated from real Yjs traffic, while stock Yjs
clients edit in the fuzzed room and in another one.

The corpus is what stock npm yjs writes in seeded editing sessions (`ytraffic.mjs`):
updates, state vectors and awareness states, framed as y-websocket messages. Each fuzzed
frame has one to four mutations (bytes set, flipped, inserted or cut, a var-uint
replaced by a large value, splices of two payloads), half of them re-framed so the
length header holds and the damage reaches the walker and pycrdt. Connections come from
127.0.0.2-9, so no single per-IP budget masks what the server does.

What must hold: no connection is reset (1006) or closed with anything but 4400; no
traceback in the server log; resident memory after within +50 MB of before; the stock
clients are never disconnected and converge, in both rooms.

`SYNCD_FUZZ_FRAMES` sets the number of frames (default 20,000, under a minute; the long
mode is 1,000,000; 200,000 took 17 minutes on a busy two-core machine) and
`SYNCD_FUZZ_FRAMES_SEED` the mutations (default 10).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from syncd.protocol import (
    AwarenessEntry,
    ProtocolError,
    SyncStep1,
    encode_awareness,
    encode_awareness_update,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    parse_message,
)
from syncd.protocol._codec import write_var_uint
from tests.support.fixtures import StartServer, create_note
from tests.support.procstat import rss_bytes
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs, YClient
from tests.support.ytraffic import yjs_traffic

FRAMES = int(os.environ.get("SYNCD_FUZZ_FRAMES", "20000"))
SEED = int(os.environ.get("SYNCD_FUZZ_FRAMES_SEED", "10"))
WORKERS = 16
SOURCES = [f"127.0.0.{n}" for n in range(2, 10)]
PROBE = encode_sync_step1(b"\x00")
MB = 1024 * 1024
#: per-IP limits stay on; the connection budget is raised (each refused frame costs its
#: connection, so a CI-sized run opens some 18,000) and spread over eight addresses
FUZZ_ENV = {"SYNCD_RATE_LIMIT_WS_CONNECTS": "100000/minute", "SYNCD_LOG_LEVEL": "info"}
_BIG = [0, 1, 127, 128, 255, 2**14, 2**21, 2**31, 2**32 - 1, 2**32, 2**53 - 1]


def corpus() -> list[tuple[str, bytes]]:
    """(kind, payload) of real Yjs traffic: kind is update, state vector or awareness."""
    found: list[tuple[str, bytes]] = []
    for seed in (11, 12, 13):
        traffic = yjs_traffic(seed, steps=200)
        found += [("update", u) for u in traffic.updates]
        found += [("state vector", s) for s in traffic.state_vectors]
    for n in range(20):
        state = json.dumps({"user": {"name": f"u{n}", "color": "#ff0"}, "cursor": {"i": n}})
        found.append(("awareness", encode_awareness_update([AwarenessEntry(50 + n, n, state)])))
    return found


def framed(kind: str, payload: bytes, rng: random.Random) -> bytes:
    if kind == "awareness":
        return encode_awareness(payload)
    if kind == "state vector":
        return encode_sync_step1(payload)
    return encode_update(payload) if rng.random() < 0.7 else encode_sync_step2(payload)


def mutate(data: bytes, rng: random.Random, pool: list[tuple[str, bytes]]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            out = bytearray(rng.choice(pool)[1])
            continue
        at = rng.randrange(len(out))
        match rng.randrange(7):
            case 0:
                out[at] = rng.randrange(256)
            case 1:
                out[at] ^= 1 << rng.randrange(8)
            case 2:
                out[at:at] = rng.randbytes(rng.randint(1, 4))
            case 3:
                del out[at : at + rng.randint(1, 4)]
            case 4:
                out[at : at + 1] = write_var_uint(rng.choice(_BIG))
            case 5:
                other = rng.choice(pool)[1]
                out[at:] = other[rng.randrange(len(other)) :]
            case _:
                out[at] = rng.choice([0, 1, 4, 7, 8, 9, 10, 0x84, 0xC4, 0x28, 0x77, 0x76, 0x75])
    return bytes(out)


def fuzzed_frames(count: int, seed: int = 10) -> Iterator[bytes]:
    rng = random.Random(seed)
    pool = corpus()
    for _ in range(count):
        kind, payload = rng.choice(pool)
        if rng.random() < 0.5:
            yield framed(kind, mutate(payload, rng, pool), rng)
        else:
            yield mutate(framed(kind, payload, rng), rng, pool)


def expected_replies(frame: bytes) -> int:
    """How many sync step 2 the server sends for the frame and the probe after it, if it
    accepts the frame: one more for a sync step 1."""
    try:
        return 2 if isinstance(parse_message(frame), SyncStep1) else 1
    except ProtocolError:
        return 1  # refused: the connection closes before any reply


class Fuzzer:
    """Workers sending fuzzed frames over connections that last until the server closes
    them; a probe (sync step 1) after each frame tells whether it was accepted."""

    def __init__(self, server: SyncdProcess, note_id: str) -> None:
        self.url = f"{server.ws_url}/{note_id}?token={make_token('fuzzer')}"
        self.closes: Counter[int] = Counter()
        self.accepted = 0
        self.sent = 0
        self.sources = itertools.cycle(SOURCES)

    async def open(self) -> ClientConnection:
        ws = await connect(
            self.url, max_size=None, open_timeout=10, local_addr=(next(self.sources), 0)
        )
        async with asyncio.timeout(10):
            while not isinstance(parse_message(await ws.recv()), SyncStep1):  # type: ignore[arg-type]
                pass  # the server's step 1 first: the room is joined
        return ws

    async def send(self, ws: ClientConnection, frame: bytes) -> bool:
        """Send one frame and the probe; whether the connection is still open."""
        self.sent += 1
        try:
            await ws.send(frame)
            await ws.send(PROBE)
            async with asyncio.timeout(15):
                for _ in range(expected_replies(frame)):
                    while True:
                        reply = await ws.recv()
                        if isinstance(reply, bytes) and reply[:2] == b"\x00\x01":
                            break  # a sync step 2
        except ConnectionClosed as closed:
            self.closes[closed.rcvd.code if closed.rcvd is not None else 1006] += 1
            return False
        self.accepted += 1
        return True

    async def run(self, frames: Iterator[bytes]) -> None:
        async def work() -> None:
            ws: ClientConnection | None = None
            for frame in frames:
                if ws is None:
                    ws = await self.open()
                if not await self.send(ws, frame):
                    ws = None
            if ws is not None:
                await ws.close()

        await asyncio.gather(*(work() for _ in range(WORKERS)))


async def editors(node: NodeYjs, server: SyncdProcess, room: str, prefix: str) -> list[YClient]:
    return [
        await node.connect(
            f"{prefix}{n}",
            url=server.ws_url,
            room=room,
            token=make_token("owner"),
            reconnect=False,
            wait_synced=True,
        )
        for n in (1, 2)
    ]


async def assert_connected_and_converged(clients: list[YClient]) -> None:
    for client in clients:
        info = await client.info()
        assert info["status"] == "connected" and info["closes"] == [], info
    marker = f"end-{clients[0].name}"
    await clients[0].insert(marker, index=0)
    await clients[1].wait_text(contains=marker, timeout=30)
    assert await clients[0].text() == await clients[1].text()


@pytest.mark.timeout(900 + FRAMES // 20)
async def test_fuzzed_frames_close_4400_alone_and_stock_clients_carry_on(
    start_syncd: StartServer, node: NodeYjs
) -> None:
    server = await start_syncd(env=FUZZ_ENV)
    assert server.proc is not None
    fuzzed = await create_note(server, permissions={"canEdit": ["fuzzer"]})
    quiet = await create_note(server)
    in_fuzzed = await editors(node, server, fuzzed["id"], "f")
    in_quiet = await editors(node, server, quiet["id"], "q")
    fuzzer = Fuzzer(server, fuzzed["id"])
    await fuzzer.run(fuzzed_frames(200, seed=1))  # warm-up: every path loaded once
    rss_before = rss_bytes(server.proc.pid)
    fuzzer.closes.clear()
    fuzzer.sent = fuzzer.accepted = 0

    frames = fuzzed_frames(FRAMES, SEED)
    running = asyncio.create_task(fuzzer.run(frames))
    started = time.monotonic()
    typed = 0
    while not running.done():  # the stock clients keep editing throughout
        for client in (*in_fuzzed, *in_quiet):
            await client.insert(f"<{client.name}{typed}>")
        typed += 1
        await asyncio.wait({running}, timeout=0.5)
    await running
    elapsed = time.monotonic() - started

    rss_after = rss_bytes(server.proc.pid)
    print(
        f"{fuzzer.sent} frames in {elapsed:.0f} s, {fuzzer.accepted} accepted, closes "
        f"{dict(fuzzer.closes)}; RSS {rss_before / MB:.1f} -> {rss_after / MB:.1f} MiB"
    )
    assert set(fuzzer.closes) <= {4400}, fuzzer.closes
    assert sum(fuzzer.closes.values()) > fuzzer.sent // 2  # the fuzz did reach the walker
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 500 :][:3000]
    assert rss_after - rss_before < 50 * MB
    for clients in (in_fuzzed, in_quiet):
        await assert_connected_and_converged(clients)
    assert not node.uncaught, node.uncaught
