"""SQLite specifics: connection settings and where the file goes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from syncd.storage import open_store


async def test_every_connection_has_the_durability_pragmas(sqlite_url: str) -> None:
    async with open_store(sqlite_url, pool_size=3) as store:
        for _ in range(3):  # several pooled connections, not just the first
            async with store._read() as conn, store._read() as other:
                for connection in (conn, other):
                    pragmas = [
                        await connection.scalar(sa.text(f"PRAGMA {name}"))
                        for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
                    ]
                    assert pragmas == ["wal", 1, 1, 10_000]


async def test_relative_path_creates_parent_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_store("sqlite:///./data/deeper/syncd.db") as store:
        os.chdir("/")  # the path was resolved when the store was opened
        await store.create_note(note_id="n1", title="t", created_by="o")
    assert (tmp_path / "data" / "deeper" / "syncd.db").is_file()
