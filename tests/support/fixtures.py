"""Pytest fixtures for tests that run real syncd processes and stock Node Yjs clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

StartServer = Callable[..., Awaitable[SyncdProcess]]


@pytest.fixture
async def start_syncd(tmp_path: Path) -> AsyncIterator[StartServer]:
    """Start syncd processes on the embedded default; every one is stopped at teardown."""
    started: list[SyncdProcess] = []

    async def start(*, env: dict[str, str] | None = None, name: str = "a") -> SyncdProcess:
        proc = SyncdProcess(tmp_path / f"syncd-{name}", env=env)
        started.append(proc)
        await proc.start()
        return proc

    yield start
    for proc in started:
        try:
            await proc.stop()
        except RuntimeError:
            await proc.kill()


@pytest.fixture
async def syncd(start_syncd: StartServer) -> SyncdProcess:
    """One embedded syncd with auto-created notes off (the production default)."""
    return await start_syncd()


@pytest.fixture
async def node() -> AsyncIterator[NodeYjs]:
    """One Node process hosting stock Yjs clients."""
    async with NodeYjs() as hosted:
        yield hosted


def paragraphs(*texts: str) -> dict[str, Any]:
    """ProseMirror JSON of a doc with one plain paragraph per text (a `contentJson` body)."""
    return {
        "type": "doc",
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": t}]} for t in texts],
    }


async def create_note(
    server: SyncdProcess,
    owner: str = "owner",
    *,
    roles: tuple[str, ...] = (),
    **body: Any,
) -> dict[str, Any]:
    """Create a note over REST as `owner`; returns the note JSON."""
    payload = {"title": "A note", **body}
    async with server.client(make_token(owner, roles=roles)) as client:
        response = await client.post("/api/collaborative-notes", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def start_scaled(
    postgres_url: str, redis_server_url: str, redis_prefix: str, start_syncd: StartServer
) -> StartServer:
    """Start instances of one scaled deployment: a fresh Postgres database of this test's
    own and a Redis key prefix of its own (so tests never see each other's streams).

    `start_syncd` comes last so that it is torn down first: the instances stop before the
    database is dropped (a live instance reconnecting would make the drop fail)."""

    async def start(
        *,
        name: str = "a",
        redis_url: str | None = None,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> SyncdProcess:
        scaled_env = {
            "DATABASE_URL": database_url or postgres_url,
            "REDIS_URL": redis_url or redis_server_url,
            "SYNCD_REDIS_PREFIX": redis_prefix.rstrip(":"),
            **(env or {}),
        }
        return await start_syncd(env=scaled_env, name=name)

    return start
