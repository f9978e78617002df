"""Keystrokes per fan-out pass and the loop's CPU per keystroke in one busy room, with and
without pass pacing (`syncd.room.pacing`), alternated in one process.

A room of `--peers` peers runs on this process's event loop; its `--writers` writers'
keystrokes arrive over real local sockets from a feeder subprocess that sends them at
`--rate` keystrokes/s spread over time (not one batch per tick), so how many a pass
carries is decided by the loop as under `syncd serve`. Every peer's channel is the real
`AsgiChannel` writing to a real local socket (the feeder drains them), so the write
syscalls per pass are in the CPU time. Measured: CPU time of the loop's thread only (the
feeder is another process), passes, and the time from a keystroke's arrival on the loop
to its pass's writes.

    .venv/bin/python bench/pass_pacing.py --rate 7600 --seconds 4 --rounds 3

Pacing `0` is main's behaviour (a pass every time the room's flush task comes round).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flush_cost import _channel

from syncd.bus.local import LocalBus
from syncd.protocol import parse_message
from syncd.room import Peer, Room, RoomLimits
from syncd.storage import open_store

_FEEDER = r"""
import os, select, socket, struct, sys, time
sys.path.insert(0, sys.argv[1])
from keystrokes import keystroke_frames
rate, seconds, writers = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
fds = [int(fd) for fd in sys.argv[5].split(",")]
out = [socket.socket(fileno=fd) for fd in fds[:writers]]
sinks = [socket.socket(fileno=fd) for fd in fds[writers:]]
for s in sinks:
    s.setblocking(False)
total = int(rate * seconds) + writers
frames = [keystroke_frames(1000 + w, total // writers + 1) for w in range(writers)]
print("ready", flush=True)
start = time.perf_counter()
sent = 0
while sent < total:
    due = min(total, int((time.perf_counter() - start) * rate))
    while sent < due:
        w = sent % writers
        f = frames[w][sent // writers]
        out[w].sendall(struct.pack("!I", len(f)) + f)
        sent += 1
    ready, _, _ = select.select(sinks, [], [], 0.0002)
    for s in ready:
        try:
            while s.recv(1 << 20):
                pass
        except BlockingIOError:
            pass
end = time.perf_counter() + 1.0
while time.perf_counter() < end:
    ready, _, _ = select.select(sinks, [], [], 0.05)
    for s in ready:
        try:
            while s.recv(1 << 20):
                pass
        except BlockingIOError:
            pass
"""


def _feeder(args: argparse.Namespace, fds: list[int]) -> subprocess.Popen[bytes]:
    """The load: a process that sends the writers' keystrokes and drains every peer."""
    argv = [sys.executable, "-c", _FEEDER, str(Path(__file__).parent), str(args.rate)]
    argv += [str(args.seconds + 1.0), str(args.writers), ",".join(map(str, fds))]
    return subprocess.Popen(argv, pass_fds=fds, stdout=subprocess.PIPE)


def _thread_cpu() -> float:
    return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)


async def _round(args: argparse.Namespace, interval: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as folder:
        async with open_store(f"sqlite+aiosqlite:///{Path(folder) / 'b.db'}") as store:
            note = await store.create_note(note_id=None, title="r", created_by="bench")
            limits = RoomLimits(pass_interval=interval)
            room = Room(note.id, LocalBus(store), limits)
            room.load([])
            sinks: list[socket.socket] = []
            members = []
            for p in range(args.peers):
                ours, theirs = socket.socketpair()
                ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
                sinks.append(theirs)
                members.append(Peer(channel=_channel(ours), user_id=f"u{p}", can_write=True))
            for member in members:
                room.join(member)
            inputs = []
            for _ in range(args.writers):
                ours, theirs = socket.socketpair()
                ours.setblocking(False)
                inputs.append((ours, theirs))
            passes = 0
            arrived: list[float] = []  # arrival time of each keystroke not yet sent
            latencies: list[float] = []
            deliver = room._deliver

            async def counted(*a: object, **k: object) -> None:
                nonlocal passes
                passes += 1
                now = time.perf_counter()
                # the newest `applied - journaled` keystrokes are not in this pass
                done = len(arrived) - (room._applied - room._journaled)
                for t in arrived[:done]:
                    latencies.append(now - t)
                del arrived[:done]
                await deliver(*a, **k)  # type: ignore[arg-type]

            room._deliver = counted  # type: ignore[method-assign]
            handled = 0

            def readable(index: int) -> None:
                nonlocal handled
                sock = inputs[index][0]
                buffers = buffered[index]
                try:
                    data = sock.recv(1 << 16)
                except BlockingIOError:
                    return
                buffers.extend(data)
                frames = []
                while len(buffers) >= 4:
                    (size,) = struct.unpack_from("!I", buffers)
                    if len(buffers) < 4 + size:
                        break
                    frames.append(bytes(buffers[4 : 4 + size]))
                    del buffers[: 4 + size]
                now = time.perf_counter()
                with room.burst():
                    for frame in frames:
                        room.handle(members[index], parse_message(frame))
                        arrived.append(now)
                handled += len(frames)

            buffered = [bytearray() for _ in inputs]
            for i, (ours, _) in enumerate(inputs):
                loop.add_reader(ours.fileno(), readable, i)
            fds = [theirs.fileno() for _, theirs in inputs] + [s.fileno() for s in sinks]
            feeder = _feeder(args, fds)
            assert feeder.stdout is not None
            await asyncio.to_thread(feeder.stdout.readline)  # its frames are made
            for _, theirs in inputs:
                theirs.close()
            for s in sinks:
                s.close()
            await asyncio.sleep(1.0)  # warm-up
            passes0, handled0, cpu0 = passes, handled, _thread_cpu()
            latencies.clear()
            await asyncio.sleep(args.seconds)
            cpu, n, k = _thread_cpu() - cpu0, handled - handled0, passes - passes0
            lat = sorted(latencies)
            for ours, _ in inputs:
                loop.remove_reader(ours.fileno())
            await asyncio.to_thread(feeder.wait)
            await room.drain()
    return {
        "keystrokes": n,
        "passes": k,
        "per_pass": n / max(k, 1),
        "cpu_us_per_keystroke": cpu * 1e6 / max(n, 1),
        "cpu_pct": 100 * cpu / args.seconds,
        "p50_ms": 1e3 * lat[len(lat) // 2] if lat else 0.0,
        "p99_ms": 1e3 * lat[int(len(lat) * 0.99)] if lat else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=7600.0, help="keystrokes/s")
    parser.add_argument("--peers", type=int, default=50)
    parser.add_argument("--writers", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--intervals", default="0,0.001", help="pass intervals to alternate (seconds)"
    )
    args = parser.parse_args()
    intervals = [float(v) for v in args.intervals.split(",")]
    results: dict[float, list[dict[str, float]]] = {i: [] for i in intervals}
    for r in range(args.rounds):
        for interval in intervals:
            result = asyncio.run(_round(args, interval))
            results[interval].append(result)
            shown = " ".join(f"{k}={v:.2f}" for k, v in result.items())
            print(f"round {r + 1} interval={interval}: {shown}", flush=True)
    print(f"load average {os.getloadavg()}")
    for interval, runs in results.items():
        medians = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
        shown = " ".join(f"{k}={v:.2f}" for k, v in medians.items())
        print(f"median interval={interval}: {shown}")


if __name__ == "__main__":
    main()
