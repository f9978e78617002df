"""CPU cost of the embedded write path per keystroke, in process: a peer's frame parsed and
applied, the room's flush (merge, group commit to a SQLite file through `LocalBus`,
metrics) and the fan-out to every peer (framing, frame counting, a transport write).

Each turn, `--rooms` rooms of `--peers` peers each get one keystroke from one of their
writers, then every room is drained, as one event-loop turn of a busy server does. The
channels are `AsgiChannel`s over a transport that takes everything (frames counted,
framed, written to a list that is dropped).

    .venv/bin/python bench/flush_cost.py --rooms 5 --peers 10 --turns 2000
    .venv/bin/python bench/flush_cost.py --rooms 5 --callgrind   # instructions/keystroke
    .venv/bin/python bench/flush_cost.py --rooms 5 --cursor-every 2 --callgrind

`--cursor-every K`: on every K-th turn the writer also moves its cursor (an awareness
update, as y-prosemirror sends after a keystroke), so that pass sends each peer an update
frame and an awareness frame (the awareness one to the writer too, as echo). With
`--cursor-apart` the cursor move arrives after that pass, in a read and pass of its own
(as `loadgen.mjs --awareness` sends them, on their own schedule). Instructions per cursor
move: (count with K - count with 0) x K.

`--lean`: the channels are over real `LeanWebSocketProtocol`s made as `syncd serve` makes
them (`LeanHttpToolsProtocol`, the lean handshake, `adopt`, as `read_cost.py` does) over a
transport whose `write` drops what it is given, so the transport's own write path
(`write_binary`: its checks, the framing) is what is counted, not a stand-in's.

`--backend redis`: the rooms append to Redis streams through `RedisBus` (scaled mode),
the store a SQLite file: a real Redis from `SYNCD_TEST_REDIS_URL`, else a throwaway one
started here (as `tests/support/services.py` does); its keys are under a prefix of their
own, deleted at the end. The CPU counted is this process's only, not Redis's.

    .venv/bin/python bench/flush_cost.py --backend redis --rooms 100 --peers 5 --callgrind

`--callgrind` runs this script twice under `valgrind --tool=callgrind` with two numbers
of turns and divides the difference of the instructions counted by the difference of
the keystrokes, so start-up, imports and warm-up cancel out; the count is repeatable
on a loaded machine, unlike times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from inprocess import callgrind, lean_handshake
from keystrokes import keystroke_frames
from websockets.protocol import State

from syncd import metrics
from syncd.auth import Principal
from syncd.bus.instrumented import InstrumentedBackend
from syncd.bus.local import LocalBus
from syncd.protocol import AwarenessEntry, encode_awareness, encode_awareness_update, parse_message
from syncd.room import Peer, Room, RoomLimits
from syncd.room.backend import DocBackend
from syncd.storage import Store, open_store
from syncd.transport.lean_protocol import _OPEN, binary_frame
from syncd.transport.websocket import AsgiChannel

try:
    from syncd.transport.lean_protocol import binary_frames
except ImportError:  # a tree from before one write per peer per pass (A/B against older trees)
    binary_frames = None  # type: ignore[assignment]

_WARMUP_TURNS = 50


class _Open:
    """A `websockets` connection's state, as `fan_out_now` reads it: open."""

    state = State.OPEN


class _Socket:
    """Stands in for `LeanWebSocketProtocol` under `AsgiChannel`: a transport that is
    never paused. What is written is kept briefly, then dropped, or (`--sockets`) sent on
    a real local socket, so the write syscalls are part of the CPU time measured."""

    __slots__ = ("sock", "transport", "written")

    #: what `fan_out_now` reads of a lean socket (open, never paused)
    close_sent = disconnected = False
    writable = _OPEN
    conn = _Open()

    def __init__(self, sock: socket.socket | None) -> None:
        self.written: list[bytes] = []
        self.sock = sock
        self.transport = self

    def write(self, data: bytes) -> None:
        self._write(data)

    def write_binary(self, payload: bytes) -> bool:
        self._write(binary_frame(payload))
        return True

    def write_binaries(self, payloads: tuple[bytes, ...]) -> bool:
        assert binary_frames is not None  # only trees that have it call this
        self._write(binary_frames(payloads))
        return True

    def _write(self, data: bytes) -> None:
        if self.sock is not None:
            self.sock.send(data)
            return
        self.written.append(data)
        if len(self.written) > 64:
            self.written.clear()


async def _no_asgi_send(message: object) -> None:
    raise AssertionError("the socket is never paused: every frame goes out by send_now")


