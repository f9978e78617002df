"""The stream reader's fast paths (issue 15) deliver exactly what they did before.

Two `RedisBus` instances on one real Redis and Postgres, used directly. Appends of several
rooms in one turn go to Redis together (one script on a single Redis); the reader takes
XREAD replies raw and skips its own entries by their origin field. What must hold: each
instance gets every other instance's updates, in stream order, and none of its own; an
entry laid out differently (fields in another order, written by some other writer) is
still read by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from syncd.bus.keys import Keys
from syncd.storage import Store
from tests.support.bus import open_bus, store_with_notes, two_buses
from tests.support.polling import eventually

DOCS = ["r1", "r2", "r3"]
SENTINEL = "sentinel"


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    async with store_with_notes(postgres_url, [*DOCS, SENTINEL]) as opened:
        yield opened


async def test_each_instance_reads_the_others_updates_in_order_and_never_its_own(
    redis_server_url: str, redis_prefix: str, store: Store
) -> None:
    async with two_buses(redis_server_url, redis_prefix, store, [*DOCS, SENTINEL]) as (
        redis,
        keys,
        (bus_a, on_a),
        (bus_b, on_b),
    ):
        expected_at_b: dict[str, list[bytes]] = {doc_id: [] for doc_id in DOCS}
        expected_at_a: dict[str, list[bytes]] = {doc_id: [] for doc_id in DOCS}
        for round_ in range(20):
            # Every room of A appends in the same turn (one call to Redis for all of them),
            # some with more than one update per append.
            batch = {
                doc_id: [f"a{round_}-{doc_id}-{i}".encode() for i in range(1 + round_ % 3)]
                for doc_id in DOCS
            }
            await asyncio.gather(*(bus_a.append(d, u) for d, u in batch.items()))
            for doc_id, updates in batch.items():
                expected_at_b[doc_id] += updates
            update = f"b{round_}".encode()
            await bus_b.append(DOCS[round_ % len(DOCS)], [update])
            expected_at_a[DOCS[round_ % len(DOCS)]].append(update)
        # Written by some other writer, fields in the other order: read by name. One claims
        # A's origin: A skips it, B takes it.
        other = keys.updates(DOCS[0])
        await redis.xadd(other, {b"u": b"foreign-u-first", b"o": b"bus-c"})
        await redis.xadd(other, {b"u": b"a-u-first", b"o": b"bus-a"})
        expected_at_a[DOCS[0]].append(b"foreign-u-first")
        expected_at_b[DOCS[0]] += [b"foreign-u-first", b"a-u-first"]
        # a sentinel from each side: once it arrived, everything before it was read
        await bus_a.append(SENTINEL, [b"end-a"])
        await bus_b.append(SENTINEL, [b"end-b"])

        async def both_done() -> bool:
            return on_a[SENTINEL].updates == [b"end-b"] and on_b[SENTINEL].updates == [b"end-a"]

        await eventually(both_done, timeout=15, what="each sentinel read by the other instance")
        for doc_id in DOCS:
            assert on_b[doc_id].updates == expected_at_b[doc_id], doc_id
            assert on_a[doc_id].updates == expected_at_a[doc_id], doc_id
        # and each stream holds the entries as `append` writes them: origin first, then update
        entries = await redis.xrange(keys.updates(DOCS[1]))
        assert list(entries[0][1]) == [b"o", b"u"]
        assert entries[0][1][b"o"] == b"bus-a"


async def test_a_reader_idle_longer_than_its_block_keeps_reading_without_errors(
    redis_server_url: str, redis_prefix: str, store: Store
) -> None:
    """A blocked XREAD that ends with nothing to read (BLOCK 5000) is not a failure: the
    reader's connection has no socket timeout of its own that could fire first (redis-py's
    default of 5 s did, and every idle reader then backed off for seconds)."""
    keys = Keys(redis_prefix.rstrip(":"))
    async with (
        open_bus(redis_server_url, store, "bus-a", keys, [*DOCS, SENTINEL]) as (bus_a, _),
        open_bus(redis_server_url, store, "bus-b", keys, [*DOCS, SENTINEL]) as (bus_b, on_b),
    ):
        # Idle for longer than one whole BLOCK: the condition under test, not a wait for
        # something to happen.
        await asyncio.sleep(6.5)
        assert (bus_a._reader.errors, bus_b._reader.errors) == (0, 0)
        await bus_a.append(DOCS[0], [b"after-idle"])

        async def arrived() -> bool:
            return on_b[DOCS[0]].updates == [b"after-idle"]

        await eventually(arrived, timeout=2, what="an update appended after an idle BLOCK")
        assert (bus_a._reader.errors, bus_b._reader.errors) == (0, 0)
