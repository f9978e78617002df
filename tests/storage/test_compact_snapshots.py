"""Snapshots are stored compact (re-encoded by a Doc), on SQLite and on Postgres: by the
log compaction, over an older merged snapshot, and when a save has to merge in a delete
the stored snapshot holds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from typing import Any

import pycrdt
import pytest
from prometheus_client import REGISTRY

from syncd.storage import Store, _docs
from syncd.updates import compact_state, merge
from tests.unit.test_room_surrogates import HALF_DELETE, STATE


def keystrokes(count: int) -> tuple[pycrdt.Doc, list[bytes]]:
    """`count` one-character transactions typed into "content", 1 in 20 a backspace."""
    doc = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        if i % 20 == 19:
            del text[len(text) - 1]
        else:
            text.insert(len(text), "abcdefgh ij"[i % 11])
    return doc, updates


def loaded(state: bytes) -> pycrdt.Doc:
    doc = pycrdt.Doc()
    doc.apply_update(state)
    return doc


def text_of(doc: pycrdt.Doc) -> str:
    return str(doc.get("content", type=pycrdt.Text))


async def test_log_compaction_stores_the_doc_encoding(store: Store) -> None:
    await store.create_note(note_id="n1", title="t", created_by="o")
    source, updates = keystrokes(2000)
    await store.append_updates("n1", updates[:1500])
    assert await store.compact_doc("n1") == 1500
    await store.append_updates("n1", updates[1500:])
    assert await store.compact_doc("n1") == 500
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None
    assert snapshot.state == compact_state(updates)
    assert len(snapshot.state) * 3 < len(merge(updates))
    assert text_of(loaded(snapshot.state)) == text_of(source)
    assert snapshot.state_vector == source.get_state()


async def test_an_older_merged_snapshot_is_compacted_not_merged_back(store: Store) -> None:
    await store.create_note(note_id="n1", title="t", created_by="o")
    source, updates = keystrokes(2000)
    inflated = merge(updates[:1500])  # as compactions stored snapshots before
    assert await store.save_snapshot("n1", inflated, position="0")
    await store.append_updates("n1", updates[1500:])
    assert await store.compact_doc("n1") == 500
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None and snapshot.state == compact_state(updates)
    assert text_of(loaded(snapshot.state)) == text_of(source)
    # As the bus compactor saves: a compact state over a merged snapshot it holds is
    # stored as it is (merging the stored one first would re-inflate it).
    await store.create_note(note_id="n2", title="t", created_by="o")
    assert await store.save_snapshot("n2", merge(updates), position="1")
    assert await store.save_snapshot("n2", compact_state(updates), position="2")
    snapshot = await store.load_snapshot("n2")
    assert snapshot is not None and snapshot.state == compact_state(updates)


async def test_a_delete_merged_in_from_the_stored_snapshot_stays_compact(store: Store) -> None:
    await store.create_note(note_id="n1", title="t", created_by="o")
    source, updates = keystrokes(1000)
    before_delete = compact_state(updates)
    text = source.get("content", type=pycrdt.Text)
    del text[10:200]  # no clock: the same state vector as before
    assert source.get_state() == pycrdt.get_state(before_delete)
    assert await store.save_snapshot("n1", source.get_update(), position="1")
    assert await store.save_snapshot("n1", before_delete, position="2")
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None and snapshot.position == "2"
    assert text_of(loaded(snapshot.state)) == text_of(source)
    assert snapshot.state == source.get_update()  # the union, re-encoded by a Doc
    assert snapshot.state_vector == source.get_state()


async def test_updates_pycrdt_cannot_compact_stay_in_the_log_with_one_error_line(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored before the room refused them (see tests/unit/test_room_surrogates.py): the
    compaction keeps the log as it is, says so once with the doc id, counts it, and does
    not raise, so the room's checkpoint neither logs a traceback nor stays stuck."""
    await store.create_note(note_id="n1", title="t", created_by="o")
    await store.append_updates("n1", [HALF_DELETE, STATE])
    before = _compaction_errors()
    with caplog.at_level(logging.ERROR, logger="syncd.storage"):
        assert await store.compact_doc("n1") == 0
    assert await store.load_snapshot("n1") is None
    assert [data for _, data in await store.read_updates("n1")] == [HALF_DELETE, STATE]
    assert _compaction_errors() == before + 1
    [line] = caplog.records
    assert "doc n1: compaction failed" in line.getMessage() and line.exc_info is None


def _compaction_errors() -> float:
    return REGISTRY.get_sample_value("syncd_errors_total", {"component": "compaction"}) or 0.0


