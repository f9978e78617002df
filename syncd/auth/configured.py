"""The token services a process runs with, from its settings: the access-token secret
(configured, or generated in the data folder: never an open server) and the refresh
tokens with their records (Redis when scaled, the database when embedded)."""

from __future__ import annotations

from redis.asyncio import Redis

from syncd.auth.refresh import RefreshRecords, RefreshService, derive_secret
from syncd.auth.refresh_redis import RedisRefreshRecords
from syncd.auth.secrets import load_or_create_secret
from syncd.settings import Settings, SettingsError
from syncd.storage import SqlRefreshRecords, Store


def jwt_secret(settings: Settings) -> str:
    """The configured secret, or one generated in the data folder: never an open server."""
    if settings.jwt_secret:
        return settings.jwt_secret
    return load_or_create_secret(settings.data_dir, "jwt-secret")


def jwt_refresh_secret(settings: Settings) -> str:
    """`JWT_REFRESH_SECRET`; unset, derived from a configured `JWT_SECRET` (so every
    instance agrees) or generated in the data folder like it."""
    if settings.jwt_refresh_secret:
        return settings.jwt_refresh_secret
    if settings.jwt_secret:
        return derive_secret(settings.jwt_secret, "syncd refresh tokens")
    return load_or_create_secret(settings.data_dir, "jwt-refresh-secret")


def refresh_service(settings: Settings, store: Store, redis: Redis | None) -> RefreshService:
    """Refresh tokens signed with `jwt_refresh_secret`, their records in Redis when scaled,
    else in the database."""
    refresh_secret = jwt_refresh_secret(settings)
    records: RefreshRecords
    if redis is None:
        records = SqlRefreshRecords(store.engine)
    else:
        records = RedisRefreshRecords(
            redis, prefix=settings.redis_prefix, max_ttl=settings.tokens.refresh_ttl
        )
    try:
        return RefreshService(
            records,
            access_secret=jwt_secret(settings),
            refresh_secret=refresh_secret,
            access_ttl=settings.tokens.access_ttl,
            refresh_ttl=settings.tokens.refresh_ttl,
        )
    except ValueError as exc:
        raise SettingsError(f"JWT_REFRESH_SECRET: {exc}") from None
