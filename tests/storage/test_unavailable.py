"""An unreachable database raises StorageUnavailable, never a driver error."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.storage import StorageUnavailable, migrate_database, open_store
from tests.support.services import free_port


@pytest.fixture(params=["sqlite", "postgres"])
def unreachable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return f"postgresql://postgres@127.0.0.1:{free_port()}/syncd"  # nobody listens
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    return f"sqlite:///{blocker}/syncd.db"


async def test_open_store_raises_storage_unavailable(unreachable_url: str) -> None:
    with pytest.raises(StorageUnavailable):
        async with open_store(unreachable_url, connect_timeout=2):
            pass


async def test_ping_raises_storage_unavailable(unreachable_url: str) -> None:
    with pytest.raises(StorageUnavailable):
        async with open_store(unreachable_url, migrate=False, connect_timeout=2) as store:
            await store.ping()


async def test_migrate_database_raises_storage_unavailable(unreachable_url: str) -> None:
    with pytest.raises(StorageUnavailable):
        await migrate_database(unreachable_url)
