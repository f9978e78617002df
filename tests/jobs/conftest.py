"""Job backends for the contract suite: in process, and SAQ on the test Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from syncd.jobs.backend import JobBackend
from syncd.jobs.memory import MemoryBackend
from syncd.jobs.redis_queue import SaqBackend


@pytest.fixture
async def saq_backend_factory(
    redis_server_url: str, redis_prefix: str
) -> AsyncIterator[Callable[[], SaqBackend]]:
    """Make SAQ backends that share this test's key prefix (one per "instance")."""
    made: list[SaqBackend] = []

    def make() -> SaqBackend:
        backend = SaqBackend(redis_server_url, prefix=redis_prefix.rstrip(":"))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()


@pytest.fixture(params=["memory", "saq"])
async def backend(
    request: pytest.FixtureRequest, redis_server_url: str, redis_prefix: str
) -> AsyncIterator[JobBackend]:
    if request.param == "memory":
        memory = MemoryBackend()
        yield memory
        await memory.close()
        return
    saq = SaqBackend(redis_server_url, prefix=redis_prefix.rstrip(":"))
    yield saq
    await saq.close()
