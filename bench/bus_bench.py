"""CPU per append of the scaled bus, in process: what `RedisBus` costs syncd and Redis.

`run.py` measures whole servers on a shared, loaded machine; this isolates the bus (the
appends of a turn's room flushes, the stream reader reading them back) and counts CPU time,
not wall time, so two source trees can be compared in one run even when other work loads
the machine. Rooms are stand-ins that only count what the reader hands them; the store is
empty (every doc starts with no snapshot).

    .venv/bin/python bench/bus_bench.py                      # this tree
    .venv/bin/python bench/bus_bench.py --tree base=/tmp/base --tree new=.   # alternate

Modes: `self` (one instance appends and reads its own streams: a one-instance scaled
deployment), `cross` (instance A appends, B has the same docs loaded and applies them),
`both` (A and B both append to every doc, as two instances whose clients edit the same
rooms do, and each applies the other's; per append means per append of either) and
`append` (appends only, no doc loaded, so nothing is read back: `self` minus `append` is
what reading back its own entries costs an instance). "own read back" is the share of the
writer's own entries its reader read back from Redis (1.00 for a tree that cannot tell:
it reads every one back).
It starts its own `redis-server` (appendonly, as deployments run it) so Redis's CPU is its
own: `used_cpu_user + used_cpu_sys` from INFO, before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class _Room:
    """Counts the updates the reader delivers; applies nothing."""

    def __init__(self) -> None:
        self.received = 0

    def apply_remote(self, updates: Sequence[bytes]) -> None:
        self.received += len(updates)

    def apply_remote_awareness(self, payload: bytes) -> None:
        pass


class _NoSnapshots:
    async def load_snapshot(self, doc_id: str) -> None:
        return None


async def _child(args: argparse.Namespace) -> dict[str, float]:
    from redis.asyncio import Redis

    from syncd.bus.keys import Keys
    from syncd.bus.redis import RedisBus

    prefix = f"bb{os.getpid()}"
    keys = Keys(prefix)
    redis = Redis.from_url(args.redis_url)
    store: object = _NoSnapshots()
    docs = [f"doc{i}" for i in range(args.rooms)]
    update = os.urandom(args.size)
    buses = [RedisBus(redis, args.redis_url, store, "A", keys=keys)]  # type: ignore[arg-type]
    if args.mode in ("cross", "both"):
        buses.append(RedisBus(redis, args.redis_url, store, "B", keys=keys))  # type: ignore[arg-type]
    rooms: list[dict[str, _Room]] = [{doc: _Room() for doc in docs} for _ in buses]
    for bus in buses:
        await bus.__aenter__()
    for bus, mine in zip(buses, rooms, strict=True):
        for doc in docs if args.mode != "append" else []:
            bus.subscribe(doc, mine[doc])
            await bus.load(doc)
    writer = buses[0]
    writers = buses if args.mode == "both" else [writer]

    async def info_cpu() -> float:
        info = await redis.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    pace = random.Random(1)

    async def room_loop(doc: str, writer: RedisBus) -> None:
        for _ in range(args.appends):
            await writer.append(doc, [update])
            # with --interval, rooms append at their own times, a few per turn (as a
            # server's rooms flush), rather than all of them in every turn
            await asyncio.sleep(pace.uniform(0, 2 * args.interval) if args.interval else 0)

    async def xreads() -> tuple[int, int]:
        stats = (await redis.info("commandstats")).get("cmdstat_xread", {})
        return int(stats.get("calls", 0)), int(stats.get("usec", 0))

    redis_cpu = await info_cpu()
    reads = await xreads()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(room_loop(doc, bus) for doc in docs for bus in writers))
    # every instance has read the streams up to their ends (its own entries included)
    ends = {doc: (await redis.xrevrange(keys.updates(doc), count=1))[0][0] for doc in docs}
    deadline = time.monotonic() + 10
    while args.mode != "append" and any(bus._reader.positions() != ends for bus in buses):
        if time.monotonic() > deadline:
            state = [
                (bus.instance_id, bus._reader.positions(), vars(bus._reader).get("_blocked"))
                for bus in buses
            ]
            raise SystemExit(f"the readers did not catch up within 10 s: {ends} {state}")
        await asyncio.sleep(0.01)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    redis_cpu = await info_cpu() - redis_cpu
    (reads_end, usec_end), (reads, usec) = await xreads(), reads
    reads, usec = reads_end - reads, usec_end - usec
    total = args.rooms * args.appends * len(writers)
    # own entries the writer's reader read back; a tree without the counter reads them all
    read_back = (
        sum(getattr(w._reader, "own_read", total / len(writers)) for w in writers)
        if args.mode != "append"
        else 0
    )
    # streams the readers' XREADs named, per XREAD they sent (0 for a tree that does not
    # count them; Redis's call count lags behind a blocked read's)
    named = sum(getattr(bus._reader, "streams_read", 0) for bus in buses)
    sent = sum(getattr(bus._reader, "reads", 0) for bus in buses)
    if args.mode == "cross":
        got = sum(room.received for room in rooms[1].values())
        if got != total:
            raise SystemExit(f"B received {got} of {total} updates")
    if args.mode == "both":
        for bus, mine in zip(buses, rooms, strict=True):
            got = sum(room.received for room in mine.values())
            if got != total // 2:
                raise SystemExit(f"{bus.instance_id} received {got} of {total // 2} updates")
    for bus in buses:
        await bus.__aexit__(None, None, None)
    await redis.delete(*(keys.updates(doc) for doc in docs), keys.doc_index)
    await redis.aclose()
    return {
        "appends": total,
        "syncd_us_per_append": cpu / total * 1e6,
        "redis_us_per_append": redis_cpu / total * 1e6,
        "appends_per_s_wall": total / wall,
        "own_read_back_per_append": read_back / total,
        "xreads_per_append": reads / total,
        "xread_redis_us_per_append": usec / total,
        "streams_per_xread": named / sent if sent else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", default=[], help="LABEL=DIR (repeatable)")
    parser.add_argument("--mode", default="append,self,cross")
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--appends", type=int, default=200, help="per room")
    parser.add_argument("--size", type=int, default=40, help="bytes per update")
    parser.add_argument(
        "--interval", type=float, default=0.0, help="mean seconds between a room's appends"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", default="")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args))))
        return 0
    sys.path.insert(0, str(REPO))
    from tests.support.services import start_redis

    trees = dict(t.split("=", 1) for t in args.tree) or {"this": str(REPO)}
    redis = start_redis(Path(os.environ.get("TMPDIR", "/tmp")))
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    try:
        for _ in range(args.repeat):
            for mode in args.mode.split(","):
                for label, tree in trees.items():
                    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
                    out = subprocess.run(
                        [
                            sys.executable,
                            str(Path(__file__).resolve()),
                            "--child",
                            "--mode",
                            mode,
                            "--rooms",
                            str(args.rooms),
                            "--appends",
                            str(args.appends),
                            "--size",
                            str(args.size),
                            "--interval",
                            str(args.interval),
                            "--redis-url",
                            redis.url,
                        ],
                        env=env,
                        cwd=tree,
                        capture_output=True,
                        text=True,
                        timeout=300,
                        check=True,
                    )
                    record = json.loads(out.stdout.strip().splitlines()[-1])
                    results.setdefault(mode, {}).setdefault(label, []).append(record)
    finally:
        redis.close()
    head = ("mode", "tree", "syncd us/append", "redis us/append", "appends/s", "own read back")
    print(
        f"{head[0]:6} {head[1]:10} {head[2]:>16} {head[3]:>16} {head[4]:>10} {head[5]:>14}"
        f" {'XREADs/append':>14} {'XREAD us/app':>12} {'streams/XREAD':>13}"
    )
    for mode, by_tree in results.items():
        for label, records in by_tree.items():

            def med(key: str, records: list[dict[str, float]] = records) -> float:
                return sorted(r[key] for r in records)[len(records) // 2]

            print(
                f"{mode:6} {label:10} {med('syncd_us_per_append'):16.1f} "
                f"{med('redis_us_per_append'):16.1f} {med('appends_per_s_wall'):10.0f} "
                f"{med('own_read_back_per_append'):14.2f} {med('xreads_per_append'):14.3f}"
                f" {med('xread_redis_us_per_append'):12.1f}"
                f" {med('streams_per_xread'):13.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
