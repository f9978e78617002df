"""A value the database refuses raises StorageRejected (a bad value), never a driver error
and never StorageUnavailable (which would tell callers to retry the same bad value)."""

from __future__ import annotations

import pytest

from syncd.storage import StorageRejected, Store, VersionStore, open_store


async def test_postgres_refuses_a_nul_byte_as_a_rejected_value(postgres_url: str) -> None:
    async with open_store(postgres_url) as store:
        with pytest.raises(StorageRejected):
            await store.create_note(note_id="n1", title="a\x00b", created_by="u")
        # the store goes on serving
        assert (await store.create_note(note_id="n1", title="ab", created_by="u")).title == "ab"


async def test_postgres_refuses_an_integer_past_its_column_as_a_rejected_value(
    postgres_url: str,
) -> None:
    async with open_store(postgres_url) as store:
        await store.create_note(note_id="n1", title="t", created_by="u")
        with pytest.raises(StorageRejected):
            await VersionStore(store.engine).get("n1", 2**40)  # an integer column


async def test_an_unpaired_surrogate_is_a_rejected_value(store: Store) -> None:
    with pytest.raises(StorageRejected):
        await store.create_note(note_id="n1", title="a\ud800", created_by="u")
