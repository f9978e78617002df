"""The compaction invariant: compaction folds a doc's stream into its Postgres snapshot and
trims only what the snapshot holds, so snapshot + tail is always the live doc; a stream
whose instance died is compacted by the periodic job; and no live room on another instance
loses an update because compaction trimmed it before that instance's reader got to it."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from syncd.bus.compaction import Compactor
from syncd.bus.keys import Keys
from syncd.storage import open_store
from tests.scaled.helpers import Backing, converged, open_backing
from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.services import start_redis
from tests.support.yjs_node import NodeYjs, YClient
from tests.unit.test_room_surrogates import HALF_DELETE, STATE


async def _connect(node: NodeYjs, name: str, server: SyncdProcess, note_id: str) -> YClient:
    return await node.connect(
        name,
        url=server.ws_url,
        room=note_id,
        token=make_token("owner"),
        wait_synced=True,
        timeout=20,
    )


async def test_compaction_trims_what_the_snapshot_holds_and_snapshot_plus_tail_is_the_doc(
    postgres_url: str,
    redis_server_url: str,
    redis_prefix: str,
    start_scaled: StartServer,
    node: NodeYjs,
) -> None:
    a = await start_scaled(name="a")
    b = await start_scaled(name="b")
    note_id = (await create_note(a))["id"]
    on_a = await _connect(node, "on-a", a, note_id)
    on_b = await _connect(node, "on-b", b, note_id)
    for i in range(10):
        await on_a.insert(f"<a:{i}>")
        await on_b.insert(f"<b:{i}>", 0)
    live = await converged([on_a, on_b])
    async with open_backing(postgres_url, redis_server_url, redis_prefix) as backing:
        ids = await backing.stream_ids(note_id)
        assert len(ids) >= 2  # one entry per flush of each instance

        # As the instances compact: everything is folded; entries younger than the
        # compactor's keep time stay in the stream (for lagging readers) but the snapshot
        # holds them all, so nothing is left after its position.
        assert await backing.compactor().compact(note_id) == len(ids)
        stored = await backing.read(note_id)
        assert stored.snapshot is not None and stored.snapshot.position == ids[-1].decode()
        assert stored.tail == [] and stored.snapshot_text == live == stored.text
        # Entries older than the keep time go: with none to keep, the stream is empty.
        assert await backing.compactor(keep_ms=0).compact(note_id) == 0
        assert await backing.xlen(note_id) == 0

        # New edits: only newer entries in the stream; snapshot + tail is the live doc.
        for i in range(10, 15):
            await on_a.insert(f"<a:{i}>")
            await on_b.insert(f"<b:{i}>")
        live = await converged([on_a, on_b])
        position = stored.snapshot.position
        tail_ids = await backing.stream_ids(note_id)
        assert len(tail_ids) >= 2
        assert all(_order(i.decode()) > _order(position) for i in tail_ids)
        stored = await backing.read(note_id)
        assert stored.text == live and stored.snapshot_text != live

        # A fresh instance loads snapshot + tail.
        c = await start_scaled(name="c")
        on_c = await _connect(node, "on-c", c, note_id)
        assert await on_c.wait_text(equals=live, timeout=20) == live

        # Compacting again folds the tail; once more is a no-op (idempotent).
        assert await backing.compactor(keep_ms=0).compact(note_id) == len(tail_ids)
        assert await backing.xlen(note_id) == 0
        assert await backing.compactor(keep_ms=0).compact(note_id) == 0
        stored = await backing.read(note_id)
        assert stored.snapshot_text == live and stored.tail == []

        # Trimming does not disturb the instances' readers: edits still cross.
        await on_a.insert("<after-trim>")
        await on_b.wait_text(contains="<after-trim>", timeout=20)
        await on_c.wait_text(contains="<after-trim>", timeout=20)


async def test_an_orphaned_stream_is_compacted_by_the_periodic_job(
    postgres_url: str,
    redis_server_url: str,
    redis_prefix: str,
    start_scaled: StartServer,
    node: NodeYjs,
) -> None:
    a = await start_scaled(name="a")
    note_id = (await create_note(a))["id"]
    writer = await _connect(node, "writer", a, note_id)
    witness = await _connect(node, "witness", a, note_id)
    for i in range(20):
        await writer.insert(f"<w:{i}>")
    # The witness was sent every insert, so every one is in the stream (merged per flush).
    text = await witness.wait_text(contains="<w:19>", timeout=20)
    await a.kill()  # before it ever compacted (its interval is the default 30 s)
    await writer.destroy()
    await witness.destroy()
    async with open_backing(postgres_url, redis_server_url, redis_prefix) as backing:
        assert await backing.xlen(note_id) >= 1
        assert (await backing.read(note_id)).snapshot_text != text

        # Another instance that never opens the doc compacts the orphaned stream.
        await start_scaled(name="b", env={"SYNCD_COMPACT_INTERVAL": "1"})

        async def compacted() -> bool:
            stored = await backing.read(note_id)
            listed = await backing.redis.zscore(backing.keys.doc_index, note_id)
            return stored.snapshot_text == text and not stored.tail and listed is None

        await eventually(compacted, timeout=30, what="the orphaned stream being compacted")
        await eventually(
            _stream_empty(backing, note_id), timeout=30, what="the orphaned stream trimmed"
        )


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[str]:
    """A Redis of this test's own: it drops connections, which a shared one must not see."""
    server = await asyncio.to_thread(start_redis, tmp_path, appendonly=False)
    try:
        yield server.url
    finally:
        await asyncio.to_thread(server.close)


