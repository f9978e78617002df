"""What one idle y-websocket connection costs the server, by allocation site (tracemalloc).

Runs `syncd serve`'s uvicorn configuration in this process with tracemalloc on, and a
client process that opens one synced connection per room (rooms loaded: snapshot A), then
`--conns` more over the same rooms (snapshot B). B - A, divided by the connections opened
in between, is the Python heap each connection holds beyond its room; the top allocation
sites are printed, grouped by traceback. The client also reports connects+syncs per second
of the second phase (slowed down by tracemalloc: compare runs of this script only).

    .venv/bin/python bench/connmem.py --conns 2000 --rooms 100 [--frames 12] [--top 25]
    .venv/bin/python bench/connmem.py --no-trace   # connect rate and server CPU per connect
                                                   # (e.g. under py-spy)

Another tree (e.g. `git archive integ | tar -x -C /tmp/base`) runs with its own code when
its directory comes first on the path; alternate the two, several rounds, and compare
medians (the machine is shared):

    PYTHONPATH=/tmp/base .venv/bin/python /tmp/base/bench/connmem.py --no-trace
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

SECRET = "connmem-secret-connmem-secret-connmem-secret"
STEP1_EMPTY = b"\x00\x00\x01\x00"
STEP2_EMPTY = b"\x00\x01\x02\x00\x00"


async def _client(url: str, rooms: int, conns: int, concurrency: int) -> None:
    from websockets.asyncio.client import connect

    from syncd.auth import mint_token

    token = mint_token(SECRET, "bench", roles=["service"], ttl_seconds=36000)
    held = []

    async def open_one(room: int) -> None:
        ws = await connect(
            f"{url}/ws/notes/connmem-{room}?token={token}", max_size=None, open_timeout=300
        )
        await ws.send(STEP1_EMPTY)
        while True:
            frame = await ws.recv()
            if isinstance(frame, bytes) and frame[:2] == b"\x00\x00":
                await ws.send(STEP2_EMPTY)
            elif isinstance(frame, bytes) and frame[:2] == b"\x00\x01":
                break
        held.append(ws)

    async def phase(indexes: list[int]) -> float:
        queue = list(reversed(indexes))

        async def worker() -> None:
            while queue:
                await open_one(queue.pop())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started

    await phase(list(range(rooms)))
    print(json.dumps({"phase": 1}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    seconds = await phase([i % rooms for i in range(conns)])
    print(json.dumps({"phase": 2, "connects_per_s": round(conns / seconds, 1)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for ws in held:
        await ws.close()


def _diff(a: tracemalloc.Snapshot, b: tracemalloc.Snapshot, conns: int, top: int) -> None:
    stats = b.compare_to(a, "traceback")
    total = sum(s.size_diff for s in stats)
    print(f"\nheap growth: {total} bytes, {total / conns:.0f} bytes/conn over {conns} conns")
    for stat in stats[:top]:
        if stat.size_diff <= 0:
            break
        print(f"\n{stat.size_diff / conns:8.0f} B/conn {stat.count_diff / conns:6.2f} blocks/conn")
        for line in stat.traceback.format()[-2 * 8 :]:
            print("   ", line)


def _counts() -> dict[str, float]:
    """What the connect path does per connect that a profile does not show as a count:
    bookkeeping passes (one session transaction each) and access-cache look-ups."""
    from syncd import metrics

    def sample(metric: object, suffix: str = "_total", **labels: str) -> float:
        for family in metric.collect():  # type: ignore[attr-defined]
            for s in family.samples:
                if s.name.endswith(suffix) and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return 0.0

    return {
        "presence_passes": sample(metrics.PRESENCE_PASSES),
        "access_cache_hits": sample(metrics.CACHE_REQUESTS, cache="access", result="hit"),
        "access_cache_misses": sample(metrics.CACHE_REQUESTS, cache="access", result="miss"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conns", type=int, default=2000)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--frames", type=int, default=12, help="traceback depth")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--no-trace", action="store_true", help="connect rate only (no tracemalloc)"
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        asyncio.run(_client(args.client, args.rooms, args.conns, args.concurrency))
        return 0

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="connmem-"))
    os.environ.update(
        {
            "JWT_SECRET": SECRET,
            "SYNCD_AUTO_CREATE_NOTES": "1",
            "SYNCD_RATE_LIMITS": "0",
            "SYNCD_DATA_DIR": str(folder),
            "DATABASE_URL": f"sqlite:///{folder / 'syncd.db'}",
            "SYNCD_LOG_LEVEL": "warning",
            "HOST": "127.0.0.1",
            "PORT": str(port),
        }
    )
    for key in ("REDIS_URL",):
        os.environ.pop(key, None)
    import uvicorn

    from syncd.cli import server_config
    from syncd.settings import Settings

    if not args.no_trace:
        tracemalloc.start(args.frames)
    server = uvicorn.Server(server_config(Settings.from_env()))

    def drive() -> None:
        while not server.started:
            time.sleep(0.05)
        client = subprocess.Popen(
            [
                *(sys.executable, __file__, "--client", f"ws://127.0.0.1:{port}"),
                *("--conns", str(args.conns), "--rooms", str(args.rooms)),
                *("--concurrency", str(args.concurrency)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdin is not None and client.stdout is not None
        client.stdout.readline()
        if args.no_trace:
            counts = _counts()
            cpu = time.process_time()
            client.stdin.write("\n")
            client.stdin.flush()
            line = json.loads(client.stdout.readline())
            per_connect = (time.process_time() - cpu) * 1000 / args.conns
            print(f"connects+syncs/s: {line['connects_per_s']}")
            print(f"server CPU per connect+sync: {per_connect:.3f} ms")
            after = _counts()
            print("during the storm:", {k: after[k] - counts[k] for k in after})
        else:
            time.sleep(1.0)
            gc.collect()
            a = tracemalloc.take_snapshot()
            client.stdin.write("\n")
            client.stdin.flush()
            line = json.loads(client.stdout.readline())
            time.sleep(2.0)
            gc.collect()
            b = tracemalloc.take_snapshot()
            print(f"connects+syncs/s under tracemalloc: {line['connects_per_s']}")
            _diff(a, b, args.conns, args.top)
        client.stdin.write("\n")
        client.stdin.flush()
        client.wait(timeout=60)
        server.should_exit = True

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    server.run()
    thread.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
