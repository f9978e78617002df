"""CPU cost of the read side per client message, in process: one TCP read holding one
masked WebSocket frame (a keystroke, or a cursor move) handed to an adopted
`LeanWebSocketProtocol` (`data_received`: frame parsing, unmasking, the burst handed to
the connection's handler). The handler only keeps the messages; what the room does with
them is `flush_cost.py`'s.

Connections are made as `syncd serve` makes them (`LeanHttpToolsProtocol`, the lean
handshake, `adopt`) over a transport that takes everything. Each round feeds every
connection one read; CPU time (`time.process_time`) per message is printed as JSON.

    .venv/bin/python bench/read_cost.py --conns 200 --rounds 2000
    PYTHONPATH=/tmp/base .venv/bin/python bench/read_cost.py   # another tree (A/B)
    .venv/bin/python bench/read_cost.py --callgrind --conns 50   # instructions/message

`--cursor-every K`: every K-th read carries a cursor move (an awareness update of the
size y-prosemirror sends) after the keystroke, in the same read.

Measured (issue 15, plain frames split without `websockets`' parser): instructions per
keystroke message under callgrind, `--conns 50`, 100 vs 300 rounds differenced,
PYTHONHASHSEED=0: main 41,322, with the split 11,616.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from inprocess import callgrind, lean_handshake

from syncd.transport.lean_protocol import LeanWebSocketProtocol


class _Handler:
    """Keeps the count of messages handed over (what a connection's handler gets)."""

    def __init__(self) -> None:
        self.messages = 0

    def frames_received(self, frames: list[bytes | str]) -> None:
        self.messages += len(frames)

    def disconnected(self) -> None:
        pass


def _masked(payload: bytes, seed: int) -> bytes:
    """`payload` as a client's frame: final, binary, masked (RFC 6455 5.3)."""
    mask = bytes((seed * 7 + i * 13) & 0xFF for i in range(4))
    size = len(payload)
    length = bytes((0x80 | size,)) if size < 126 else bytes((0x80 | 126,)) + size.to_bytes(2, "big")
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return b"\x82" + length + mask + body


async def _connections(count: int) -> list[tuple[LeanWebSocketProtocol, _Handler]]:
    made: list[tuple[LeanWebSocketProtocol, _Handler]] = []
    for _ in range(count):
        handler = _Handler()

        async def app(scope: Any, receive: Any, send: Any, handler: _Handler = handler) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            assert send.__self__.adopt(handler)

        transport = await lean_handshake(app)
        protocol = transport.protocol
        assert isinstance(protocol, LeanWebSocketProtocol)
        made.append((protocol, handler))
    return made


def _instructions(args: argparse.Namespace, rounds: int) -> tuple[int, int]:
    """Instructions of this script run under callgrind with `rounds`, and its messages."""
    command = [
        sys.executable,
        __file__,
        f"--conns={args.conns}",
        f"--rounds={rounds}",
        f"--cursor-every={args.cursor_every}",
    ]
    count, out = callgrind(command)
    return count, json.loads(out.splitlines()[-1])["messages"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conns", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--cursor-every", type=int, default=0)
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="instructions per message (100 and 300 rounds under callgrind, differenced)",
    )
    args = parser.parse_args()
    if args.callgrind:
        low, low_messages = _instructions(args, 100)
        high, high_messages = _instructions(args, 300)
        per = (high - low) / (high_messages - low_messages)
        print(json.dumps({"conns": args.conns, "instructions_per_message": round(per)}))
        return
    connections = await _connections(args.conns)
    # a keystroke (sync update of ~25 bytes) and a y-prosemirror cursor move (~230 bytes)
    keystroke = bytes([0, 2, 23]) + os.urandom(23)
    position = {
        "type": {"client": 123456789, "clock": 4},
        "tname": None,
        "item": {"client": 987654321, "clock": 1234},
        "assoc": 0,
    }
    user = {"name": "writer 123456789", "color": "#30bced"}
    state = json.dumps({"user": user, "cursor": {"anchor": position, "head": position}}).encode()
    body = bytes([1, 0x95, 0xCD, 0xB7, 0x3A, 5, len(state) & 0x7F | 0x80, len(state) >> 7]) + state
    cursor = bytes([1, len(body) & 0x7F | 0x80, len(body) >> 7]) + body
    reads = [_masked(keystroke, i) for i in range(16)]
    with_cursor = [_masked(keystroke, i) + _masked(cursor, i + 1) for i in range(16)]
    every = args.cursor_every
    messages = 0
    for warm in range(50):
        for protocol, _ in connections:
            protocol.data_received(reads[warm % 16])
    start = time.process_time()
    for turn in range(args.rounds):
        data = with_cursor[turn % 16] if every and turn % every == 0 else reads[turn % 16]
        for protocol, _ in connections:
            protocol.data_received(data)
        messages += len(connections) * (2 if data in with_cursor else 1)
    cpu = time.process_time() - start
    received = sum(handler.messages for _, handler in connections) - 50 * len(connections)
    assert received == messages, (received, messages)
    print(json.dumps({"messages": messages, "cpu_us_per_message": round(cpu / messages * 1e6, 3)}))


if __name__ == "__main__":
    asyncio.run(main())