@pytest.mark.parametrize("keep_ms", [None, 0], ids=["entries-kept", "trimmed-then-caught-up"])
async def test_a_lagging_reader_still_gets_every_update(
    keep_ms: int | None,
    own_redis: str,
    postgres_url: str,
    redis_prefix: str,
    start_scaled: StartServer,
    node: NodeYjs,
) -> None:
    """Instance A is frozen (SIGSTOP) and its stream reader's connection dropped, so when it
    resumes it reads the stream from its last id. Meanwhile B appends and the doc is
    compacted. A's room must still get B's update: compaction keeps young entries, and when
    it did trim them (no keep time), A's reader sees on reconnecting that its stream was
    trimmed past what its room holds and reloads the doc."""
    a = await start_scaled(name="a", redis_url=own_redis)
    b = await start_scaled(name="b", redis_url=own_redis)
    note_id = (await create_note(a))["id"]
    on_a = await _connect(node, "on-a", a, note_id)
    on_b = await _connect(node, "on-b", b, note_id)
    witness_b = await _connect(node, "witness-b", b, note_id)
    await on_a.insert("<before>")
    await on_b.wait_text(contains="<before>", timeout=20)
    assert a.proc is not None
    async with open_backing(postgres_url, own_redis, redis_prefix) as backing:
        os.kill(a.proc.pid, signal.SIGSTOP)
        try:
            # Drop every blocked stream read: B's reader reconnects at once; A's, frozen,
            # only notices when it resumes, and then reads on from its last id.
            for client in await backing.redis.client_list():
                if client.get("cmd") == "xread":
                    await backing.redis.client_kill_filter(_id=client["id"])
            await on_b.insert("<while-a-lags>")
            await witness_b.wait_text(contains="<while-a-lags>", timeout=20)
            # Compact as an instance would (its checkpoint or orphan pass).
            compactor = backing.compactor() if keep_ms is None else backing.compactor(keep_ms=0)
            assert await compactor.compact(note_id) > 0
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)
        await on_a.wait_text(contains="<while-a-lags>", timeout=20)
        await on_b.insert("<after>")
        await on_a.wait_text(contains="<after>", timeout=20)
        assert (await converged([on_a, on_b, witness_b])) == (await backing.read(note_id)).text


def _stream_empty(backing: Backing, note_id: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await backing.xlen(note_id) == 0

    return check


def _order(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


async def test_entries_pycrdt_cannot_compact_stay_in_the_stream_with_one_error_line(
    postgres_url: str,
    redis_server_url: str,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Entries stored before the room refused such updates (tests/unit/
    test_room_surrogates.py): every pass keeps snapshot and stream as they are, counts an
    error, and logs one line with the doc id until the stream changes, never a traceback."""
    keys = Keys(redis_prefix.rstrip(":"))
    redis = Redis.from_url(redis_server_url)
    try:
        async with open_store(postgres_url, pool_size=2) as store:
            await store.create_note(note_id="n1", title="t", created_by="o")
            for update in (HALF_DELETE, STATE):
                await redis.xadd(keys.updates("n1"), {b"o": b"old", b"u": update})
            compactor = Compactor(redis, store, "test-compactor", keys, keep_ms=0)
            before = _compaction_errors()
            with caplog.at_level(logging.ERROR, logger="syncd.bus"):
                assert await compactor.compact("n1") == 0
                assert await compactor.compact("n1") == 0
            assert await store.load_snapshot("n1") is None
            assert await redis.xlen(keys.updates("n1")) == 2
            assert _compaction_errors() == before + 2
            [line] = caplog.records
            assert "doc n1: compaction failed" in line.getMessage() and line.exc_info is None
    finally:
        await redis.aclose()


def _compaction_errors() -> float:
    return REGISTRY.get_sample_value("syncd_errors_total", {"component": "compaction"}) or 0.0
