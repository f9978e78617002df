"""A notice carries its turn's small runs, and a reader at the id before one applies it
with no XREAD (issue 15: the XREAD round trip per notice was ~19% of a reading instance's
samples).

What must hold, on a Redis of the test's own (its command counts are the test's) with two
real buses: another instance's updates reach a room by the notice alone, no XREAD sent;
an entry no notice carried (a gap) has the stream read from the room's position, nothing
lost and nothing reordered; a run too big to carry is read and the next small one comes by
notice again; a notice seen twice, or a read in flight while a notice moved the room on,
applies nothing twice; a notice for a doc not loaded here, or a malformed one, is ignored.
And of the appender: a notice states the run as the stream holds it (the id before, the
ids), names the docs it carries no run for, and one sent alone arrives whether or not
Redis takes `CLIENT REPLY OFF` for its connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import hiredis
import pytest
from redis.asyncio import Redis

from syncd.bus import appender as appender_module
from syncd.bus import reader as reader_module
from syncd.bus.keys import Keys
from syncd.bus.reader import StreamReader
from syncd.storage import Store
from tests.support.bus import Recorder, store_with_notes, two_buses
from tests.support.polling import eventually
from tests.support.services import start_redis

DOCS = ["runs-0", "runs-1"]
ROUNDS = 20


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    async with store_with_notes(postgres_url, DOCS) as opened:
        yield opened


@pytest.fixture
def own_redis_url(tmp_path: Path) -> AsyncIterator[str]:
    server = start_redis(tmp_path, appendonly=False)
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(autouse=True)
def _notices_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # no timed fallback read within the test, and the notices stay subscribed: every read
    # counted is one a notice asked for
    monkeypatch.setattr(reader_module, "POLL_WINDOW", 600.0)
    monkeypatch.setattr(reader_module, "POLL_FALLBACK", 600.0)
    monkeypatch.setattr(reader_module, "NOTICE_HOLD", 600.0)


async def _true(value: bool) -> bool:
    return value


async def _xreads(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_xread", {}).get("calls", 0))


async def _steady(bus_a: object, reader: StreamReader, on_b: dict[str, Recorder]) -> None:
    """Until A's appends to every doc reach B with no read (B subscribed to A's notices,
    past the read its subscription's confirmation asks for, polling, and every stream with
    an entry before the next run: a doc's first run has none, and is read)."""
    count = 0

    async def one_by_notice() -> bool:
        nonlocal count
        count += 1
        update = b"warm-%d" % count
        reads = reader.reads
        for doc_id in DOCS:
            await bus_a.append(doc_id, [update])  # type: ignore[attr-defined]
            await eventually(
                lambda doc_id=doc_id: _true(on_b[doc_id].updates[-1:] == [update]), what="warm"
            )
        return reader.reads == reads and not reader._foreign.is_set()

    await eventually(one_by_notice, what="A's appends reach B by notice alone")


async def test_updates_come_by_the_notice_with_no_xread(own_redis_url: str, store: Store) -> None:
    async with two_buses(own_redis_url, "nr:", store, DOCS, names=("nr-a", "nr-b")) as (
        redis,
        _keys,
        (bus_a, _on_a),
        (bus_b, on_b),
    ):
        reader = bus_b._reader
        assert isinstance(reader, StreamReader)
        await _steady(bus_a, reader, on_b)
        expected = {doc_id: list(on_b[doc_id].updates) for doc_id in DOCS}
        await redis.config_resetstat()
        reads, noticed = reader.reads, reader.noticed
        for round_ in range(ROUNDS):
            doc_id = DOCS[round_ % len(DOCS)]
            run = [b"r%d-0" % round_, b"r%d-1" % round_]
            expected[doc_id] += run
            await bus_a.append(doc_id, run)
            await eventually(
                lambda doc_id=doc_id: _true(on_b[doc_id].updates == expected[doc_id]),
                what=f"round {round_} at B",
            )
        # before: one XREAD by B per notice (each naming the stream it read)
        assert reader.reads == reads
        assert await _xreads(redis) == 0
        assert reader.noticed - noticed == 2 * ROUNDS
        assert {doc_id: on_b[doc_id].updates for doc_id in DOCS} == expected


