"""Configuration, read once from the environment into a frozen object that is passed down.

Seed names are kept (`DATABASE_URL`, `REDIS_URL`, `JWT_SECRET`, `PORT`, ...); syncd's own
limits and knobs are prefixed `SYNCD_`. No module reads the environment at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///./syncd-data/syncd.db"


class SettingsError(ValueError):
    """A configuration value that cannot be used; raised at start-up, never later."""


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be > 0, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one client may cost the server."""

    max_message_bytes: int = 4 * 1024 * 1024
    max_awareness_bytes: int = 64 * 1024
    max_awareness_clients_per_connection: int = 8
    max_body_bytes: int = 8 * 1024 * 1024
    #: a client whose socket accepts nothing for this long is closed (1013), so it cannot
    #: stall its room's fan-out
    send_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything syncd needs to know about its environment."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    redis_prefix: str = "syncd"
    jwt_secret: str | None = None
    jwt_refresh_secret: str | None = None
    host: str = "127.0.0.1"
    port: int = 3001
    frontend_url: str | None = None
    smtp_url: str | None = None
    data_dir: Path = Path("./syncd-data")
    auto_create_notes: bool = False
    prosemirror_field: str = "prosemirror"
    compact_interval: float = 30.0
    log_level: str = "info"
    limits: Limits = field(default_factory=Limits)

    @property
    def embedded(self) -> bool:
        """True when syncd runs as one process on SQLite with in-process fan-out."""
        return self.redis_url is None

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        limits = Limits(
            max_message_bytes=_int(env, "SYNCD_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, minimum=1024),
            max_awareness_bytes=_int(env, "SYNCD_MAX_AWARENESS_BYTES", 64 * 1024, minimum=256),
            max_awareness_clients_per_connection=_int(
                env, "SYNCD_MAX_AWARENESS_CLIENTS", 8, minimum=1
            ),
            max_body_bytes=_int(env, "SYNCD_MAX_BODY_BYTES", 8 * 1024 * 1024, minimum=1024),
            send_timeout=_float(env, "SYNCD_SEND_TIMEOUT", 5.0),
        )
        redis_url = env.get("REDIS_URL") or None
        database_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        return cls(
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=env.get("SYNCD_REDIS_PREFIX") or "syncd",
            jwt_secret=env.get("JWT_SECRET") or None,
            jwt_refresh_secret=env.get("JWT_REFRESH_SECRET") or None,
            host=env.get("HOST") or "127.0.0.1",
            port=_int(env, "PORT", 3001, minimum=0),
            frontend_url=env.get("FRONTEND_URL") or None,
            smtp_url=env.get("SMTP_URL") or None,
            data_dir=Path(env.get("SYNCD_DATA_DIR") or "./syncd-data"),
            auto_create_notes=_bool(env, "SYNCD_AUTO_CREATE_NOTES", False),
            prosemirror_field=env.get("SYNCD_PROSEMIRROR_FIELD") or "prosemirror",
            compact_interval=_float(env, "SYNCD_COMPACT_INTERVAL", 30.0),
            log_level=(env.get("SYNCD_LOG_LEVEL") or "info").lower(),
            limits=limits,
        )