async def test_compaction_in_slices_lets_the_loop_run_and_keeps_what_is_appended_meanwhile(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`compact_doc_in_slices` (the embedded room checkpoint) folds the log outside the
    write transaction, a slice at a time: other callbacks run between slices, the durable
    append of a room is not held up by it, the snapshot is what `compact_doc` stores, and
    rows appended while it folds stay in the log."""
    await store.create_note(note_id="n1", title="t", created_by="o")
    source, updates = keystrokes(2000)
    await store.append_updates("n1", updates[:1500])
    turns = 0
    folding = appended = False
    fold_steps = _docs.fold_steps

    def watched(*args: Any) -> Generator[None, None, bytes | None]:
        nonlocal folding
        folding = True  # the log is read; the fold's steps begin
        return (yield from fold_steps(*args))

    monkeypatch.setattr(_docs, "fold_steps", watched)

    async def other_work() -> None:
        nonlocal turns, appended
        while True:
            turns += folding
            if turns == 3:  # mid-fold: a room's durable append goes through
                await store.append_many([("n1", updates[1500:])])
                appended = True
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_work())
    try:
        folded = await store.compact_doc_in_slices("n1", slice_seconds=0.0)
    finally:
        ticker.cancel()
    assert folded == 1500
    assert turns > 50 and appended  # one loop turn per step: many, not one long turn
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None
    assert snapshot.state == compact_state(updates[:1500])
    assert [data for _, data in await store.read_updates("n1")] == updates[1500:]
    assert await store.compact_doc_in_slices("n1") == 500
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None and await store.read_updates("n1") == []
    assert text_of(loaded(snapshot.state)) == text_of(source)
    assert snapshot.state == compact_state(updates)


async def test_compaction_in_slices_keeps_the_log_when_pycrdt_cannot_fold_it(
    store: Store,
) -> None:
    await store.create_note(note_id="n1", title="t", created_by="o")
    await store.append_updates("n1", [HALF_DELETE, STATE])
    before = _compaction_errors()
    assert await store.compact_doc_in_slices("n1") == 0
    assert await store.load_snapshot("n1") is None
    assert [data for _, data in await store.read_updates("n1")] == [HALF_DELETE, STATE]
    assert _compaction_errors() == before + 1


@pytest.mark.parametrize("sliced", [False, True])
async def test_a_compaction_does_not_merge_again_the_snapshot_it_folded(
    store: Store, monkeypatch: pytest.MonkeyPatch, sliced: bool
) -> None:
    """The stored snapshot is still the one the compaction folded in: the new state holds
    all of it, so `save` skips merging the two whole states (~1 ms of CPU)."""
    await store.create_note(note_id="n1", title="t", created_by="o")
    source, updates = keystrokes(1000)
    await store.append_updates("n1", updates[:600])
    assert await store.compact_doc("n1") == 600
    await store.append_updates("n1", updates[600:])
    merges = 0
    merge_updates = pycrdt.merge_updates

    def counted(*updates: bytes) -> bytes:
        nonlocal merges
        merges += 1
        return merge_updates(*updates)

    monkeypatch.setattr(pycrdt, "merge_updates", counted)  # what `save` calls
    compact = store.compact_doc_in_slices if sliced else store.compact_doc
    assert await compact("n1") == 400
    assert merges == 0
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None and snapshot.state == compact_state(updates)
    assert text_of(loaded(snapshot.state)) == text_of(source)


async def test_a_snapshot_stored_while_the_slices_fold_is_merged_in(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another compaction stores a snapshot holding a delete (no clock) while ours folds
    outside the transaction: ours has the same clocks, and `save` merges the delete in."""
    await store.create_note(note_id="n1", title="t", created_by="o")
    source, updates = keystrokes(1000)
    assert await store.save_snapshot("n1", compact_state(updates[:500]), position="0")
    await store.append_updates("n1", updates[500:])
    text = source.get("content", type=pycrdt.Text)
    del text[10:200]  # the other compaction's snapshot holds this delete
    stored = asyncio.Event()
    fold_steps = _docs.fold_steps

    def held(*args: Any) -> Generator[None, None, bytes | None]:
        result = yield from fold_steps(*args)
        for _ in range(1_000_000):  # loop turns until the other snapshot is stored
            if stored.is_set():
                break
            yield
        return result

    async def other_compaction() -> None:
        assert await store.save_snapshot("n1", source.get_update(), position="x")
        stored.set()

    monkeypatch.setattr(_docs, "fold_steps", held)
    other = asyncio.create_task(other_compaction())
    async with asyncio.timeout(30):
        assert await store.compact_doc_in_slices("n1", slice_seconds=0.0) == 500
    await other
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None
    assert text_of(loaded(snapshot.state)) == text_of(source)
    assert snapshot.state_vector == source.get_state()
    assert await store.read_updates("n1") == []
