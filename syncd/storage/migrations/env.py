"""Alembic environment for syncd.

syncd runs migrations itself (`syncd.storage.migrate_database`), handing over
an open connection that already holds the migration lock and a transaction;
see `syncd/storage/migrate.py`. With no connection handed over (the
`alembic` command line, e.g. for `revision --autogenerate`), it connects to
`sqlalchemy.url` the same way, or renders SQL in offline mode.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from syncd.storage.schema import metadata

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_with_connection(connection: Connection) -> None:
    _configure(connection)
    # Inside syncd's transaction this does not commit: the caller does,
    # after the whole upgrade, so a failed migration leaves nothing behind.
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url() -> None:
    from syncd.storage.migrate import migration_connection

    async with migration_connection(config.get_main_option("sqlalchemy.url") or "") as conn:
        await conn.run_sync(run_with_connection)


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (handed_over := config.attributes.get("connection")) is not None:
    run_with_connection(handed_over)
else:
    asyncio.run(_run_from_url())
