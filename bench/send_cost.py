"""CPU cost of the send side alone, in process: one fan-out pass of a keystroke, and one
cursor move (its awareness check, the table update and the pass that relays it), to
`--peers` real `LeanWebSocketProtocol`s per room over transports that drop what they
are given (bench/inprocess.py), as `flush_cost.py --lean` makes them.

Nothing is appended or read here (flush_cost.py, read_cost.py count those): each turn
calls the room's delivery directly, so the count is the send side's only.

    .venv/bin/python bench/send_cost.py --mode keystroke --callgrind
    .venv/bin/python bench/send_cost.py --mode cursor --callgrind
    .venv/bin/python bench/send_cost.py --mode both --callgrind  # a keystroke and a cursor

`--mode keystroke`: a pass of one writer's keystroke (the merged update, sent to every
peer but the writer). `--mode cursor`: a writer's cursor move as `receive_frame` hands
it over (`Room.handle_awareness`), then its pass (the echo to every peer, the mover
too). `--mode both`: a pass carrying a keystroke and a cursor move. Instructions are per
pass and per delivery (frames written to one peer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from typing import Any

from inprocess import callgrind, lean_handshake
from keystrokes import keystroke_frames

from syncd.auth import Principal
from syncd.protocol import (
    AwarenessEntry,
    encode_awareness,
    encode_awareness_update,
    parse_message,
)
from syncd.room import Peer, Room, RoomLimits
from syncd.transport.websocket import AsgiChannel

_WARMUP_TURNS = 20


class _NoBackend:
    """A backend nothing is appended to (`_deliver_now` is called directly)."""

    def publish_awareness(self, doc_id: str, payload: bytes) -> None:
        pass


class _Unread:
    def frames_received(self, frames: list[bytes | str]) -> None:
        pass

    def disconnected(self) -> None:
        pass


async def _lean_channel() -> AsgiChannel:
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
    return made[0]


def _cursor(writer: int, clock: int) -> bytes:
    """A y-prosemirror cursor move's awareness frame (user, relative anchor and head)."""
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


async def _run(rooms: int, peers: int, writers: int, turns: int, mode: str) -> int:
    """Run the turns; return the deliveries made after the warm-up."""
    total = _WARMUP_TURNS + turns
    per_writer = total // writers + 1
    strokes = [[f[3:] for f in keystroke_frames(1000 + w, per_writer)] for w in range(writers)]
    cursors = [[_cursor(w, i + 1) for i in range(per_writer)] for w in range(writers)]
    payloads = [[parse_message(f).payload for f in frames] for frames in cursors]  # type: ignore[attr-defined]
    live: list[tuple[Room, list[Peer]]] = []
    for r in range(rooms):
        room = Room(f"r{r}", _NoBackend(), RoomLimits(pass_interval=0.0))  # type: ignore[arg-type]
        members = [
            Peer(channel=await _lean_channel(), user_id=f"u{p}", can_write=True)
            for p in range(peers)
        ]
        for peer in members:
            room.peers.add(peer)
        # what `handle_awareness` queues is taken here: no pass is scheduled
        room._scheduled = True
        live.append((room, members))
    deliveries = 0
    for turn in range(total):
        if turn == _WARMUP_TURNS:
            deliveries = 0
        writer = turn % writers
        index = turn // writers
        for room, members in live:
            batch: list[tuple[Peer | None, bytes]] = []
            merged = None
            if mode != "cursor":
                merged = strokes[writer][index]
                batch = [(members[writer], merged)]
                deliveries += peers - 1
            if mode != "keystroke":
                frame = cursors[writer][index]
                room.handle_awareness(members[writer], payloads[writer][index], frame)
                deliveries += 1 if mode == "both" else peers
            relays, room._relays = room._relays, []
            assert not room._deliver_now(batch, merged, relays)
    return deliveries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--mode", choices=("keystroke", "cursor", "both"), default="keystroke")
    parser.add_argument("--callgrind", action="store_true")
    args = parser.parse_args()
    if not args.callgrind:
        print(asyncio.run(_run(args.rooms, args.peers, args.writers, args.turns, args.mode)))
        return
    counts = []
    for turns in (100, 400):
        command = [
            sys.executable,
            __file__,
            f"--rooms={args.rooms}",
            f"--peers={args.peers}",
            f"--writers={args.writers}",
            f"--turns={turns}",
            f"--mode={args.mode}",
        ]
        counts.append(callgrind(command))
    passes = 300 * args.rooms
    deliveries = int(counts[1][1]) - int(counts[0][1])
    spent = counts[1][0] - counts[0][0]
    print(
        f"mode={args.mode} rooms={args.rooms} peers={args.peers}: "
        f"{spent / passes:,.0f} instructions per pass, "
        f"{spent / deliveries:,.0f} per delivery"
    )


if __name__ == "__main__":
    main()
