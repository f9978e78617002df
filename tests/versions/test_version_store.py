"""The version store on SQLite and Postgres: numbering, reading, skipping, deleting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pycrdt
import pytest

from syncd.storage import NoteNotFound, Store, VersionStore, open_store


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with open_store(store_url) as opened:
        await opened.create_note(note_id="n1", title="t", created_by="u")
        yield opened


def doc_with(text: str) -> pycrdt.Doc:
    doc = pycrdt.Doc()
    doc.get("t", type=pycrdt.Text).insert(0, text)
    return doc


async def add(versions: VersionStore, doc: pycrdt.Doc, **options: object) -> object:
    return await versions.add("n1", state=doc.get_update(), state_vector=doc.get_state(), **options)


async def test_versions_are_numbered_per_note_and_listed_newest_first(store: Store) -> None:
    versions = VersionStore(store.engine)
    first = await add(versions, doc_with("a"), label="draft", created_by="ann", authors=["b", "a"])
    second = await add(versions, doc_with("ab"), automatic=True)
    assert (first.number, second.number) == (1, 2)
    listed = await versions.list("n1")
    assert [v.number for v in listed] == [2, 1]
    assert listed[1].label == "draft"
    assert listed[1].authors == ("a", "b")
    assert listed[1].created_by == "ann"
    assert listed[0].automatic and not listed[1].automatic
    record, state = await versions.get("n1", 1)
    assert record.size == len(state)
    restored = pycrdt.Doc()
    restored.apply_update(state)
    assert str(restored.get("t", type=pycrdt.Text)) == "a"
    assert await versions.get("n1", 3) is None


async def test_an_unchanged_automatic_version_is_skipped(store: Store) -> None:
    versions = VersionStore(store.engine)
    assert await add(versions, pycrdt.Doc(), automatic=True, skip_if_unchanged=True) is None
    doc = doc_with("x")
    assert await add(versions, doc, skip_if_unchanged=True) is not None
    assert await add(versions, doc, skip_if_unchanged=True) is None
    assert await versions.latest_state_vector("n1") is not None


async def test_concurrent_versions_get_distinct_numbers(store: Store) -> None:
    versions = VersionStore(store.engine)
    done = await asyncio.gather(*(add(versions, doc_with(str(i))) for i in range(5)))
    assert sorted(v.number for v in done) == [1, 2, 3, 4, 5]


async def test_delete_and_note_cascade(store: Store) -> None:
    versions = VersionStore(store.engine)
    for text in ("a", "b", "c"):
        await add(versions, doc_with(text))
    assert await versions.delete("n1", [1, 2]) == 2
    assert [v.number for v in await versions.list("n1")] == [3]
    assert (await add(versions, doc_with("d"))).number == 4
    await store.delete_note("n1")
    assert await versions.list("n1") == []
    with pytest.raises(NoteNotFound):
        await add(versions, doc_with("e"))
