"""In-process timing of a burst of a client's messages applied one by one or as one burst
(`Room.burst`: one doc transaction), the room-side half of issue 15's "parse and apply a
burst of frames per read". Only the synchronous apply path is timed (parse, walker checks,
pycrdt apply); the flush after it is one per loop turn either way.

    .venv/bin/python bench/burst_timing.py [--keystrokes 6000] [--bursts 1,5,20,50]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from keystrokes import keystroke_frames

from syncd.protocol import parse_message
from syncd.room import Peer, Room


class _Backend:
    async def load(self, doc_id: str) -> Sequence[bytes]:
        return []

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        return None

    async def compact(self, doc_id: str) -> bool:
        return True

    def subscribe(self, doc_id: str, listener: object) -> None: ...

    def unsubscribe(self, doc_id: str) -> None: ...

    def publish_awareness(self, doc_id: str, payload: bytes) -> None: ...


class _Channel:
    closed = False

    async def send(self, frame: bytes) -> None: ...

    def send_now(self, frame: bytes) -> bool:
        return True

    def send_all_now(self, frames: tuple[bytes, ...]) -> bool:
        return True

    async def close(self, code: int, reason: str = "") -> None: ...


async def _run(frames: list[bytes], size: int, burst: bool) -> float:
    room = Room("bench", _Backend())  # type: ignore[arg-type]
    peer = Peer(channel=_Channel(), user_id="u", can_write=True)
    room.join(peer)
    elapsed = 0.0
    for start in range(0, len(frames), size):
        chunk = frames[start : start + size]
        began = time.perf_counter()
        if burst:
            with room.burst():
                for frame in chunk:
                    room.handle(peer, parse_message(frame))
        else:
            for frame in chunk:
                room.handle(peer, parse_message(frame))
        elapsed += time.perf_counter() - began
        await room.drain()  # the flush, untimed: one per turn in both cases
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keystrokes", type=int, default=6000)
    parser.add_argument("--bursts", default="1,5,20,50")
    args = parser.parse_args()
    frames = keystroke_frames(99, args.keystrokes)
    print("burst size | one by one µs/msg | as a burst µs/msg | ratio")
    for size in (int(s) for s in args.bursts.split(",")):
        single = min([await _run(frames, size, False) for _ in range(3)])
        batched = min([await _run(frames, size, True) for _ in range(3)])
        per = 1e6 / len(frames)
        print(f"{size:10} | {single * per:17.2f} | {batched * per:17.2f} | {batched / single:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