async def test_a_gap_is_read_from_the_rooms_position_and_loses_nothing(
    own_redis_url: str, store: Store
) -> None:
    async with two_buses(own_redis_url, "nr:", store, DOCS, names=("nr-c", "nr-d")) as (
        redis,
        keys,
        (bus_a, _on_a),
        (bus_b, on_b),
    ):
        reader = bus_b._reader
        assert isinstance(reader, StreamReader)
        await _steady(bus_a, reader, on_b)
        doc = DOCS[0]
        before = list(on_b[doc].updates)
        # an entry no notice carries (another writer's XADD, an older version's, a notice
        # lost): A's next run follows it, so B's room is not at the id before that run
        await redis.xadd(keys.updates(doc), {b"o": b"nr-x", b"u": b"unnoticed"})
        reads, gaps = reader.reads, reader.notice_gaps
        await bus_a.append(doc, [b"after-gap"])
        await eventually(
            lambda: _true(on_b[doc].updates == [*before, b"unnoticed", b"after-gap"]),
            what="the gap and the run read in order",
        )
        assert reader.notice_gaps == gaps + 1
        assert reader.reads > reads
        # a run too big to carry is named only, and read; the next small one is carried
        big = b"x" * (appender_module.NOTICE_RUN_BYTES + 1)
        await bus_a.append(doc, [big])
        await eventually(lambda: _true(on_b[doc].updates[-1:] == [big]), what="the big run")
        await eventually(lambda: _true(not reader._foreign.is_set()), what="its read done")
        reads, noticed = reader.reads, reader.noticed
        await bus_a.append(doc, [b"small"])
        await eventually(lambda: _true(on_b[doc].updates[-1:] == [b"small"]), what="small")
        assert (reader.reads, reader.noticed) == (reads, noticed + 1)
        assert on_b[doc].updates == [*before, b"unnoticed", b"after-gap", big, b"small"]


async def test_a_notice_twice_or_for_a_doc_not_loaded_applies_nothing(
    own_redis_url: str, store: Store
) -> None:
    async with two_buses(own_redis_url, "nr:", store, DOCS, names=("nr-e", "nr-f")) as (
        redis,
        keys,
        (bus_a, _on_a),
        (bus_b, on_b),
    ):
        reader = bus_b._reader
        assert isinstance(reader, StreamReader)
        await _steady(bus_a, reader, on_b)
        doc = DOCS[1]
        channel = keys.appended("nr-e")
        listener = redis.pubsub()
        await listener.subscribe(channel)
        assert (await listener.get_message(timeout=5))["type"] == "subscribe"  # type: ignore[index]
        await bus_a.append(doc, [b"once"])
        message = await listener.get_message(timeout=5)
        await listener.aclose()
        assert message is not None and b"\0" in message["data"]  # it carries the run
        await eventually(lambda: _true(on_b[doc].updates[-1:] == [b"once"]), what="applied")
        expected = {doc_id: list(on_b[doc_id].updates) for doc_id in DOCS}
        reads, noticed = reader.reads, reader.noticed
        await redis.publish(channel, message["data"])  # the same notice again
        # a run for a doc B has not loaded, and garbage after the marker
        ghost = hiredis.pack_command((b"ghost", b"0-1", b"9-1", b"boo"))  # a RESP array
        await redis.publish(channel, b"ghost \0*1\r\n" + ghost)
        await redis.publish(channel, b"ghost \0*1\r\n*3\r\n")  # cut short
        await bus_a.append(doc, [b"marker"])  # notices are taken in order: all seen by now
        await eventually(lambda: _true(on_b[doc].updates[-1:] == [b"marker"]), what="marker")
        expected[doc].append(b"marker")
        assert {doc_id: on_b[doc_id].updates for doc_id in DOCS} == expected
        assert reader.reads == reads
        assert reader.noticed == noticed + 1


