"""Redis round trips and CPU per append of the scaled bus, with appends made as the pass
scheduler makes them: one `append_group` call (own task) per turn, Poisson arrivals.

`bus_bench.py` appends through `RedisBus.append` (every room of a turn in one call); a
server's turns come one room or two at a time, each its own `append_group` call, and on a
busy instance they overlap the append before them. Two buses (A appends, B has the docs
loaded and reads them) in this process; CPU is this process's (`process_time`), so two
trees compare on a loaded machine:

    PYTHONPATH=/tmp/base-main .venv/bin/python bench/append_rounds.py --rate 800
    .venv/bin/python bench/append_rounds.py --rate 800
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from collections.abc import Sequence

from redis.asyncio import Redis

from syncd.bus.keys import Keys
from syncd.bus.redis import RedisBus


class _Room:
    def apply_remote(self, updates: Sequence[bytes]) -> None:
        pass

    def apply_remote_awareness(self, payload: bytes) -> None:
        pass


class _NoSnapshots:
    async def load_snapshot(self, doc_id: str) -> None:
        return None


async def _run(args: argparse.Namespace) -> str:
    prefix = f"rounds{os.getpid()}"
    keys = Keys(prefix)
    redis = Redis.from_url(args.redis_url)
    docs = [f"d{i}" for i in range(args.rooms)]
    store: object = _NoSnapshots()
    a = RedisBus(redis, args.redis_url, store, "A", keys=keys)  # type: ignore[arg-type]
    b = RedisBus(redis, args.redis_url, store, "B", keys=keys)  # type: ignore[arg-type]
    await a.__aenter__()
    await b.__aenter__()
    rounds = 0
    append = a._appender.append

    async def counted(batch: Sequence[tuple[str, Sequence[bytes]]], now: float) -> object:
        nonlocal rounds
        rounds += 1
        return await append(batch, now)

    a._appender.append = counted  # type: ignore[method-assign,assignment]
    for bus in (a, b):
        for doc in docs:
            bus.subscribe(doc, _Room())
            await bus.load(doc)
    rng = random.Random(1)
    update = os.urandom(40)
    tasks: set[asyncio.Task[object]] = set()
    made = 0
    cpu = time.process_time()
    start = due = time.monotonic()
    while time.monotonic() - start < args.seconds:
        due += rng.expovariate(args.rate)
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(a.append_group([(rng.choice(docs), [update])]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        made += 1
    await asyncio.gather(*tasks)
    cpu = time.process_time() - cpu
    reads = [getattr(bus._reader, "reads", 0) / made for bus in (a, b)]
    await b.__aexit__(None, None, None)
    await a.__aexit__(None, None, None)
    async for key in redis.scan_iter(match=f"*{prefix}*"):
        await redis.delete(key)
    await redis.aclose()
    return (
        f"appends {made}  round trips/append {rounds / made:.2f}  "
        f"CPU us/append (A + B) {cpu / made * 1e6:.1f}  "
        f"XREADs/append A {reads[0]:.2f} B {reads[1]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=800.0, help="appends per second")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    print(asyncio.run(_run(parser.parse_args())))


if __name__ == "__main__":
    main()
