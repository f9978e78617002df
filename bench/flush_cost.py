"""CPU cost of the embedded write path per keystroke, in process: a peer's frame parsed and
applied, the room's flush (merge, group commit to a SQLite file through `LocalBus`,
metrics) and the fan-out to every peer (framing, frame counting, a transport write).

Each turn, `--rooms` rooms of `--peers` peers each get one keystroke from one of their
writers, then every room is drained, as one event-loop turn of a busy server does. The
channels are `AsgiChannel`s over a transport that takes everything (frames counted,
framed, written to a list that is dropped).

    .venv/bin/python bench/flush_cost.py --rooms 5 --peers 10 --turns 2000
    .venv/bin/python bench/flush_cost.py --rooms 5 --callgrind   # instructions/keystroke

`--callgrind` runs this script twice under `valgrind --tool=callgrind` with two numbers
of turns and divides the difference of the instructions counted by the difference of
the keystrokes, so start-up, imports and warm-up cancel out; the count is repeatable
on a loaded machine, unlike times.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from keystrokes import keystroke_frames

from syncd import metrics
from syncd.auth import Principal
from syncd.bus.instrumented import InstrumentedBackend
from syncd.bus.local import LocalBus
from syncd.protocol import parse_message
from syncd.room import Peer, Room
from syncd.storage import open_store
from syncd.transport.lean_protocol import binary_frame
from syncd.transport.websocket import AsgiChannel

_WARMUP_TURNS = 50


class _Socket:
    """Stands in for `LeanWebSocketProtocol` under `AsgiChannel`: a transport that is
    never paused; what is written is kept briefly, then dropped."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write_binary(self, payload: bytes) -> bool:
        self.written.append(binary_frame(payload))
        if len(self.written) > 64:
            self.written.clear()
        return True


async def _no_asgi_send(message: object) -> None:
    raise AssertionError("the socket is never paused: every frame goes out by send_now")


def _channel() -> AsgiChannel:
    """The real channel of `syncd serve` (frame counting and all) over `_Socket`."""
    principal = Principal(
        user_id="bench", name=None, email=None, roles=(), expires_at=math.inf, token_id=None
    )
    channel = AsgiChannel(_no_asgi_send, principal)
    channel._socket = _Socket()  # type: ignore[assignment]
    return channel


def _keystrokes(writer: int, count: int) -> list[bytes]:
    """`count` update frames of one writer typing into its own position."""
    return keystroke_frames(1000 + writer, count)


async def _run(rooms: int, peers: int, writers: int, turns: int) -> tuple[int, float]:
    """Run `turns` measured turns after a warm-up; return keystrokes and CPU seconds."""
    total = _WARMUP_TURNS + turns
    per_writer = total // writers + 1
    scripts = [_keystrokes(w, per_writer) for w in range(writers)]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        async with open_store(url) as store:
            backend = InstrumentedBackend(LocalBus(store))
            live: list[tuple[Room, list[Peer]]] = []
            for r in range(rooms):
                note = await store.create_note(note_id=None, title=f"r{r}", created_by="bench")
                room = Room(note.id, backend)
                room.load([])
                members = [
                    Peer(channel=_channel(), user_id=f"u{p}", can_write=True) for p in range(peers)
                ]
                for peer in members:
                    room.join(peer)
                live.append((room, members))
            keystrokes = 0
            started = 0.0
            for turn in range(total):
                if turn == _WARMUP_TURNS:
                    keystrokes = 0
                    started = time.process_time()
                writer = turn % writers
                frame = scripts[writer][turn // writers]
                for room, members in live:
                    with room.burst():
                        room.handle(members[writer], parse_message(frame))
                    keystrokes += 1
                for room, _ in live:
                    await room.drain()
            elapsed = time.process_time() - started
            metrics.render(None)  # what a scrape pays, once
    return keystrokes, elapsed


def _instructions(args: argparse.Namespace, turns: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        f"--rooms={args.rooms}",
        f"--peers={args.peers}",
        f"--writers={args.writers}",
        f"--turns={turns}",
    ]
    # a fixed hash seed: str hashes decide dict layouts, which moved the count by ~3%
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=5, help="rooms with a keystroke per turn")
    parser.add_argument("--peers", type=int, default=10, help="peers per room")
    parser.add_argument("--writers", type=int, default=5, help="of the peers, how many type")
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="count instructions per keystroke under callgrind (two runs, differenced)",
    )
    args = parser.parse_args()
    if args.writers > args.peers:
        parser.error("--writers must not exceed --peers")
    if args.callgrind:
        low, high = 100, 400
        count = (_instructions(args, high) - _instructions(args, low)) / ((high - low) * args.rooms)
        print(
            f"rooms={args.rooms} peers={args.peers} writers={args.writers}: "
            f"{count:,.0f} instructions per keystroke"
        )
        return
    keystrokes, elapsed = asyncio.run(_run(args.rooms, args.peers, args.writers, args.turns))
    print(
        f"rooms={args.rooms} peers={args.peers} writers={args.writers}: {keystrokes} "
        f"keystrokes, {elapsed * 1e6 / keystrokes:.1f} us CPU per keystroke"
    )


if __name__ == "__main__":
    main()
