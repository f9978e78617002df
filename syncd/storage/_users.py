"""User queries over one connection: the users syncd has seen in tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ._engine import dialect_insert
from .records import UserRecord
from .schema import users


async def upsert(conn: AsyncConnection, user: UserRecord) -> None:
    """Insert, or refresh name, email, roles and last_seen (first_seen stays)."""
    now = datetime.now(UTC)
    values = {"name": user.name, "email": user.email, "roles": json.dumps(list(user.roles))}
    statement = (
        dialect_insert(conn)(users)
        .values(id=user.id, first_seen=now, last_seen=now, **values)
        .on_conflict_do_update(index_elements=[users.c.id], set_={**values, "last_seen": now})
    )
    await conn.execute(statement)


async def get(conn: AsyncConnection, user_id: str) -> UserRecord | None:
    row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).first()
    if row is None:
        return None
    return UserRecord(row.id, row.name, row.email, tuple(json.loads(row.roles)))
