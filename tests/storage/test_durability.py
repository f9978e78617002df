"""Committed doc state survives a killed syncd process and a restarted Postgres."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.storage import StorageUnavailable, open_store
from tests.support.services import PostgresServer, ServiceUnavailable, start_postgres

REPO = Path(__file__).resolve().parents[2]

WRITER = """
import asyncio, os, signal, sys
from syncd.storage import open_store

async def main():
    async with open_store(sys.argv[1]) as store:
        await store.create_note(note_id="n1", title="t", created_by="o")
        for i in range(50):
            await store.append_updates("n1", [bytes([i]) * 8])
        print("committed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_sqlite_commits_survive_kill_9(sqlite_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, sqlite_url, stdout=asyncio.subprocess.PIPE, env=env
    )
    out, _ = await process.communicate()
    assert process.returncode == -signal.SIGKILL and out == b"committed\n"
    async with open_store(sqlite_url) as store:
        rows = await store.read_updates("n1")
    assert [data for _, data in rows] == [bytes([i]) * 8 for i in range(50)]


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    """A server of this test's own: it gets stopped and killed (never the shared one)."""
    try:
        server = start_postgres(tmp_path)
    except ServiceUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.close()


async def test_store_rides_out_postgres_restart_and_kill(private_postgres: PostgresServer) -> None:
    server = private_postgres
    async with open_store(server.url, connect_timeout=3) as store:
        await store.create_note(note_id="n1", title="t", created_by="o")
        await store.append_updates("n1", [b"one"])

        await asyncio.to_thread(server.restart)
        # Pooled connections died with the server; the next call must not fail.
        await store.append_updates("n1", [b"two"])

        await asyncio.to_thread(server.kill)
        with pytest.raises(StorageUnavailable):
            await store.ping()
        with pytest.raises(StorageUnavailable):
            await store.append_updates("n1", [b"lost"])

        await asyncio.to_thread(server.start)
        assert [data for _, data in await store.read_updates("n1")] == [b"one", b"two"]
