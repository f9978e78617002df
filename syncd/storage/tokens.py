"""Refresh-token records for the embedded mode (scaled mode keeps them in Redis).

One row per issued refresh token. Rotation marks the presented token `used` and inserts
its successor in one transaction; presenting a `used` token again is a replay, so the
whole family (every token descended from one login) becomes `revoked`. Rows past their
expiry count as absent and are removed by `purge_expired` (the cleanup job).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import sqlalchemy as sa

from ._access import EngineStore
from ._engine import dialect_insert
from .schema import UTCDateTime, metadata

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("jti", sa.Text, primary_key=True),
    sa.Column("family_id", sa.Text, nullable=False, index=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

ACTIVE, USED, REVOKED = "active", "used", "revoked"


class Rotation(enum.Enum):
    """What presenting a refresh token came to."""

    OK = "ok"
    #: unknown, expired, or never issued here
    UNKNOWN = "unknown"
    #: its family was revoked (logout, or a replay seen earlier)
    REVOKED = "revoked"
    #: it had been used already: a replay; the family is now revoked
    REUSED = "reused"


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


class SqlRefreshRecords(EngineStore):
    """`RefreshRecords` over the `refresh_tokens` table."""

    async def issue(self, jti: str, family: str, user_id: str, expires_at: float) -> None:
        async with self._write() as conn:
            await conn.execute(
                sa.insert(refresh_tokens),
                {
                    "jti": jti,
                    "family_id": family,
                    "user_id": user_id,
                    "status": ACTIVE,
                    "expires_at": _at(expires_at),
                    "created_at": datetime.now(UTC),
                },
            )

    async def rotate(
        self, jti: str, family: str, new_jti: str, user_id: str, expires_at: float
    ) -> Rotation:
        """Use `jti` once and issue `new_jti` in its family, atomically."""
        now = datetime.now(UTC)
        async with self._write() as conn:
            used = await conn.execute(
                sa.update(refresh_tokens)
                .where(
                    refresh_tokens.c.jti == jti,
                    refresh_tokens.c.family_id == family,
                    refresh_tokens.c.status == ACTIVE,
                    refresh_tokens.c.expires_at > now,
                )
                .values(status=USED)
            )
            if used.rowcount == 1:
                await conn.execute(
                    sa.insert(refresh_tokens),
                    {
                        "jti": new_jti,
                        "family_id": family,
                        "user_id": user_id,
                        "status": ACTIVE,
                        "expires_at": _at(expires_at),
                        "created_at": now,
                    },
                )
                return Rotation.OK
            status = await conn.scalar(
                sa.select(refresh_tokens.c.status).where(
                    refresh_tokens.c.jti == jti,
                    refresh_tokens.c.family_id == family,
                    refresh_tokens.c.expires_at > now,
                )
            )
            if status == USED:
                await conn.execute(
                    sa.update(refresh_tokens)
                    .where(refresh_tokens.c.family_id == family)
                    .values(status=REVOKED)
                )
                return Rotation.REUSED
            return Rotation.REVOKED if status == REVOKED else Rotation.UNKNOWN

    async def adopt(
        self,
        jti: str,
        family: str,
        spent_until: float,
        new_jti: str,
        user_id: str,
        expires_at: float,
    ) -> Rotation:
        """Record a token minted elsewhere as spent (until its own expiry) and issue
        `new_jti`; if it is recorded already, this is `rotate` (a second use is a replay)."""
        now = datetime.now(UTC)
        async with self._write() as conn:
            revoked = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(refresh_tokens)
                .where(
                    refresh_tokens.c.family_id == family,
                    refresh_tokens.c.status == REVOKED,
                    refresh_tokens.c.expires_at > now,
                )
            )
            if revoked:
                return Rotation.REVOKED
            first_use = await conn.execute(
                dialect_insert(conn)(refresh_tokens)
                .values(
                    jti=jti,
                    family_id=family,
                    user_id=user_id,
                    status=USED,
                    expires_at=_at(spent_until),
                    created_at=now,
                )
                .on_conflict_do_nothing()
            )
            if first_use.rowcount == 1:
                await conn.execute(
                    sa.insert(refresh_tokens),
                    {
                        "jti": new_jti,
                        "family_id": family,
                        "user_id": user_id,
                        "status": ACTIVE,
                        "expires_at": _at(expires_at),
                        "created_at": now,
                    },
                )
                return Rotation.OK
        return await self.rotate(jti, family, new_jti, user_id, expires_at)

    async def revoke(self, family: str, until: float | None = None) -> None:
        """Revoke every token of `family`. A family with no record yet (a token minted by
        the CRM back end, logged out before its first use) gets a marker row that lives
        until `until`, so that token cannot start its family later."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(refresh_tokens)
                .where(refresh_tokens.c.family_id == family)
                .values(status=REVOKED)
            )
            if result.rowcount == 0 and until is not None:
                await conn.execute(
                    dialect_insert(conn)(refresh_tokens)
                    .values(
                        jti=f"revoked:{family}",
                        family_id=family,
                        user_id="",
                        status=REVOKED,
                        expires_at=_at(until),
                        created_at=datetime.now(UTC),
                    )
                    .on_conflict_do_nothing()
                )

    async def purge_expired(self) -> int:
        """Delete records past their expiry; returns how many."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.delete(refresh_tokens).where(refresh_tokens.c.expires_at <= datetime.now(UTC))
            )
        return result.rowcount
