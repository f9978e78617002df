"""Schema migrations (Alembic), applied under a cross-process lock.

Two instances that start at once must not both create the tables: on
Postgres the upgrade holds a transaction-scoped advisory lock, on SQLite it
runs in a BEGIN IMMEDIATE transaction (SQLite's single writer lock). Either
way the second instance waits, then finds the schema at head and does
nothing. The whole upgrade is one transaction, so it applies fully or not
at all (both dialects have transactional DDL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ._engine import create_engine, writer
from ._errors import translate_errors
from ._url import parse_database_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key: any constant unique to syncd ("syncd" in ASCII).
_PG_LOCK_KEY = 0x73796E6364


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code: no alembic.ini is shipped or needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@asynccontextmanager
async def locked_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that holds the migration lock; commits on exit."""
    async with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        yield conn


@asynccontextmanager
async def migration_connection(url: str) -> AsyncIterator[AsyncConnection]:
    """`locked_connection` on a fresh engine for `url` (used by the Alembic CLI path)."""
    engine = await create_engine(parse_database_url(url), pool_size=1)
    try:
        async with locked_connection(engine) as conn:
            yield conn
    finally:
        await engine.dispose()


def _upgrade_sync(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema at `engine` to the newest revision; a no-op when it is."""
    with translate_errors():
        async with locked_connection(engine) as conn:
            await conn.run_sync(_upgrade_sync)


async def migrate_database(url: str) -> None:
    """`syncd migrate`: upgrade the database at `url` to head, then disconnect."""
    engine = await create_engine(parse_database_url(url), pool_size=1)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
