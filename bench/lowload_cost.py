"""Server cost of one keystroke at low load, end to end: `syncd serve` (SQLite, embedded) in
a child process, `--rooms` rooms of `--clients` real WebSocket clients (a client
subprocess, its CPU not counted), and keystrokes sent one at a time, each the next only
once every other client of its room got it. So, as in `bench/run.py`'s `fanout` scenario
(20 x 10 at 800 keystrokes/s), every keystroke wakes the server's loop on its own and is a
pass of its own: the read (uvicorn's protocol, frame parsing), the room's apply, the pass
callback, the durable append (one SQLite commit of one row), the fan-out writes, metrics
and the loop's turns and wake-ups, all counted.

    .venv/bin/python bench/lowload_cost.py --tree base=/tmp/base-main --tree new=. --callgrind
    .venv/bin/python bench/lowload_cost.py --tree base=/tmp/base-main --tree new=. --strace
    .venv/bin/python bench/lowload_cost.py --tree base=/tmp/base-main --tree new=. --repeat 3

`--callgrind` runs each tree's server child twice, with `--keystrokes` and twice that,
under `valgrind --tool=callgrind` (`PYTHONHASHSEED=0`) and divides the difference of the
instructions by the difference of the keystrokes, so start-up, connects and warm-up
cancel out; but the server's timers (presence passes, version ticks, the registry's
ticks, their SQL through SQLAlchemy's greenlets) run by wall time, which valgrind
stretches ~50x, so they land on the keystrokes: main measured 2,265,519 per keystroke
that way, while a profile diff of 300 vs 900 keystrokes put 416,490 on each, of which
~140k were task steps (py-spy names those timers there). Read it as an upper bound;
compare trees on a quiet machine.
`--strace` counts the server's syscalls by name (`strace -f`) made while the client
types (one run; its stdin reads left out): repeatable. The default: the child's CPU time
per keystroke over the typing, medians of `--repeat`, and the gc collections meanwhile.

Measured on main (d47a35f), 20 x 10, 400 keystrokes: 23.3 syscalls per keystroke:
1 epoll_pwait, 1 read, 9 write (the fan-out), and for the one-row SQLite commit of the
pass 6 fcntl (the WAL-index locks: read mark taken exclusively to move it, then shared,
the write lock, both released) and 6 pwrite64 (3 WAL frames, header and page each: the
table leaf, the (doc_id, seq) index leaf, and sqlite_sequence, which AUTOINCREMENT
rewrites on every insert). No gc collection in 2,000 keystrokes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
SECRET = "lowload-cost-secret-lowload-cost-secret"
STEP1_EMPTY = b"\x00\x00\x01\x00"
STEP2_EMPTY = b"\x00\x01\x02\x00\x00"
WRITERS = 4


async def _client(url: str, rooms: int, clients: int, keystrokes: int, limit: float) -> None:
    """The client subprocess: connect all, warm up, then one keystroke at a time."""
    from inbound_cost import _both_frames
    from websockets.asyncio.client import ClientConnection, connect

    from syncd.auth import mint_token

    token = mint_token(SECRET, "bench", roles=["service"], ttl_seconds=36000)
    loop = asyncio.get_running_loop()

    async def open_one(room: int) -> ClientConnection:
        ws = await connect(
            f"{url}/ws/notes/low-{room}?token={token}",
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

    members = [[await open_one(r) for _ in range(clients)] for r in range(rooms)]
    warm = 2 * rooms * WRITERS
    per_writer = (warm + keystrokes) // (rooms * WRITERS) + 2
    scripts = [
        [_both_frames(1000 + r * WRITERS + w, per_writer) for w in range(WRITERS)]
        for r in range(rooms)
    ]
    sent = [[0] * WRITERS for _ in range(rooms)]

    async def stroke(i: int) -> None:
        room, writer = i % rooms, (i // rooms) % WRITERS
        frame = scripts[room][writer][sent[room][writer]]
        sent[room][writer] += 1
        await members[room][writer].send(frame)
        for c, ws in enumerate(members[room]):
            if c != writer:
                await asyncio.wait_for(ws.recv(), limit)

    for i in range(warm):
        await stroke(i)
    print(json.dumps({"phase": "warm"}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    for i in range(warm, warm + keystrokes):
        await stroke(i)
    print(json.dumps({"phase": "typed"}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    for room in members:
        for ws in room:
            await ws.close()


def _serve(args: argparse.Namespace) -> dict[str, float]:
    """The child: the server in this process, the client in another; CPU per keystroke."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="lowload-cost-"))
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

    def drive() -> None:
        # the client is the parent's (so strace -f and valgrind count the server only):
        # the port out, then one stdin line when typing starts and one when it is done
        deadline = time.monotonic() + args.timeout
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            print(json.dumps({"port": port}), flush=True)
            sys.stdin.readline()
            cpu = time.process_time()
            before = [stats["collections"] for stats in gc.get_stats()]
            sys.stdin.readline()
            result["cpu_us_per_keystroke"] = (time.process_time() - cpu) * 1e6 / args.keystrokes
            for generation, stats in enumerate(gc.get_stats()):
                result[f"gc{generation}"] = stats["collections"] - before[generation]
        finally:
            server.should_exit = True

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    server.run()
    thread.join(timeout=args.timeout)
    return result


