"""Configuration, read once from the environment into a frozen object that is passed down.

Seed names are kept (`DATABASE_URL`, `REDIS_URL`, `JWT_SECRET`, `PORT`, ...); syncd's own
limits and knobs are prefixed `SYNCD_`. No module reads the environment at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
    #: a busy room runs at most one fan-out pass per this many microseconds after a burst
    #: of three (`syncd.room.pacing`); 0: a pass whenever its flush comes round
    pass_interval_us: int = 0
    #: Hocuspocus endpoint: documents one socket may open at once
    hocuspocus_max_documents: int = 100
    #: Hocuspocus endpoint: largest stateless message relayed (UTF-8 bytes)
    hocuspocus_max_stateless_bytes: int = 64 * 1024
    #: Hocuspocus endpoint: a socket with no authenticated document after this is closed
    hocuspocus_auth_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Limits in the `limits` notation ("600/minute", "33554432/10 seconds"); "" = off."""

    enabled: bool = True
    rest_per_user: str = "600/minute"
    rest_per_ip: str = "1200/minute"
    ws_connects_per_ip: str = "300/minute"
    ws_messages: str = "300/second"
    ws_bytes: str = "33554432/10 seconds"


@dataclass(frozen=True, slots=True)
class VersionSettings:
    """Automatic versions: after `interval` seconds of continued change (0: only at session
    end); retention keeps `keep_recent` automatic ones, then one a day up to `max_age_days`."""

    interval: float = 600.0
    keep_recent: int = 20
    max_age_days: int = 90


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """Lifetimes of the pairs `/api/auth` issues and rotates."""

    access_ttl: int = 900
    refresh_ttl: int = 30 * 24 * 3600


