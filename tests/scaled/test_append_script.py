"""The single-Redis append's contract on a real Redis (issue 15): a turn is one `MULTI`
block (no script), it tells each run's ids and the entry right before it, it writes a doc's
index score at most once a second, and the appender's own connections survive Redis
dropping them and honour the URL's database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import hiredis
import pytest
from redis.asyncio import Redis

from syncd.bus import link
from syncd.bus.appender import OnAppended, StreamAppender
from syncd.bus.keys import Keys
from tests.scaled.test_bus_keys import update_of
from tests.support.services import start_redis

Told = list[tuple[str, bytes, list[bytes]]]


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[tuple[Redis, str]]:
    """A Redis of this test alone: its command statistics and connections are the test's."""
    server = start_redis(tmp_path, appendonly=False)
    client = Redis.from_url(server.url)
    try:
        yield client, server.url
    finally:
        await client.aclose()
        server.close()


def recorder(told: Told) -> OnAppended:
    def on_appended(doc_id: str, prev: bytes, ids: Sequence[bytes]) -> None:
        told.append((doc_id, prev, list(ids)))

    return on_appended


async def test_runs_are_told_with_the_entry_before_them(
    own_redis: tuple[Redis, str],
) -> None:
    redis, url = own_redis
    keys = Keys("t")
    told: Told = []
    appender = StreamAppender(redis, url, keys, b"me", on_appended=recorder(told))
    try:
        first = await appender.append([("d1", [update_of("a"), update_of("b")])], 1.0)
        other = await redis.xadd(keys.updates("d1"), {b"o": b"else", b"u": b"x"})
        second = await appender.append([("d1", [update_of("c")]), ("d2", [update_of("d")])], 2.0)
    finally:
        await appender.aclose()
    assert first == {"d1": None}
    assert second == {"d1": None, "d2": None}
    ids = [entry_id for entry_id, _ in await redis.xrange(keys.updates("d1"))]
    assert len(ids) == 4 and ids[2] == other
    (d2_id,) = [entry_id for entry_id, _ in await redis.xrange(keys.updates("d2"))]
    assert (
        told
        == [
            ("d1", b"", ids[:2]),  # the stream had no entry before the run
            ("d1", other, ids[3:]),
            ("d2", b"", [d2_id]),
        ]
    )


async def test_the_doc_index_is_written_at_most_once_a_second_yet_never_left_out(
    own_redis: tuple[Redis, str],
) -> None:
    redis, url = own_redis
    keys = Keys("t")
    appender = StreamAppender(redis, url, keys, b"me")
    try:
        await appender.append([("d1", [update_of("a")])], 100.0)
        await appender.append([("d1", [update_of("b")])], 100.5)
        assert await redis.zscore(keys.doc_index, "d1") == 100.0
        await appender.append([("d1", [update_of("c")])], 101.5)
        assert await redis.zscore(keys.doc_index, "d1") == 101.5
        # a compaction unlisted it (its stream looked empty): the next append lists it again
        await redis.zrem(keys.doc_index, "d1")
        await appender.append([("d1", [update_of("d")])], 101.6)
        assert await redis.zscore(keys.doc_index, "d1") == 101.6
    finally:
        await appender.aclose()


async def test_a_turn_after_redis_dropped_the_appenders_connection_is_appended(
    own_redis: tuple[Redis, str],
) -> None:
    """The appender's connections are its own (packed and read straight off them): one
    that Redis closed is not reused for the next turn, and two turns in flight at once
    each read their own replies."""
    redis, url = own_redis
    keys = Keys("t")
    appender = StreamAppender(redis, url, keys, b"me")
    try:
        assert await appender.append([("d1", [update_of("a")])], 1.0) == {"d1": None}
        killed = await redis.client_kill_filter(_type="normal", skipme=True)
        assert killed >= 1  # the appender's connection
        assert await appender.append([("d1", [update_of("b")])], 2.0) == {"d1": None}
        both = await asyncio.gather(
            appender.append([("d1", [update_of("c")])], 3.0),
            appender.append([("d2", [update_of("d")])], 3.0),
        )
    finally:
        await appender.aclose()
    assert both == [{"d1": None}, {"d2": None}]
    assert await redis.xlen(keys.updates("d1")) == 3
    assert await redis.xlen(keys.updates("d2")) == 1