async def test_a_read_in_flight_takes_only_what_a_notice_did_not_bring() -> None:
    # the reader's own bookkeeping, no Redis: an XREAD sent from id 1-0, then a notice
    # carrying 1-1 and 1-2 applied before its reply, which holds 1-1 to 1-3
    reader = StreamReader("redis://unused", b"B", Keys("t"), notices=lambda origin: origin)
    room = Recorder()
    reader.subscribe("d", room)
    reader.start_at("d", b"1-0")
    record = hiredis.pack_command((b"d", b"1-0", b"1-1", b"u1", b"1-2", b"u2"))
    assert reader._take_runs(b"*1\r\n" + record) == {"d"}
    assert room.updates == [b"u1", b"u2"]
    entries: list[list[object]] = [
        [b"1-%d" % i, [b"o", b"A", b"u", b"u%d" % i]] for i in range(1, 4)
    ]
    reader._deliver("d", entries, 0.0, b"1-0")
    assert room.updates == [b"u1", b"u2", b"u3"]
    assert reader.positions() == {"d": b"1-3"}
    # a reply holding nothing new moves nothing back
    reader._deliver("d", entries[:2], 0.0, b"1-0")
    assert room.updates == [b"u1", b"u2", b"u3"]
    assert reader.positions() == {"d": b"1-3"}
    # the same run again, and one after a gap: nothing applied, the gap asks for a read
    assert reader._take_runs(b"*1\r\n" + record) == {"d"}
    gap = hiredis.pack_command((b"d", b"1-5", b"1-6", b"u6"))
    assert reader._take_runs(b"*1\r\n" + gap) == set()
    assert room.updates == [b"u1", b"u2", b"u3"]
    assert reader.notice_gaps == 1


async def test_the_notice_states_what_the_stream_holds_after_the_id_before(
    own_redis_url: str,
) -> None:
    redis = Redis.from_url(own_redis_url)
    keys = Keys("t")
    appender = appender_module.StreamAppender(redis, own_redis_url, keys, b"me")
    listener = redis.pubsub()
    try:
        await listener.subscribe(keys.appended("me"))
        assert (await listener.get_message(timeout=5))["type"] == "subscribe"  # type: ignore[index]
        first = await redis.xadd(keys.updates("d1"), {b"o": b"else", b"u": b"x"})
        big = b"b" * (appender_module.NOTICE_RUN_BYTES + 1)
        batch = [("d1", [b"u1", b"u2"]), ("d2", [b"first"]), ("d3", [big])]
        await redis.xadd(keys.updates("d3"), {b"o": b"else", b"u": b"y"})
        assert await appender.append(batch, 1.0) == {"d1": None, "d2": None, "d3": None}
        message = await listener.get_message(timeout=5)
        assert message is not None
        head, _, body = message["data"].partition(b"\0")
        assert head.split() == [b"d1", b"d2", b"d3"]  # every doc named, as before
        parser = hiredis.Reader()
        parser.feed(body)
        ids = [entry_id for entry_id, _ in await redis.xrange(keys.updates("d1"))]
        # d2 has no entry before its run, d3's run is too big: named only
        assert parser.gets() == [[b"d1", first, ids[1], b"u1", ids[2], b"u2"]]
    finally:
        await listener.aclose()
        await appender.aclose()
        await redis.aclose()


@pytest.mark.parametrize("refused", [False, True])
async def test_notices_sent_alone_arrive_with_or_without_client_reply(
    own_redis_url: str, refused: bool
) -> None:
    # alone, a notice is one write on a `CLIENT REPLY OFF` connection; where an ACL refuses
    # `CLIENT`, each is an exchange instead, and none is lost either way
    redis = Redis.from_url(own_redis_url)
    if refused:
        await redis.execute_command("ACL", "SETUSER", "default", "-client")
    keys = Keys("t")
    appender = appender_module.StreamAppender(redis, own_redis_url, keys, b"me")
    listener = redis.pubsub()
    try:
        await listener.subscribe(keys.appended("me"))
        assert (await listener.get_message(timeout=5))["type"] == "subscribe"  # type: ignore[index]
        for turn in range(4):
            doc = b"d%d" % turn
            assert await appender.append([(doc.decode(), [b"u"])], 1.0) == {doc.decode(): None}
            message = await listener.get_message(timeout=5)
            assert message is not None and message["data"] == doc
        assert appender._quiet is not refused
        assert (appender._notice_link is None) is refused
    finally:
        await listener.aclose()
        await appender.aclose()
        await redis.aclose()
