"""An instance steps over its own stream entries without losing anyone else's (issue 15).

The append script tells each run's ids and the id right before it; the reader moves past a
run it has nothing else before, and drops a run it reads back anyway by its ids. What must
hold, on a real Redis with two real buses: every entry another instance (or any other
writer) put between this instance's runs is delivered, in stream order, and none of its
own; and every own entry is accounted for, stepped over or read back and dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from syncd.storage import Store
from tests.support.bus import store_with_notes, two_buses
from tests.support.polling import eventually

DOCS = ["o1", "o2", "o3"]
SENTINEL = "own-sentinel"
ROUNDS = 60


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    async with store_with_notes(postgres_url, [*DOCS, SENTINEL]) as opened:
        yield opened


async def test_entries_between_own_runs_are_all_delivered_and_own_ones_never(
    redis_server_url: str, redis_prefix: str, store: Store
) -> None:
    async with two_buses(
        redis_server_url, redis_prefix, store, [*DOCS, SENTINEL], names=("own-a", "own-b")
    ) as (redis, keys, (bus_a, on_a), (bus_b, on_b)):
        appended_by_a = 0

        async def a_round(round_: int) -> None:
            # every doc in one turn, runs of one to three entries
            nonlocal appended_by_a
            batch = {
                d: [f"a{round_}-{d}-{i}".encode() for i in range(1 + round_ % 3)] for d in DOCS
            }
            appended_by_a += sum(len(u) for u in batch.values())
            await asyncio.gather(*(bus_a.append(d, u) for d, u in batch.items()))

        async def b_round(round_: int) -> None:
            await bus_b.append(DOCS[round_ % len(DOCS)], [f"b{round_}".encode()])

        async def foreign(round_: int) -> None:
            # another writer between A's runs, straight into the stream
            await redis.xadd(
                keys.updates(DOCS[round_ % 2]), {b"o": b"own-c", b"u": b"c%d" % round_}
            )

        for round_ in range(ROUNDS):
            # concurrently: B's and C's entries land before, between or after A's runs
            await asyncio.gather(a_round(round_), b_round(round_), foreign(round_))
            if round_ % 4 == 0:
                await a_round(1000 + round_)  # back to back runs of A alone
        await bus_a.append(SENTINEL, [b"end-a"])
        await bus_b.append(SENTINEL, [b"end-b"])

        async def both_done() -> bool:
            return on_a[SENTINEL].updates == [b"end-b"] and on_b[SENTINEL].updates == [b"end-a"]

        await eventually(both_done, timeout=20, what="each sentinel read by the other instance")
        for doc_id in DOCS:
            entries = await redis.xrange(keys.updates(doc_id))
            others_of_a = [f[b"u"] for _, f in entries if f[b"o"] != b"own-a"]
            others_of_b = [f[b"u"] for _, f in entries if f[b"o"] != b"own-b"]
            assert on_a[doc_id].updates == others_of_a, doc_id
            assert on_b[doc_id].updates == others_of_b, doc_id
        reader = bus_a._reader
        assert reader.own_read + reader.own_skipped == appended_by_a + 1  # + the sentinel