def _limit(env: Mapping[str, str], name: str, default: str) -> str:
    from limits import parse

    raw = env.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in {"", "0", "off"}:
        return ""
    try:
        parse(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a limit like 600/minute, got {raw!r}") from None
    return raw


def _rate_limits(env: Mapping[str, str]) -> RateLimits:
    default = RateLimits()
    return RateLimits(
        enabled=_bool(env, "SYNCD_RATE_LIMITS", True),
        rest_per_user=_limit(env, "SYNCD_RATE_LIMIT_REST_USER", default.rest_per_user),
        rest_per_ip=_limit(env, "SYNCD_RATE_LIMIT_REST_IP", default.rest_per_ip),
        ws_connects_per_ip=_limit(env, "SYNCD_RATE_LIMIT_WS_CONNECTS", default.ws_connects_per_ip),
        ws_messages=_limit(env, "SYNCD_RATE_LIMIT_WS_MESSAGES", default.ws_messages),
        ws_bytes=_limit(env, "SYNCD_RATE_LIMIT_WS_BYTES", default.ws_bytes),
    )


def _redis_prefix(env: Mapping[str, str]) -> str:
    prefix = env.get("SYNCD_REDIS_PREFIX") or "syncd"
    if "{" in prefix or "}" in prefix:
        # a brace would become (part of) the hash tag of every key (Redis Cluster slots)
        raise SettingsError(f"SYNCD_REDIS_PREFIX cannot contain braces, got {prefix!r}")
    return prefix


_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def _redis_urls(env: Mapping[str, str]) -> tuple[str | None, bool, str | None]:
    """`REDIS_URL` as redis-py reads it, whether it names a Redis Cluster
    (`redis+cluster://` or `SYNCD_REDIS_CLUSTER=1`), and the Redis of the job queue.

    SAQ (the job queue) speaks to one Redis only, so a cluster deployment names a separate,
    non-cluster Redis for it in `SYNCD_JOBS_REDIS_URL`; without a cluster the job queue uses
    `REDIS_URL` unless told otherwise."""
    url = env.get("REDIS_URL") or None
    cluster = _bool(env, "SYNCD_REDIS_CLUSTER", False)
    if url is not None:
        scheme, sep, rest = url.partition("://")
        if scheme.lower() in _CLUSTER_SCHEMES:
            url, cluster = f"{_CLUSTER_SCHEMES[scheme.lower()]}{sep}{rest}", True
    jobs_url = env.get("SYNCD_JOBS_REDIS_URL") or None
    if url is None:
        if cluster:
            raise SettingsError("SYNCD_REDIS_CLUSTER=1 needs a REDIS_URL (a node of the cluster)")
        return None, False, None
    if jobs_url is not None and jobs_url.partition("://")[0].lower() in _CLUSTER_SCHEMES:
        raise SettingsError("SYNCD_JOBS_REDIS_URL must be a single Redis, not a cluster")
    if cluster and jobs_url is None:
        raise SettingsError(
            "REDIS_URL names a Redis Cluster, and the job queue (SAQ) does not support one: "
            "set SYNCD_JOBS_REDIS_URL to a separate, non-cluster Redis"
        )
    return url, cluster, jobs_url or url


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A duration where 0 means off."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{name} must be >= 0, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class CollabSettings:
    """Presence, sessions, notifications and background jobs."""

    #: run the job worker inside `syncd serve` (else only `syncd worker` runs jobs)
    run_worker: bool = True
    worker_concurrency: int = 4
    #: how often a worker looks for jobs enqueued by other instances
    job_poll_interval: float = 0.5
    #: first retry delay and cap of the exponential backoff
    retry_base: float = 1.0
    retry_max: float = 300.0
    cleanup_interval: float = 3600.0
    #: read notifications older than this are deleted by the cleanup job
    notification_retention_days: float = 30.0
    #: notes in the trash longer than this are purged by the cleanup job
    trash_retention_days: float = 30.0
    #: presence mirror / session heartbeat period; entries expire after 3 periods
    presence_refresh: float = 10.0
    #: no activity for this long shows a connection as "idle"
    presence_idle: float = 300.0
    mail_from: str = "syncd <no-reply@localhost>"


def _collab(env: Mapping[str, str]) -> CollabSettings:
    return CollabSettings(
        run_worker=_bool(env, "SYNCD_RUN_WORKER", True),
        worker_concurrency=_int(env, "SYNCD_WORKER_CONCURRENCY", 4, minimum=1),
        job_poll_interval=_float(env, "SYNCD_JOB_POLL_INTERVAL", 0.5),
        retry_base=_float(env, "SYNCD_JOB_RETRY_BASE", 1.0),
        retry_max=_float(env, "SYNCD_JOB_RETRY_MAX", 300.0),
        cleanup_interval=_float(env, "SYNCD_CLEANUP_INTERVAL", 3600.0),
        notification_retention_days=_float(env, "SYNCD_NOTIFICATION_RETENTION_DAYS", 30.0),
        trash_retention_days=_float(env, "SYNCD_TRASH_RETENTION_DAYS", 30.0),
        presence_refresh=_float(env, "SYNCD_PRESENCE_REFRESH", 10.0),
        presence_idle=_float(env, "SYNCD_PRESENCE_IDLE", 300.0),
        mail_from=env.get("SYNCD_MAIL_FROM") or "syncd <no-reply@localhost>",
    )


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Where note events are POSTed, signed per the Standard Webhooks spec (none: off)."""

    urls: tuple[str, ...] = ()
    #: `whsec_` + base64 key, shared with the receivers (checked when the app starts)
    secret: str | None = None
    #: event types sent (empty: all of them)
    events: tuple[str, ...] = ()
    #: at most one `note.updated` per note this often (and one at its session's end)
    debounce: float = 10.0
    #: one delivery attempt (connect + response) may take this long
    timeout: float = 10.0
    #: attempts per event and endpoint, with the jobs' exponential backoff between them
    attempts: int = 8
    #: an endpoint is disabled after this many deliveries in a row failed for good
    disable_after: int = 20
    #: after a secret rotation, the old secret also signs for this long (seconds)
    secret_grace: float = 86400.0


def _webhooks(env: Mapping[str, str]) -> WebhookSettings:
    urls = tuple(u.strip() for u in (env.get("SYNCD_WEBHOOK_URLS") or "").split(",") if u.strip())
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"SYNCD_WEBHOOK_URLS: {url!r} is not an http(s) URL")
    secret = env.get("SYNCD_WEBHOOK_SECRET") or None
    if urls and secret is None:
        raise SettingsError("SYNCD_WEBHOOK_URLS needs SYNCD_WEBHOOK_SECRET (whsec_...)")
    raw_events = env.get("SYNCD_WEBHOOK_EVENTS") or ""
    events = tuple(e.strip() for e in raw_events.split(",") if e.strip())
    return WebhookSettings(
        urls=urls,
        secret=secret,
        events=events,
        debounce=_float(env, "SYNCD_WEBHOOK_DEBOUNCE", 10.0),
        timeout=_float(env, "SYNCD_WEBHOOK_TIMEOUT", 10.0),
        attempts=_int(env, "SYNCD_WEBHOOK_ATTEMPTS", 8, minimum=1),
        disable_after=_int(env, "SYNCD_WEBHOOK_DISABLE_AFTER", 20, minimum=1),
        secret_grace=_float(env, "SYNCD_WEBHOOK_SECRET_GRACE", 86400.0),
    )


@dataclass(frozen=True, slots=True)
class AmqpSettings:
    """Note events to a RabbitMQ topic exchange (`RABBITMQ_URL`; None: off)."""

    url: str | None = None
    exchange: str = "syncd.events"
    #: messages the outbox holds while the broker is away; past that they are dropped
    #: (logged and counted), so a long outage cannot fill the disk or Redis
    outbox_max: int = 100_000

    @property
    def enabled(self) -> bool:
        return self.url is not None

    @property
    def safe_url(self) -> str:
        """The URL without its password, for log lines."""
        return redact_url(self.url or "")


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _amqp(env: Mapping[str, str]) -> AmqpSettings:
    url = (env.get("RABBITMQ_URL") or "").strip() or None
    exchange = (env.get("SYNCD_AMQP_EXCHANGE") or "syncd.events").strip()
    if not exchange or len(exchange) > 255 or exchange.startswith("amq."):
        raise SettingsError(
            f"SYNCD_AMQP_EXCHANGE must be 1-255 characters, not starting with amq.: {exchange!r}"
        )
    outbox_max = _int(env, "SYNCD_AMQP_OUTBOX_MAX", 100_000, minimum=1)
    if url is not None:
        _check_amqp_url(url)
    return AmqpSettings(url=url, exchange=exchange, outbox_max=outbox_max)


def _check_amqp_url(url: str) -> None:
    """Refuse at start what the broker client could never connect to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SettingsError(f"RABBITMQ_URL is not a valid URL: {exc}") from None
    if parts.scheme not in ("amqp", "amqps"):
        raise SettingsError(
            f"RABBITMQ_URL must start with amqp:// or amqps://, got {redact_url(url)!r}"
        )
    if not parts.hostname:
        raise SettingsError(f"RABBITMQ_URL has no host: {redact_url(url)!r}")
    if port == 0:
        raise SettingsError(f"RABBITMQ_URL has an invalid port: {redact_url(url)!r}")


def sqlite_url_in(data_dir: Path) -> str:
    """The default database: `syncd.db` in the data folder (`SYNCD_DATA_DIR`)."""
    return f"sqlite:///{data_dir / 'syncd.db'}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything syncd needs to know about its environment."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    #: `REDIS_URL` is a seed node of a Redis Cluster (`redis+cluster://`, SYNCD_REDIS_CLUSTER)
    redis_cluster: bool = False
    #: the (non-cluster) Redis of the job queue; `REDIS_URL` unless set otherwise
    jobs_redis_url: str | None = None
    redis_prefix: str = "syncd"
    #: replicas that must acknowledge a stream append (`WAIT`) before it counts as durable
    redis_wait_replicas: int = 0
    #: milliseconds an append waits for those acknowledgements before it is retried
    redis_wait_ms: int = 1000
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
    collab: CollabSettings = field(default_factory=CollabSettings)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    versions: VersionSettings = field(default_factory=VersionSettings)
    tokens: TokenSettings = field(default_factory=TokenSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    amqp: AmqpSettings = field(default_factory=AmqpSettings)
    #: seconds a cached note or permission look-up lives (0: no caching)
    cache_ttl: float = 60.0
    #: PROMETHEUS_MULTIPROC_DIR: metrics of several worker processes merged
    metrics_dir: Path | None = None

    @property
    def frontend_origins(self) -> tuple[str, ...]:
        """The origins CORS allows: `FRONTEND_URL` is one origin or a comma-separated list
        (the CRM and its staging site); a trailing `/` is dropped, as no `Origin` has one."""
        parts = (part.strip().rstrip("/") for part in (self.frontend_url or "").split(","))
        return tuple(part for part in parts if part)

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
            pass_interval_us=_int(env, "SYNCD_PASS_INTERVAL_US", 0, minimum=0),
            hocuspocus_max_documents=_int(env, "SYNCD_HOCUSPOCUS_MAX_DOCUMENTS", 100, minimum=1),
            hocuspocus_max_stateless_bytes=_int(
                env, "SYNCD_HOCUSPOCUS_MAX_STATELESS_BYTES", 64 * 1024, minimum=16
            ),
            hocuspocus_auth_timeout=_float(env, "SYNCD_HOCUSPOCUS_AUTH_TIMEOUT", 10.0),
        )
        redis_url, redis_cluster, jobs_redis_url = _redis_urls(env)
        data_dir = Path(env.get("SYNCD_DATA_DIR") or "./syncd-data")
        database_url = env.get("DATABASE_URL") or sqlite_url_in(data_dir)
        return cls(
            database_url=database_url,
            redis_url=redis_url,
            redis_cluster=redis_cluster,
            jobs_redis_url=jobs_redis_url,
            redis_prefix=_redis_prefix(env),
            redis_wait_replicas=_int(env, "SYNCD_REDIS_WAIT_REPLICAS", 0),
            redis_wait_ms=_int(env, "SYNCD_REDIS_WAIT_MS", 1000, minimum=1),
            jwt_secret=env.get("JWT_SECRET") or None,
            jwt_refresh_secret=env.get("JWT_REFRESH_SECRET") or None,
            host=env.get("HOST") or "127.0.0.1",
            port=_int(env, "PORT", 3001, minimum=0),
            frontend_url=env.get("FRONTEND_URL") or None,
            smtp_url=env.get("SMTP_URL") or None,
            data_dir=data_dir,
            auto_create_notes=_bool(env, "SYNCD_AUTO_CREATE_NOTES", False),
            prosemirror_field=env.get("SYNCD_PROSEMIRROR_FIELD") or "prosemirror",
            compact_interval=_float(env, "SYNCD_COMPACT_INTERVAL", 30.0),
            log_level=(env.get("SYNCD_LOG_LEVEL") or "info").lower(),
            limits=limits,
            collab=_collab(env),
            rate_limits=_rate_limits(env),
            versions=VersionSettings(
                interval=_seconds(env, "SYNCD_VERSION_INTERVAL", 600.0),
                keep_recent=_int(env, "SYNCD_VERSION_KEEP", 20, minimum=1),
                max_age_days=_int(env, "SYNCD_VERSION_MAX_AGE_DAYS", 90, minimum=1),
            ),
            tokens=TokenSettings(
                access_ttl=_int(env, "SYNCD_ACCESS_TOKEN_TTL", 900, minimum=1),
                refresh_ttl=_int(env, "SYNCD_REFRESH_TOKEN_TTL", 30 * 24 * 3600, minimum=1),
            ),
            webhooks=_webhooks(env),
            amqp=_amqp(env),
            cache_ttl=_seconds(env, "SYNCD_CACHE_TTL", 60.0),
            metrics_dir=Path(env["PROMETHEUS_MULTIPROC_DIR"])
            if env.get("PROMETHEUS_MULTIPROC_DIR")
            else None,
        )
