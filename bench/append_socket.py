"""CPU per sequential single-doc append (`StreamAppender`, one doc per turn, as a server's
turns at moderate load are) over loopback TCP and over a unix socket to the same Redis:
the appending process's CPU time (user, system) and Redis's (INFO), runs alternated.

    .venv/bin/python bench/append_socket.py --appends 10000 --repeat 10
    PYTHONPATH=/tmp/base-main .venv/bin/python bench/append_socket.py --tcp-only

It starts its own `redis-server` (appendonly, listening on both). A tree whose appender
cannot use a unix URL falls back to redis-py's connection there (`syncd.bus.link`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


async def _child(url: str, control: str, appends: int) -> str:
    from redis.asyncio import Redis

    from syncd.bus.appender import StreamAppender
    from syncd.bus.keys import Keys

    redis = Redis.from_url(control)
    keys = Keys(f"as{os.getpid()}")
    appender = StreamAppender(redis, url, keys, b"A")
    update = os.urandom(40)

    async def redis_cpu() -> float:
        info = await redis.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    for i in range(200):  # warm: connections, packed heads
        await appender.append([(f"d{i % 20}", [update])], time.time())
    r0, t0 = await redis_cpu(), os.times()
    for i in range(appends):
        await appender.append([(f"d{i % 20}", [update])], time.time())
    t1, r1 = os.times(), await redis_cpu()
    await appender.aclose()
    await redis.delete(*(keys.updates(f"d{i}") for i in range(20)), keys.doc_index)
    await redis.aclose()
    user, system = (t1.user - t0.user) / appends * 1e6, (t1.system - t0.system) / appends * 1e6
    return f"{user} {system} {(r1 - r0) / appends * 1e6}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tcp-only", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(asyncio.run(_child(args.child[0], args.child[1], args.appends)))
        return 0
    sys.path.insert(0, str(REPO))
    from tests.support.services import start_redis

    redis = start_redis(Path(os.environ.get("TMPDIR", "/tmp")), unix_socket=True)
    assert redis.unix_url is not None
    urls = {"tcp": redis.url, **({} if args.tcp_only else {"unix": redis.unix_url})}
    runs: dict[str, list[list[float]]] = {name: [] for name in urls}
    command = [sys.executable, __file__, "--appends", str(args.appends), "--child"]
    try:
        for _ in range(args.repeat):
            for name, url in urls.items():
                out = subprocess.run(
                    [*command, url, redis.url],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=600,
                )
                runs[name].append([float(x) for x in out.stdout.split()])
    finally:
        redis.close()
    print(f"{'socket':6} {'user us':>8} {'sys us':>8} {'redis us':>9} {'all us':>8}  (medians)")
    for name, records in runs.items():
        user, system, server = (statistics.median(column) for column in zip(*records, strict=True))
        total = statistics.median(sum(record) for record in records)
        print(f"{name:6} {user:8.1f} {system:8.1f} {server:9.1f} {total:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