def _channel(sock: socket.socket | None) -> AsgiChannel:
    """The real channel of `syncd serve` (frame counting and all) over `_Socket`."""
    principal = Principal(
        user_id="bench", name=None, email=None, roles=(), expires_at=math.inf, token_id=None
    )
    channel = AsgiChannel(_no_asgi_send, principal)
    channel._socket = _Socket(sock)  # type: ignore[assignment]
    return channel


class _Unread:
    """The frame handler of a `--lean` connection: nothing is read in this bench."""

    def frames_received(self, frames: list[bytes | str]) -> None:
        pass

    def disconnected(self) -> None:
        pass


async def _lean_channel() -> AsgiChannel:
    """An `AsgiChannel` over a real `LeanWebSocketProtocol` after the lean handshake."""
    made: list[AsgiChannel] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        principal = Principal(
            user_id="bench", name=None, email=None, roles=(), expires_at=math.inf, token_id=None
        )
        made.append(AsgiChannel(send, principal))
        assert send.__self__.adopt(_Unread())

    await lean_handshake(app)
    assert made and made[0].socket is not None
    return made[0]


def _unpaced() -> RoomLimits | None:
    """No pass pacing: every drain here is one pass, so its cost is what is measured
    (`bench/pass_pacing.py` measures pacing). None in a tree from before pacing."""
    try:
        return RoomLimits(pass_interval=0.0)  # type: ignore[call-arg,unused-ignore]
    except TypeError:
        return None


def _keystrokes(writer: int, count: int) -> list[bytes]:
    """`count` update frames of one writer typing into its own position."""
    return keystroke_frames(1000 + writer, count)


def _cursor(writer: int, clock: int) -> bytes:
    """An awareness frame of one writer's cursor move (the shape a y-prosemirror cursor
    update has: user and a relative anchor/head)."""
    item = {"client": 1000 + writer, "clock": clock}
    anchor = {"type": None, "tname": "text", "item": item, "assoc": 0}
    state = json.dumps(
        {
            "user": {"name": f"w{writer}", "color": "#30bced"},
            "cursor": {"anchor": anchor, "head": anchor},
        },
        separators=(",", ":"),
    )
    return encode_awareness(encode_awareness_update([AwarenessEntry(1000 + writer, clock, state)]))


@contextlib.asynccontextmanager
async def _backend(kind: str, store: Store) -> AsyncIterator[DocBackend]:
    """The rooms' backend: `LocalBus` on the SQLite store, or `RedisBus` (scaled mode)."""
    if kind == "local":
        yield InstrumentedBackend(LocalBus(store))
        return
    from redis.asyncio import Redis

    from syncd.bus import RedisBus
    from syncd.bus.keys import Keys

    url = os.environ.get("SYNCD_TEST_REDIS_URL")
    if not url:
        raise SystemExit("--backend redis needs SYNCD_TEST_REDIS_URL (main() starts one)")
    keys = Keys(f"bench-flush-{uuid.uuid4().hex[:8]}")
    redis = Redis.from_url(url)
    try:
        async with RedisBus(redis, url, store, "bench", orphan_interval=3600, keys=keys) as bus:
            yield InstrumentedBackend(bus)
    finally:
        async for key in redis.scan_iter(match=f"{keys.prefix}:*", count=1000):
            await redis.delete(key)
        await redis.aclose()


