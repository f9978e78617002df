"""A writing instance's reader reads when another instance says it appended (issue 15).

While its own appends are recent the reader does not block (its own appends would wake
it) and, rather than polling every loaded stream each millisecond, reads when an instance
whose entries it has read before says (on its own channel) that it appended. What must
hold, on a real Redis with two real buses: the writer's own appends alone cause no reads;
another instance's entry reaches it by the notice alone (the timed fallback is pushed out
of reach here); and across lost connections (the notices' and the reads') no entry of the
other instance is skipped or reordered, and none of its own is delivered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from syncd.bus import reader as reader_module
from syncd.storage import Store
from tests.support.bus import store_with_notes, two_buses
from tests.support.polling import eventually

DOC = "notice-doc"
ROUNDS = 40


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    async with store_with_notes(postgres_url, [DOC]) as opened:
        yield opened


@pytest.fixture(autouse=True)
def _notices_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # a writer stays in its poll window for the whole test and never reads on the timed
    # fallback: whatever of the other instance's reaches it came by a notice (or by the
    # read a lost subscription forces)
    monkeypatch.setattr(reader_module, "POLL_WINDOW", 600.0)
    monkeypatch.setattr(reader_module, "POLL_FALLBACK", 600.0)


async def test_own_appends_cause_no_reads_and_a_notice_brings_the_others_entry(
    redis_server_url: str, redis_prefix: str, store: Store
) -> None:
    async with two_buses(
        redis_server_url, redis_prefix, store, [DOC], names=("note-a", "note-b")
    ) as (_redis, _keys, (bus_a, on_a), (bus_b, _on_b)):
        reader = bus_a._reader
        assert isinstance(reader, reader_module.StreamReader)
        # A, not writing yet, blocks: it reads B's entry at once, and learns of B
        await bus_b.append(DOC, [b"b-first"])
        await eventually(
            lambda: _async(on_a[DOC].updates == [b"b-first"]), what="B's first entry read by A"
        )
        await bus_a.append(DOC, [b"a-first"])  # A's poll window starts
        await eventually(
            lambda: _async(reader.own_read + reader.own_skipped == 1),
            what="A past its first own entry",
        )
        reads = reader.reads
        for i in range(30):
            await bus_a.append(DOC, [b"a%d" % i])
        # the old reader polled after every one of these; at most the subscription's
        # confirmation (a read, in case notices were missed before it) may fall in here
        assert reader.reads - reads <= 2
        await bus_b.append(DOC, [b"from-b"])
        await eventually(
            lambda: _async(on_a[DOC].updates == [b"b-first", b"from-b"]),
            what="B's entry read by A",
        )


async def test_no_entry_is_skipped_across_lost_reader_and_notice_connections(
    redis_server_url: str, redis_prefix: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with two_buses(
        redis_server_url, redis_prefix, store, [DOC], names=("note-c", "note-d")
    ) as (redis, keys, (bus_a, on_a), (bus_b, on_b)):
        reader = bus_a._reader
        assert isinstance(reader, reader_module.StreamReader)
        # A, not writing yet, blocks: it reads B's first entry at once, and learns of B
        await bus_b.append(DOC, [b"b-first"])
        await eventually(
            lambda: _async(on_a[DOC].updates == [b"b-first"]), what="B's first entry read by A"
        )
        # B, writing since, learns of A by the timed fallback (not by whether its read of
        # its own first entry came before or after the append's reply: a race)
        monkeypatch.setattr(reader_module, "POLL_FALLBACK", 0.05)
        await bus_a.append(DOC, [b"a-first"])
        await eventually(
            lambda: _async(on_b[DOC].updates == [b"a-first"]), what="A's first entry read by B"
        )
        monkeypatch.setattr(reader_module, "POLL_FALLBACK", 600.0)
        for round_ in range(ROUNDS):
            await bus_a.append(DOC, [b"a%d-0" % round_, b"a%d-1" % round_])
            await bus_b.append(DOC, [b"b%d" % round_])
            if round_ in (10, 25):
                # both of A's reader connections dropped mid-traffic (B's notices too)
                await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
                assert reader._conn_id is not None
                await redis.execute_command("CLIENT", "KILL", "ID", reader._conn_id)
        expected = [b"b-first", *(b"b%d" % round_ for round_ in range(ROUNDS))]
        await eventually(
            lambda: _async(len(on_a[DOC].updates) >= len(expected)),
            timeout=30,
            what="every entry of B read by A",
        )
        assert on_a[DOC].updates == expected
        entries = await redis.xrange(keys.updates(DOC))
        from_a = [b"a-first", *(b"a%d-%d" % (r, i) for r in range(ROUNDS) for i in range(2))]
        assert [f[b"u"] for _, f in entries if f[b"o"] == b"note-c"] == from_a
        await eventually(
            lambda: _async(len(on_b[DOC].updates) >= len(from_a)), what="A's entries read by B"
        )
        assert on_b[DOC].updates == from_a


async def _async(value: bool) -> bool:
    return value


async def test_a_writer_subscribes_to_an_instance_it_first_meets_while_writing(
    redis_server_url: str, redis_prefix: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with two_buses(
        redis_server_url, redis_prefix, store, [DOC], names=("note-e", "note-f")
    ) as (redis, keys, (bus_a, on_a), (bus_b, _on_b)):
        reader = bus_a._reader
        assert isinstance(reader, reader_module.StreamReader)
        channel_of_b = keys.appended("note-f")
        await bus_a.append(DOC, [b"a-first"])  # A writes, not knowing of B
        # B's first entry reaches the writing A by the timed fallback, and A subscribes
        monkeypatch.setattr(reader_module, "POLL_FALLBACK", 0.05)
        await bus_b.append(DOC, [b"b-first"])
        await eventually(
            lambda: _async(on_a[DOC].updates == [b"b-first"]), what="B's first entry read by A"
        )
        monkeypatch.setattr(reader_module, "POLL_FALLBACK", 600.0)

        async def subscribed() -> bool:
            await bus_a.append(DOC, [b"a-again"])  # A keeps writing (and subscribed)
            counts = await redis.execute_command("PUBSUB", "NUMSUB", channel_of_b)
            return int(counts[1]) == 1

        await eventually(subscribed, what="A subscribed to B's notices")
        await bus_b.append(DOC, [b"b-second"])
        await eventually(
            lambda: _async(on_a[DOC].updates == [b"b-first", b"b-second"]),
            what="B's second entry read by A",
        )