def _child(tree: str, args: argparse.Namespace, keystrokes: int, tool: str) -> str:
    """One server child of `tree` driven by a client process; the server's stdout, or
    what `tool` wrote of its counts."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve",
        *("--keystrokes", str(keystrokes)),
        *("--timeout", str(args.timeout * (20 if tool else 1))),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve()), "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "counts"
        if tool == "callgrind":
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command]
        elif tool == "strace":
            command = ["strace", "-f", "-o", str(out), *command]
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
        server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, **pipes)  # type: ignore[call-overload]
        assert server.stdin is not None and server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        client = subprocess.Popen(
            [
                *(sys.executable, __file__, "--client", f"ws://127.0.0.1:{port}"),
                *("--rooms", str(args.rooms), "--clients", str(args.clients)),
                *("--keystrokes", str(keystrokes)),
                *("--timeout", str(args.timeout * (20 if tool else 1))),
            ],
            env={**env, "PYTHONPATH": str(REPO)},
            **pipes,
        )
        assert client.stdin is not None and client.stdout is not None
        try:
            client.stdout.readline()  # connected and warm
            for line in (server.stdin, client.stdin):
                line.write("\n")
                line.flush()
            client.stdout.readline()  # typed
            server.stdin.write("\n")
            server.stdin.flush()
            stdout, stderr = server.communicate(timeout=args.timeout * 60)
            client.stdin.write("\n")
            client.stdin.flush()
            client.wait(timeout=args.timeout)
        finally:
            for proc in (client, server):
                if proc.poll() is None:
                    proc.kill()
        if server.returncode:
            raise SystemExit(f"server exited {server.returncode}: {stderr[-2000:]}")
        if tool == "callgrind":
            return stderr
        if tool == "strace":
            return out.read_text()
        return stdout


def _syscalls(trace: str, keystrokes: int) -> dict[str, float]:
    """Syscalls per keystroke by name, from `strace -f`'s trace of the server child: those
    made between the two stdin lines the child reads around the typing (its own reads of
    them left out), so start-up, connects and warm-up are not in it."""
    marks = [n for n, line in enumerate(trace.splitlines()) if 'read resumed>"\\n"' in line]
    lines = trace.splitlines()[marks[0] + 1 : marks[1]]
    reader = lines[0].split()[0] if lines and "read(0," in lines[0] else ""
    counts: dict[str, int] = {}
    for line in lines:
        fields = line.split(None, 1)
        if len(fields) < 2 or fields[0] == reader or fields[1].startswith(("<...", "+++", "---")):
            continue
        name = fields[1].split("(", 1)[0]
        counts[name] = counts.get(name, 0) + 1
    return {name: round(count / keystrokes, 2) for name, count in sorted(counts.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", default=[], help="LABEL=DIR (repeatable)")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--keystrokes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per bounded wait")
    parser.add_argument("--callgrind", action="store_true", help="instructions per keystroke")
    parser.add_argument("--strace", action="store_true", help="syscalls per keystroke")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        run = _client(args.client, args.rooms, args.clients, args.keystrokes, args.timeout)
        asyncio.run(run)
        return 0
    if args.serve:
        print(json.dumps(_serve(args)), flush=True)
        return 0
    trees = dict(t.split("=", 1) for t in args.tree) or {"this": str(REPO)}
    low, high = args.keystrokes, 2 * args.keystrokes
    for label, tree in trees.items():
        if args.callgrind:
            counts = []
            for keystrokes in (low, high):
                found = re.search(r"Collected : (\d+)", _child(tree, args, keystrokes, "callgrind"))
                if found is None:
                    raise SystemExit("no instruction count in valgrind's output")
                counts.append(int(found.group(1)))
            per = (counts[1] - counts[0]) / (high - low)
            print(f"{label:10} instructions per keystroke: {per:,.0f}", flush=True)
        elif args.strace:
            per = _syscalls(_child(tree, args, low, "strace"), low)
            total = round(sum(per.values()), 2)
            print(f"{label:10} syscalls per keystroke: {total} {json.dumps(per)}", flush=True)
        else:
            runs = [
                json.loads(_child(tree, args, low, "").strip().splitlines()[-1])
                for _ in range(args.repeat)
            ]
            cpus = [round(run.pop("cpu_us_per_keystroke"), 1) for run in runs]
            median = statistics.median(cpus)
            print(f"{label:10} CPU us per keystroke: {median:.1f} {cpus}; collections {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
