"""A reader taking another instance's notices reads the streams they name (issue 15).

Redis's XREAD costs per stream it names, entries or not, so a read of every loaded stream
at each of another instance's turns cost more than the turn's appends. Each notice names
the docs its turn appended to; what must hold, on a real Redis with two real buses: a
writer's reads, and a reader's that does not write (it took the notices instead of
blocking on every stream, each append waking it), name the streams the notices named and
deliver every entry in order; a notice naming no doc (an instance of an older version)
has every loaded stream read, and an entry no notice named is still read in order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from syncd.bus import appender as appender_module
from syncd.bus import reader as reader_module
from syncd.bus.keys import Keys
from syncd.storage import Store
from tests.support.bus import store_with_notes, two_buses
from tests.support.polling import eventually

DOCS = [f"named-{i}" for i in range(8)]
ROUNDS = 20


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    async with store_with_notes(postgres_url, DOCS) as opened:
        yield opened


@pytest.fixture(autouse=True)
def _notices_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # once polling, a reader stays so for the whole test and never reads every stream on
    # the timed fallback: its reads are the ones the notices asked for
    monkeypatch.setattr(reader_module, "POLL_WINDOW", 600.0)
    monkeypatch.setattr(reader_module, "POLL_FALLBACK", 600.0)
    # and stays subscribed (a new subscription's confirmation has every stream read)
    monkeypatch.setattr(reader_module, "NOTICE_HOLD", 600.0)
    # notices name the docs and carry no run (as for a run too big to carry, or from an
    # instance of an older version): the reads they ask for are what is tested here
    monkeypatch.setattr(appender_module, "NOTICE_RUN_BYTES", -1)


async def _true(value: bool) -> bool:
    return value


async def _subscribed(redis: Redis, keys: Keys, origin: str) -> bool:
    counts = await redis.execute_command("PUBSUB", "NUMSUB", keys.appended(origin))
    return int(counts[1]) == 1


async def test_a_writer_reads_only_the_streams_the_notices_name(
    redis_server_url: str, redis_prefix: str, store: Store
) -> None:
    async with two_buses(
        redis_server_url, redis_prefix, store, DOCS, names=("named-a", "named-b")
    ) as (redis, keys, (bus_a, on_a), (bus_b, _on_b)):
        reader = bus_a._reader
        assert isinstance(reader, reader_module.StreamReader)
        await bus_b.append(DOCS[0], [b"b-first"])  # A, blocked, reads it and learns of B
        await eventually(lambda: _true(on_a[DOCS[0]].updates == [b"b-first"]), what="A read B")
        for doc_id in DOCS:
            await bus_a.append(doc_id, [b"a-" + doc_id.encode()])  # A writes: it polls
        await eventually(lambda: _subscribed(redis, keys, "named-b"), what="A takes B's notices")
        reads, streams = reader.reads, reader.streams_read
        expected = {doc_id: list(on_a[doc_id].updates) for doc_id in DOCS}
        for round_ in range(ROUNDS):
            doc_id = DOCS[round_ % len(DOCS)]
            await bus_a.append(DOCS[(round_ + 1) % len(DOCS)], [b"a%d" % round_])
            await bus_b.append(doc_id, [b"b%d" % round_])
            expected[doc_id].append(b"b%d" % round_)
            await eventually(
                lambda doc_id=doc_id: _true(on_a[doc_id].updates == expected[doc_id]),
                what=f"B's entry {round_} read by A",
            )
        reads, streams = reader.reads - reads, reader.streams_read - streams
        assert reads >= ROUNDS
        # one stream per read, but for a read or two of all (the subscription's confirmation
        # may fall in here); every stream at every read was len(DOCS) per read
        assert streams <= reads + 2 * len(DOCS), (reads, streams)
        assert {doc_id: on_a[doc_id].updates for doc_id in DOCS} == expected


async def test_a_reader_that_does_not_write_polls_the_named_streams(
    redis_server_url: str, redis_prefix: str, store: Store
) -> None:
    async with two_buses(
        redis_server_url, redis_prefix, store, DOCS, names=("named-c", "named-d")
    ) as (redis, keys, (bus_a, _on_a), (bus_b, on_b)):
        reader = bus_b._reader
        assert isinstance(reader, reader_module.StreamReader)
        await bus_a.append(DOCS[0], [b"a-first"])  # B, blocked, reads it and learns of A
        await eventually(lambda: _true(on_b[DOCS[0]].updates == [b"a-first"]), what="B read A")
        await eventually(lambda: _subscribed(redis, keys, "named-c"), what="B takes A's notices")
        reads, streams = reader.reads, reader.streams_read
        expected = {doc_id: list(on_b[doc_id].updates) for doc_id in DOCS}
        for round_ in range(ROUNDS):
            doc_id = DOCS[round_ % len(DOCS)]
            await bus_a.append(doc_id, [b"a%d-0" % round_, b"a%d-1" % round_])
            expected[doc_id] += [b"a%d-0" % round_, b"a%d-1" % round_]
            await eventually(
                lambda doc_id=doc_id: _true(on_b[doc_id].updates == expected[doc_id]),
                what=f"A's entries {round_} read by B",
            )
        reads, streams = reader.reads - reads, reader.streams_read - streams
        assert reads >= ROUNDS - 1  # the first round's may have come by the blocked read
        assert streams <= reads + 2 * len(DOCS), (reads, streams)
        assert {doc_id: on_b[doc_id].updates for doc_id in DOCS} == expected
        assert bus_b._reader.own_read == 0


async def test_a_notice_naming_no_doc_has_every_stream_read(
    redis_server_url: str, redis_prefix: str, store: Store
) -> None:
    async with two_buses(
        redis_server_url, redis_prefix, store, DOCS, names=("named-e", "named-f")
    ) as (redis, keys, (bus_a, on_a), (bus_b, _on_b)):
        await bus_b.append(DOCS[0], [b"b-first"])
        await eventually(lambda: _true(on_a[DOCS[0]].updates == [b"b-first"]), what="A read B")
        await bus_a.append(DOCS[1], [b"a-first"])
        await eventually(lambda: _subscribed(redis, keys, "named-f"), what="A takes B's notices")
        await bus_b.append(DOCS[2], [b"b-second"])  # a notice since A subscribed
        await eventually(lambda: _true(on_a[DOCS[2]].updates == [b"b-second"]), what="A read B")
        # what an instance of an older version does: an entry, and a notice naming nothing
        await redis.xadd(keys.updates(DOCS[5]), {b"o": b"named-f", b"u": b"old"})
        await redis.publish(keys.appended("named-f"), b"")
        await eventually(lambda: _true(on_a[DOCS[5]].updates == [b"old"]), what="A read all")
        # an entry no notice named is read, in order, by the next read naming its stream
        # (or by a read of every stream one of the notices above may still ask for)
        await redis.xadd(keys.updates(DOCS[6]), {b"o": b"named-f", b"u": b"unnamed"})
        await bus_b.append(DOCS[7], [b"b-third"])
        await eventually(lambda: _true(on_a[DOCS[7]].updates == [b"b-third"]), what="A read B")
        await bus_b.append(DOCS[6], [b"b-fourth"])
        await eventually(
            lambda: _true(on_a[DOCS[6]].updates == [b"unnamed", b"b-fourth"]), what="A read 6"
        )


async def test_a_full_read_has_its_stream_read_again_without_a_notice(
    redis_server_url: str, redis_prefix: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read returns at most READ_COUNT entries of a stream; the rest was left to the next
    # notice or to POLL_FALLBACK (600 s here): a burst of more than that from one turn
    # waited, not delivered, until then.
    monkeypatch.setattr(reader_module, "READ_COUNT", 4)
    async with two_buses(
        redis_server_url, redis_prefix, store, DOCS, names=("named-g", "named-h")
    ) as (redis, keys, (bus_a, on_a), (bus_b, _on_b)):
        await bus_b.append(DOCS[0], [b"b-first"])
        await eventually(lambda: _true(on_a[DOCS[0]].updates == [b"b-first"]), what="A read B")
        await bus_a.append(DOCS[1], [b"a-first"])  # A writes: it polls
        await eventually(lambda: _subscribed(redis, keys, "named-h"), what="A takes B's notices")
        await bus_b.append(DOCS[2], [b"b-second"])  # a notice since A subscribed
        await eventually(lambda: _true(on_a[DOCS[2]].updates == [b"b-second"]), what="A read B")
        burst = [b"burst-%d" % i for i in range(11)]  # one notice, three reads' worth
        await bus_b.append(DOCS[3], burst)
        await eventually(
            lambda: _true(on_a[DOCS[3]].updates == burst),
            what="A read the whole burst",
            timeout=5.0,
        )
