"""Database URLs: what users write, and the async-driver URL it becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.storage import parse_database_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
        ("sqlite+aiosqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
        ("postgresql://u@h:5433/db", "postgresql+asyncpg://u@h:5433/db"),
        ("postgres://u:secret@h/db", "postgresql+asyncpg://u:***@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?ssl=require"),
    ],
)
def test_urls_map_to_async_drivers(raw: str, expected: str) -> None:
    assert str(parse_database_url(raw)) == expected


def test_relative_sqlite_path_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = parse_database_url("sqlite:///./rel/syncd.db")
    assert (url.dialect, url.sqlite_path) == ("sqlite", tmp_path / "rel" / "syncd.db")


@pytest.mark.parametrize(
    "raw", ["sqlite://", "sqlite:///:memory:", "mysql://u@h/db", "postgresql+psycopg2://h/d", "x"]
)
def test_unsupported_urls_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_database_url(raw)
