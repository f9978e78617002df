"""User queries over one connection: the users syncd has seen in tokens, or that the CRM
registered over `PUT /api/users/:id`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ._engine import dialect_insert
from .records import UserRecord
from .schema import users


async def upsert(conn: AsyncConnection, user: UserRecord) -> None:
    """Insert, or refresh roles, last_seen and the name and email the token carries
    (first_seen stays). A token without a name or email keeps the stored one: the CRM may
    have registered it (`register`), and a token that does not say is no reason to forget
    it. The e-mail opt-out is the user's, never a token's."""
    now = datetime.now(UTC)
    insert = dialect_insert(conn)(users)
    values = {"name": user.name, "email": user.email, "roles": json.dumps(list(user.roles))}
    statement = insert.values(id=user.id, first_seen=now, last_seen=now, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[users.c.id],
        set_={
            "name": sa.func.coalesce(statement.excluded.name, users.c.name),
            "email": sa.func.coalesce(statement.excluded.email, users.c.email),
            "roles": values["roles"],
            "last_seen": now,
        },
    )
    await conn.execute(statement)


async def register(conn: AsyncConnection, user_id: str, changes: dict[str, Any]) -> None:
    """Create the user or change the given columns (`name`, `email`, `email_notifications`);
    a user registered before any token of theirs was seen has no roles yet."""
    now = datetime.now(UTC)
    statement = dialect_insert(conn)(users).values(
        id=user_id, roles="[]", first_seen=now, last_seen=now, **changes
    )
    if changes:
        statement = statement.on_conflict_do_update(index_elements=[users.c.id], set_=changes)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=[users.c.id])
    await conn.execute(statement)


async def get(conn: AsyncConnection, user_id: str) -> UserRecord | None:
    row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).first()
    if row is None:
        return None
    return UserRecord(
        row.id,
        row.name,
        row.email,
        tuple(json.loads(row.roles)),
        email_notifications=bool(row.email_notifications),
    )