async def test_a_turn_is_one_multi_block_and_no_script(own_redis: tuple[Redis, str]) -> None:
    """A Lua `redis.pcall` per command cost Redis more than the commands (bus_bench):
    the turn's docs go in one `MULTI` ... `EXEC`, nothing evaluated."""
    redis, url = own_redis
    keys = Keys("t")
    appender = StreamAppender(redis, url, keys, b"me")
    try:
        await redis.config_resetstat()
        outcome = await appender.append(
            [("d1", [update_of("a"), update_of("b")]), ("d2", [update_of("c")])], 1.0
        )
        stats = await redis.info("commandstats")
    finally:
        await appender.aclose()
    assert outcome == {"d1": None, "d2": None}
    assert stats["cmdstat_exec"]["calls"] == 1
    assert stats["cmdstat_xadd"]["calls"] == 3
    assert not any(name.startswith(("cmdstat_eval", "cmdstat_fcall")) for name in stats)


async def test_the_appenders_connection_uses_the_urls_database(
    own_redis: tuple[Redis, str],
) -> None:
    redis, url = own_redis
    keys = Keys("t")
    other_db = url.rsplit("/", 1)[0] + "/3"
    appender = StreamAppender(redis, other_db, keys, b"me")
    try:
        assert await appender.append([("d1", [update_of("a")])], 1.0) == {"d1": None}
    finally:
        await appender.aclose()
    assert await redis.xlen(keys.updates("d1")) == 0
    in_3 = Redis.from_url(other_db)
    try:
        assert await in_3.xlen(keys.updates("d1")) == 1
    finally:
        await in_3.aclose()


async def test_a_url_the_bare_link_does_not_take_appends_on_redis_py(
    own_redis: tuple[Redis, str],
) -> None:
    """Options in the query string are redis-py's to read: the appender falls back to a
    redis-py connection (replies read one by one), with the same outcome and runs told."""
    redis, url = own_redis
    keys = Keys("t")
    told: Told = []
    with_options = url + "?health_check_interval=0"
    assert not link.usable(with_options) and link.usable(url)
    appender = StreamAppender(redis, with_options, keys, b"me", on_appended=recorder(told))
    try:
        first = await appender.append([("d1", [update_of("a"), update_of("b")])], 1.0)
        second = await appender.append([("d1", [update_of("c")])], 2.0)
    finally:
        await appender.aclose()
    assert first == second == {"d1": None}
    ids = [entry_id for entry_id, _ in await redis.xrange(keys.updates("d1"))]
    assert told == [("d1", b"", ids[:2]), ("d1", ids[1], ids[2:])]


async def test_the_bare_link_bounds_an_exchange_by_its_own_timer(
    own_redis: tuple[Redis, str],
) -> None:
    """No timer per turn: one per link, re-armed at the deadline of the exchange in flight.
    An idle link outlives it; an exchange Redis does not answer in time fails and closes it."""
    _, url = own_redis
    bare = await link.RawLink.open(url)
    ping = hiredis.pack_command((b"PING",))
    try:
        for _ in range(5):
            assert await bare.exchange(ping, 1, 0.3) == [b"PONG"]
        await asyncio.sleep(0.5)  # the timer fired with nothing in flight
        assert bare.alive
        assert await bare.exchange(ping, 1, 0.3) == [b"PONG"]
        never = hiredis.pack_command((b"BLPOP", b"t-never-pushed", b"0"))
        with pytest.raises(TimeoutError):
            await bare.exchange(never, 1, 0.3)
        assert not bare.alive
    finally:
        bare.close()
