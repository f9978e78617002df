"""Service fixtures shared by every test package; helpers live in tests/support."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.services import (
    ServiceUnavailable,
    create_database,
    drop_database,
    start_postgres,
    start_redis,
)

DATABASE_ENV = "SYNCD_TEST_DATABASE_URL"
REDIS_ENV = "SYNCD_TEST_REDIS_URL"


def pytest_report_header() -> list[str]:
    return [
        f"postgres: {os.environ.get(DATABASE_ENV) or 'throwaway (initdb + pg_ctl)'}",
        f"redis: {os.environ.get(REDIS_ENV) or 'throwaway (redis-server)'}",
    ]


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Postgres server for the session: $SYNCD_TEST_DATABASE_URL or a throwaway one."""
    if url := os.environ.get(DATABASE_ENV):
        yield url
        return
    try:
        server = start_postgres(tmp_path_factory.mktemp("postgres"))
    except ServiceUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server for the session: $SYNCD_TEST_REDIS_URL or a throwaway one."""
    if url := os.environ.get(REDIS_ENV):
        yield url
        return
    try:
        server = start_redis(tmp_path_factory.mktemp("redis"), appendonly=False)
    except ServiceUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh, empty database of its own for one test, dropped afterwards."""
    url = await create_database(postgres_server_url)
    try:
        yield url
    finally:
        await drop_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'syncd.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each backend in turn, isolated per test: for contract suites."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def redis_prefix(redis_server_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards (never FLUSHALL)."""
    import redis.asyncio as redis

    prefix = f"syncd-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_server_url)
    try:
        # Anywhere in the key: cluster keys put the prefix inside a {hash tag}.
        async for key in client.scan_iter(match=f"*{prefix}*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()