async def _run(
    rooms: int,
    peers: int,
    writers: int,
    turns: int,
    cursor_every: int = 0,
    sockets: bool = False,
    per_pass: int = 1,
    backend_kind: str = "local",
    cursor_apart: bool = False,
    lean: bool = False,
) -> tuple[int, float]:
    """Run `turns` measured turns after a warm-up; return keystrokes and CPU seconds.

    `per_pass`: keystrokes each room gets per turn (from successive writers) before it is
    drained, i.e. how many one fan-out pass carries."""
    total = _WARMUP_TURNS + turns
    per_writer = (total * per_pass) // writers + 1
    scripts = [_keystrokes(w, per_writer) for w in range(writers)]
    cursors = [[_cursor(w, i + 1) for i in range(per_writer)] for w in range(writers)]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        async with open_store(url) as store, _backend(backend_kind, store) as backend:
            live: list[tuple[Room, list[Peer]]] = []
            #: the receiving ends of `--sockets`, drained after every turn
            readers: list[socket.socket] = []
            for r in range(rooms):
                note = await store.create_note(note_id=None, title=f"r{r}", created_by="bench")
                room = Room(note.id, backend, _unpaced())
                backend.subscribe(note.id, room)
                room.load(list(await backend.load(note.id)))
                members = []
                for p in range(peers):
                    sock = None
                    if sockets:
                        sock, reader = socket.socketpair()
                        reader.setblocking(False)
                        readers.append(reader)
                    channel = await _lean_channel() if lean else _channel(sock)
                    members.append(Peer(channel=channel, user_id=f"u{p}", can_write=True))
                for peer in members:
                    room.join(peer)
                live.append((room, members))
            keystrokes = 0
            started = 0.0
            for turn in range(total):
                if turn == _WARMUP_TURNS:
                    keystrokes = 0
                    started = time.process_time()
                for k in range(per_pass):
                    stroke = turn * per_pass + k
                    writer = stroke % writers
                    frame = scripts[writer][stroke // writers]
                    cursor = (
                        cursors[writer][stroke // writers]
                        if cursor_every and stroke % cursor_every == 0
                        else None
                    )
                    for room, members in live:
                        with room.burst():
                            room.handle(members[writer], parse_message(frame))
                            if cursor is not None and not cursor_apart:
                                room.handle(members[writer], parse_message(cursor))
                        keystrokes += 1
                    if cursor is not None and cursor_apart:
                        for room, _ in live:
                            await room.drain()
                        for room, members in live:
                            room.handle(members[writer], parse_message(cursor))
                for room, _ in live:
                    await room.drain()
                for reader in readers:
                    with contextlib.suppress(BlockingIOError):
                        reader.recv(1 << 16)
            elapsed = time.process_time() - started
            metrics.render(None)  # what a scrape pays, once
    return keystrokes, elapsed


def _instructions(args: argparse.Namespace, turns: int) -> int:
    command = [
        sys.executable,
        __file__,
        f"--rooms={args.rooms}",
        f"--peers={args.peers}",
        f"--writers={args.writers}",
        f"--turns={turns}",
        f"--cursor-every={args.cursor_every}",
        f"--per-pass={args.per_pass}",
        f"--backend={args.backend}",
        *(["--sockets"] if args.sockets else []),
        *(["--cursor-apart"] if args.cursor_apart else []),
        *(["--lean"] if args.lean else []),
    ]
    return callgrind(command)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=5, help="rooms with a keystroke per turn")
    parser.add_argument("--peers", type=int, default=10, help="peers per room")
    parser.add_argument("--writers", type=int, default=5, help="of the peers, how many type")
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument(
        "--cursor-every",
        type=int,
        default=0,
        help="every K-th turn the writer also moves its cursor (0: never)",
    )
    parser.add_argument(
        "--cursor-apart",
        action="store_true",
        help="each cursor move in a read and pass of its own, after the keystroke's pass",
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="count instructions per keystroke under callgrind (two runs, differenced)",
    )
    parser.add_argument(
        "--sockets",
        action="store_true",
        help="write to real local sockets (CPU time then includes the write syscalls)",
    )
    parser.add_argument(
        "--lean",
        action="store_true",
        help="channels over real LeanWebSocketProtocols (their write path counted)",
    )
    parser.add_argument(
        "--per-pass",
        type=int,
        default=1,
        help="keystrokes per room per turn, i.e. carried by one fan-out pass",
    )
    parser.add_argument(
        "--backend",
        choices=("local", "redis"),
        default="local",
        help="local: LocalBus on a SQLite file (embedded); redis: RedisBus (scaled mode)",
    )
    args = parser.parse_args()
    if args.writers > args.peers:
        parser.error("--writers must not exceed --peers")
    with contextlib.ExitStack() as stack:
        if args.backend == "redis" and not os.environ.get("SYNCD_TEST_REDIS_URL"):
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.support.services import start_redis

            folder = stack.enter_context(tempfile.TemporaryDirectory())
            server = start_redis(Path(folder), appendonly=False)
            stack.callback(server.close)
            os.environ["SYNCD_TEST_REDIS_URL"] = server.url
        _measure(args)


def _measure(args: argparse.Namespace) -> None:
    if args.callgrind:
        low, high = 100, 400
        strokes = (high - low) * args.rooms * args.per_pass
        count = (_instructions(args, high) - _instructions(args, low)) / strokes
        print(
            f"backend={args.backend} rooms={args.rooms} peers={args.peers} writers={args.writers} "
            f"cursor-every={args.cursor_every}{' apart' if args.cursor_apart else ''} "
            f"per-pass={args.per_pass}{' lean' if args.lean else ''}: "
            f"{count:,.0f} instructions per keystroke"
        )
        return
    keystrokes, elapsed = asyncio.run(
        _run(
            args.rooms,
            args.peers,
            args.writers,
            args.turns,
            args.cursor_every,
            args.sockets,
            args.per_pass,
            args.backend,
            args.cursor_apart,
            args.lean,
        )
    )
    print(
        f"backend={args.backend} rooms={args.rooms} peers={args.peers} "
        f"writers={args.writers} per-pass={args.per_pass}: {keystrokes} "
        f"keystrokes, {elapsed * 1e6 / keystrokes:.1f} us CPU per keystroke"
    )


if __name__ == "__main__":
    main()
