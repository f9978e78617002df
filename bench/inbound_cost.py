"""CPU cost of the inbound path per keystroke, in process: a client's frame counted,
parsed, checked and applied to the room's doc and queued, as `Connection._process` does
for one read (`SyncEndpoint.receive_frame`, `Room.handle`), and nothing after that: no
pass runs (the room's flush task is created once and never gets to run; the queue is
emptied every few keystrokes), so what `flush_cost.py` adds (merge, durable append,
fan-out) is left out and the inbound share shows alone.

    .venv/bin/python bench/inbound_cost.py --writers 5 --keystrokes 20000
    .venv/bin/python bench/inbound_cost.py --callgrind          # instructions/keystroke
    PYTHONPATH=/tmp/base .venv/bin/python bench/inbound_cost.py --callgrind   # A/B

`--per-read N`: each read carries N keystrokes of one writer (one doc transaction for
them, as `Connection._process` makes for a burst). `--cursor-every K`: every K-th read is
followed by a cursor move of its writer in a read of its own (as `loadgen.mjs
--awareness` sends them: an awareness update of the size y-prosemirror sends, with a newer
clock each time, so the room takes and relays every one); a cursor move's cost is (per
keystroke with K - without) x K x N.

`--callgrind` runs this script twice under `valgrind --tool=callgrind` with two numbers
of keystrokes and divides the difference of the instructions by the difference of the
keystrokes, so start-up and imports cancel out (`PYTHONHASHSEED=0`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from contextlib import nullcontext

from inprocess import callgrind
from keystrokes import keystroke_frames
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

from syncd.auth import Principal
from syncd.protocol import AwarenessEntry, encode_awareness, encode_awareness_update, encode_update
from syncd.room import Peer, Room
from syncd.transport.websocket import AsgiChannel, SyncEndpoint

_WARMUP = 200


async def _no_send(message: object) -> None:
    raise AssertionError("nothing is sent: no pass runs")


class _NoBackend:
    """No pass runs here, so nothing is appended; awareness is not fed."""

    def publish_awareness(self, doc_id: str, payload: bytes) -> None:
        pass


def _both_frames(client_id: int, count: int) -> list[bytes]:
    """`count` keystroke frames alternating between a Y.Text and a y-prosemirror paragraph
    (`loadgen.mjs --shape both`, its default), the paragraph made by the first frame.

    Unlike `keystroke_frames` (one Y.Text), no two keystrokes of a writer are adjacent
    clocks in one type, so yrs never squashes them into one growing item (whose UTF-16
    length it recounts on every squash: a cost that grows with the run typed)."""
    doc = Doc(client_id=client_id)
    text = doc.get("text", type=Text)
    fragment = doc.get("prosemirror", type=XmlFragment)
    state = doc.get_state()
    paragraph = fragment.children.append(XmlElement("paragraph"))
    target = paragraph.children.append(XmlText())
    frames = [encode_update(doc.get_update(state))]
    for i in range(count - 1):
        state = doc.get_state()
        into = text if i % 2 == 0 else target
        into.insert(len(into), "abcdefghij"[i % 10])
        frames.append(encode_update(doc.get_update(state)))
    return frames


def _cursor_frames(client_id: int, count: int) -> list[bytes]:
    """`count` cursor moves of `client_id` (clocks 1, 2, ...) as y-prosemirror sends them."""
    frames = []
    for clock in range(1, count + 1):
        position = {
            "type": {"client": client_id, "clock": 4},
            "tname": None,
            "item": {"client": client_id, "clock": clock},
            "assoc": 0,
        }
        state = {
            "user": {"name": f"writer {client_id}", "color": "#30bced"},
            "cursor": {"anchor": position, "head": position},
        }
        text = json.dumps(state, separators=(",", ":"))
        entry = AwarenessEntry(client_id, clock, text)
        frames.append(encode_awareness(encode_awareness_update([entry])))
    return frames


def _peer(index: int) -> Peer:
    principal = Principal(
        user_id=f"u{index}", name=None, email=None, roles=(), expires_at=math.inf, token_id=None
    )
    return Peer(channel=AsgiChannel(_no_send, principal), user_id=f"u{index}", can_write=True)


async def _run(
    peers: int,
    writers: int,
    keystrokes: int,
    per_read: int,
    shape: str,
    generate: int = 0,
    cursor_every: int = 0,
) -> tuple[int, float]:
    """Feed `keystrokes` keystrokes after a warm-up; return how many and the CPU seconds.

    `generate`: make the frames of that many keystrokes (at least those fed), so that two
    runs under callgrind made the same frames and differ only in what was fed."""
    total = _WARMUP + keystrokes
    per_writer = (_WARMUP + max(keystrokes, generate)) // writers + per_read + 1
    make = _both_frames if shape == "both" else keystroke_frames
    scripts = [make(1000 + w, per_writer) for w in range(writers)]
    cursors = [_cursor_frames(1000 + w, per_writer) if cursor_every else [] for w in range(writers)]
    # only `receive_frame` is used: it needs none of the endpoint's services
    endpoint = SyncEndpoint(None, None, None, max_message_bytes=4 * 1024 * 1024)  # type: ignore[arg-type]
    room = Room("bench", _NoBackend())  # type: ignore[arg-type]
    room.load([])
    members = [_peer(p) for p in range(peers)]
    for peer in members:
        room.join(peer)
    counted = 0
    started = 0.0
    done = 0
    reads = 0
    while done < total:
        if done >= _WARMUP and not started:
            started = time.process_time()
            counted = 0
        writer = reads % writers
        first = (reads // writers) * per_read
        frames = scripts[writer][first : first + per_read]
        peer = members[writer]
        channel = peer.channel
        assert isinstance(channel, AsgiChannel)
        with room.burst() if per_read > 1 else nullcontext():
            for frame in frames:
                endpoint.receive_frame(room, peer, channel, None, frame)
        if cursor_every and reads % cursor_every == 0:  # a read of its own, as loadgen's
            endpoint.receive_frame(room, peer, channel, None, cursors[writer][reads // writers])
        reads += 1
        done += per_read
        counted += per_read
        if len(room._pending) >= 64 or len(room._relays) >= 64:  # no pass: keep queues short
            room._pending.clear()
            room._relays.clear()
    elapsed = time.process_time() - started
    if room._flush_task is not None:
        room._flush_task.cancel()
    return counted, elapsed


def _instructions(args: argparse.Namespace, keystrokes: int, generate: int) -> int:
    command = [
        sys.executable,
        __file__,
        f"--peers={args.peers}",
        f"--writers={args.writers}",
        f"--keystrokes={keystrokes}",
        f"--per-read={args.per_read}",
        f"--shape={args.shape}",
        f"--generate={generate}",
        f"--cursor-every={args.cursor_every}",
    ]
    return callgrind(command)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=50)
    parser.add_argument("--writers", type=int, default=5)
    parser.add_argument("--keystrokes", type=int, default=20000)
    parser.add_argument("--per-read", type=int, default=1, help="keystrokes per read (burst)")
    parser.add_argument(
        "--shape",
        choices=("both", "text"),
        default="both",
        help="alternate a Y.Text and a paragraph (loadgen's default) or one Y.Text only",
    )
    parser.add_argument("--generate", type=int, default=0, help="frames made (at least those fed)")
    parser.add_argument(
        "--cursor-every", type=int, default=0, help="a cursor move in every K-th read (0: none)"
    )
    parser.add_argument("--callgrind", action="store_true", help="instructions per keystroke")
    args = parser.parse_args()
    if args.callgrind:
        low, high = 1000, 4000
        count = (_instructions(args, high, high) - _instructions(args, low, high)) / (high - low)
        print(
            f"peers={args.peers} writers={args.writers} per-read={args.per_read} "
            f"shape={args.shape} cursor-every={args.cursor_every}: "
            f"{count:,.0f} instructions per keystroke (inbound)"
        )
        return
    counted, elapsed = asyncio.run(
        _run(
            args.peers,
            args.writers,
            args.keystrokes,
            args.per_read,
            args.shape,
            args.generate,
            args.cursor_every,
        )
    )
    print(
        f"peers={args.peers} writers={args.writers} per-read={args.per_read} "
        f"shape={args.shape}: {counted} "
        f"keystrokes, {elapsed * 1e6 / counted:.2f} us CPU per keystroke (inbound)"
    )


if __name__ == "__main__":
    main()
