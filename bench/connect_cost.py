"""Server CPU per connect + sync (and per close) of the y-websocket endpoint, for A/B of trees.

A child process runs `syncd serve`'s uvicorn configuration (SQLite, auto-create, no rate
limits, as bench/run.py's `conns` scenario) and a client subprocess (Python `websockets`,
its CPU not counted). The client first opens and closes one connection to each of 10
warm-up rooms, then opens `--conns` connections over `--rooms` fresh rooms (created and
loaded by their first connects, as in the `conns` scenario), `--concurrency` at a time,
each with a JWT: sync step 1 sent, the server's step 1 answered with step 2, the server's
step 2 awaited; it holds them, then closes them all. The server process's CPU time
(`time.process_time`) over each phase, divided by `--conns`, is what one connect + sync
and one close cost the server; the access-cache hits, misses and shared misses (waited
for a load under way) and presence passes of each phase are reported beside it.

    .venv/bin/python bench/connect_cost.py --tree base=/tmp/base --tree new=. --repeat 5
    .venv/bin/python bench/connect_cost.py --tree base=/tmp/base --tree new=. --callgrind

Trees run alternately, each in its own child with `PYTHONPATH=<tree>`; medians are
printed (the machine is shared: CPU time, not wall time). `--callgrind` runs each tree's
child twice under `valgrind --tool=callgrind` (`--conns` and twice that, concurrency 1,
`PYTHONHASHSEED=0`, rooms in proportion) and prints the difference of the instruction
counts per connect: the start-up cancels out, but the server's timers (version ticks,
keepalive sweeps, presence passes) run by wall time, which valgrind stretches many times
over: two rounds of the same tree differed by 30% on a loaded machine (4.35M and 3.01M
instructions per connect), so the process-CPU mode with repetitions is the one to trust
there. Every wait is bounded (`--timeout`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECRET = "connect-cost-secret-connect-cost-secret"
STEP1_EMPTY = b"\x00\x00\x01\x00"
STEP2_EMPTY = b"\x00\x01\x02\x00\x00"


async def _client(url: str, rooms: int, conns: int, concurrency: int, limit: float) -> None:
    """The client subprocess: phase lines on stdout, each phase started by a stdin line."""
    from websockets.asyncio.client import connect

    from syncd.auth import mint_token

    token = mint_token(SECRET, "bench", roles=["service"], ttl_seconds=36000)
    held: list[object] = []
    loop = asyncio.get_running_loop()

    async def open_one(room: int | str) -> object:
        ws = await connect(
            f"{url}/ws/notes/cost-{room}?token={token}",
            max_size=None,
            open_timeout=limit,
            compression=None,
        )
        await ws.send(STEP1_EMPTY)
        while True:
            frame = await asyncio.wait_for(ws.recv(), limit)
            if isinstance(frame, bytes) and frame[:2] == b"\x00\x00":
                await ws.send(STEP2_EMPTY)
            elif isinstance(frame, bytes) and frame[:2] == b"\x00\x01":
                return ws

    async def run(indexes: list[int], action: object) -> None:
        queue = list(reversed(indexes))

        async def worker() -> None:
            while queue:
                await action(queue.pop())  # type: ignore[operator]

        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(min(concurrency, len(indexes))))),
            limit * 10,
        )

    async def open_close(room: int) -> None:
        ws = await open_one(f"warm-{room}")
        await ws.close()  # type: ignore[attr-defined]

    async def open_held(room: int) -> None:
        held.append(await open_one(room))

    async def close_held(index: int) -> None:
        await held[index].close()  # type: ignore[attr-defined]

    # other rooms than the measured ones: the measured phase creates and loads its rooms,
    # as the `conns` scenario does (fresh rooms every run)
    await run(list(range(min(rooms, 10))), open_close)
    print(json.dumps({"phase": "warm"}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    await run([i % rooms for i in range(conns)], open_held)
    print(json.dumps({"phase": "open"}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    await run(list(range(len(held))), close_held)
    print(json.dumps({"phase": "closed"}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)


def _serve(args: argparse.Namespace) -> dict[str, float]:
    """The child: the server in this process, the client in another; CPU per phase."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="connect-cost-"))
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
    os.environ.pop("REDIS_URL", None)
    import uvicorn

    from syncd.cli import server_config
    from syncd.settings import Settings

    server = uvicorn.Server(server_config(Settings.from_env()))
    result: dict[str, float] = {}

    def connections() -> float:
        from syncd import metrics

        for family in metrics.WS_CONNECTIONS.collect():
            for sample in family.samples:
                return float(sample.value)
        return 0.0

    def counts() -> dict[str, float]:
        from syncd import metrics

        def sample(metric: object, **labels: str) -> float:
            for family in metric.collect():  # type: ignore[attr-defined]
                for s in family.samples:
                    if s.name.endswith("_total") and all(
                        s.labels.get(k) == v for k, v in labels.items()
                    ):
                        return float(s.value)
            return 0.0

        return {
            "presence_passes": sample(metrics.PRESENCE_PASSES),
            "access_hits": sample(metrics.CACHE_REQUESTS, cache="access", result="hit"),
            "access_misses": sample(metrics.CACHE_REQUESTS, cache="access", result="miss"),
            "access_shared": sample(metrics.CACHE_REQUESTS, cache="access", result="shared"),
        }

    def settle(expected: float) -> None:
        """Bounded: the server has seen every connection end (or the deadline passed)."""
        deadline = time.monotonic() + args.timeout
        while connections() != expected and time.monotonic() < deadline:
            time.sleep(0.01)

    def drive() -> None:
        deadline = time.monotonic() + args.timeout
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        client = subprocess.Popen(
            [
                *(sys.executable, __file__, "--client", f"ws://127.0.0.1:{port}"),
                *("--conns", str(args.conns), "--rooms", str(args.rooms)),
                *("--concurrency", str(args.concurrency), "--timeout", str(args.timeout)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdin is not None and client.stdout is not None
        try:
            client.stdout.readline()  # warm
            settle(0.0)
            for phase in ("open", "close"):
                before = counts()
                cpu = time.process_time()
                client.stdin.write("\n")
                client.stdin.flush()
                client.stdout.readline()
                settle(float(args.conns) if phase == "open" else 0.0)
                result[f"{phase}_us"] = (time.process_time() - cpu) * 1e6 / args.conns
                for key, value in counts().items():
                    result[f"{phase}_{key}"] = value - before[key]
            client.stdin.write("\n")
            client.stdin.flush()
            client.wait(timeout=args.timeout)
        finally:
            if client.poll() is None:
                client.kill()
            server.should_exit = True

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    server.run()
    thread.join(timeout=args.timeout)
    return result


def _child(tree: str, args: argparse.Namespace, conns: int, *, callgrind: bool) -> str:
    # rooms in proportion to connects: the difference of two callgrind runs then holds
    # room creations in the same share as one run
    rooms = max(1, round(args.rooms * conns / args.conns))
    command = [
        sys.executable,
        str(Path(tree).resolve() / "bench" / "connect_cost.py"),
        "--serve",
        *("--conns", str(conns), "--rooms", str(rooms)),
        *("--concurrency", str(1 if callgrind else args.concurrency)),
        *("--timeout", str(args.timeout * (20 if callgrind else 1))),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    if callgrind:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command]
        env["PYTHONHASHSEED"] = "0"
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=args.timeout * 60, check=True
    )
    return done.stdout if not callgrind else done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", default=[], help="LABEL=DIR (repeatable)")
    parser.add_argument("--conns", type=int, default=2000)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per bounded wait")
    parser.add_argument("--callgrind", action="store_true", help="instructions per connect")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        asyncio.run(_client(args.client, args.rooms, args.conns, args.concurrency, args.timeout))
        return 0
    if args.serve:
        print(json.dumps(_serve(args)), flush=True)
        return 0
    trees = dict(t.split("=", 1) for t in args.tree) or {"this": str(REPO)}
    if args.callgrind:
        for label, tree in trees.items():
            counts = []
            for conns in (args.conns, 2 * args.conns):
                found = re.search(r"Collected : (\d+)", _child(tree, args, conns, callgrind=True))
                if found is None:
                    raise SystemExit("no instruction count in valgrind's output")
                counts.append(int(found.group(1)))
            per = (counts[1] - counts[0]) / args.conns
            print(f"{label:10} instructions per connect+sync+close: {per:,.0f}", flush=True)
        return 0
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
    for _ in range(args.repeat):
        for label, tree in trees.items():
            out = _child(tree, args, args.conns, callgrind=False)
            runs[label].append(json.loads(out.strip().splitlines()[-1]))
            print(label, runs[label][-1], flush=True)
    print(f"{'tree':10} {'connect+sync us':>16} {'close us':>10}  (medians of {args.repeat})")
    for label, records in runs.items():
        opened = statistics.median(r["open_us"] for r in records)
        closed = statistics.median(r["close_us"] for r in records)
        print(f"{label:10} {opened:16.0f} {closed:10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
