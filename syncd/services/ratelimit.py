"""Rate limits (the `limits` library): REST calls per user and per IP, WebSocket connection
attempts per IP, and messages and bytes per WebSocket connection.

Per-user and per-IP counters are shared by every instance in scaled mode (Redis storage)
and kept in process when embedded. Per-connection counters live in the connection: it
lives on one instance, and neither a Redis round trip nor the library's storage per frame
would be cheap next to the frame itself; the limits are still `limits` items. When Redis
cannot be reached the limiter lets the request through (and logs and counts it): a
limiter outage must not become a service outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, cast

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from syncd import metrics
from syncd.bus.keys import Keys, key_part
from syncd.settings import RateLimits

log = logging.getLogger(__name__)


def client_ip(scope: Mapping[str, Any]) -> str:
    """The address limits per IP count against (after uvicorn's proxy-header handling)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def parse_limit(text: str) -> RateLimitItem | None:
    """A limit item, or None when `text` is empty; ValueError when it does not parse."""
    return parse(text) if text.strip() else None


class _Window:
    """A fixed window counter for one connection: the amount and length of a `limits`
    item, counted in place (the library's storage costs ~7 µs a frame; this ~0.3)."""

    __slots__ = ("_amount", "_ends", "_length", "_used")

    def __init__(self, item: RateLimitItem) -> None:
        self._amount = item.amount
        self._length = item.get_expiry()
        self._ends = 0.0
        self._used = 0

    def hit(self, now: float, cost: int) -> bool:
        if now >= self._ends:
            self._ends = now + self._length
            self._used = 0
        self._used += cost
        return self._used <= self._amount


class ConnectionBudget:
    """Frames and bytes one WebSocket connection may still send in the current windows.

    A connection lives on one instance and its counters die with it, so they are kept in
    the connection rather than in a shared store.
    """

    __slots__ = ("_bytes", "_messages")

    def __init__(self, messages: RateLimitItem | None, size: RateLimitItem | None) -> None:
        self._messages = _Window(messages) if messages is not None else None
        self._bytes = _Window(size) if size is not None else None

    def allow(self, nbytes: int) -> bool:
        """Count one frame of `nbytes`; False once either limit is exceeded."""
        now = time.monotonic()
        if self._messages is not None and not self._messages.hit(now, 1):
            return False
        return self._bytes is None or self._bytes.hit(now, nbytes)


class RateLimiter:
    """Every limit of one process."""

    def __init__(
        self,
        settings: RateLimits,
        *,
        redis_url: str | None = None,
        redis_cluster: bool = False,
        prefix: str = "syncd",
    ) -> None:
        self.enabled = settings.enabled
        self._rest_user = parse_limit(settings.rest_per_user)
        self._rest_ip = parse_limit(settings.rest_per_ip)
        self._connects = parse_limit(settings.ws_connects_per_ip)
        self._ws_messages = parse_limit(settings.ws_messages)
        self._ws_bytes = parse_limit(settings.ws_bytes)
        # an "async+" URL gives an asyncio storage; the factory's type covers both kinds
        if redis_url is None:
            storage = cast(Storage, storage_from_string("async+memory://"))
        else:
            scheme, _, rest = redis_url.partition("://")
            if redis_cluster:  # `limits` has a storage of its own for Redis Cluster
                redis_url = f"{scheme}+cluster://{rest}"
            elif scheme.lower() == "unix":  # `limits` names redis-py's `unix://` so
                redis_url = f"redis+unix://{rest}"
            storage = cast(
                Storage,
                storage_from_string(
                    f"async+{redis_url}",
                    implementation="redispy",
                    key_prefix=Keys(prefix).rate_limits,
                ),
            )
        self._shared = FixedWindowRateLimiter(storage)

    async def check_rest(self, user_id: str | None, ip: str) -> float | None:
        """None when the call may go on, else the seconds until it may be retried."""
        if not self.enabled:
            return None
        checks = [("rest_ip", self._rest_ip, ip)]
        if user_id is not None:
            checks.insert(0, ("rest_user", self._rest_user, user_id))
        for name, item, key in checks:
            if item is None:
                continue
            retry = await self._hit(name, item, key)
            if retry is not None:
                return retry
        return None

    async def check_connect(self, ip: str) -> bool:
        """Count one WebSocket connection attempt from `ip`; False when over the limit."""
        if not self.enabled or self._connects is None:
            return True
        return await self._hit("ws_connect", self._connects, ip) is None

    def connection_budget(self) -> ConnectionBudget | None:
        """A fresh per-connection budget (None: no per-connection limits)."""
        if not self.enabled or (self._ws_messages is None and self._ws_bytes is None):
            return None
        return ConnectionBudget(self._ws_messages, self._ws_bytes)

    async def _hit(self, name: str, item: RateLimitItem, key: str) -> float | None:
        try:
            # user ids come from tokens: any text, encoded like every id in a key name
            if await self._shared.hit(item, name, key_part(key)):
                return None
            stats = await self._shared.get_window_stats(item, name, key_part(key))
        except Exception:
            metrics.ERRORS.labels("ratelimit").inc()
            log.exception("rate-limit storage failed; letting the request through")
            return None
        metrics.RATE_LIMITED.labels(name).inc()
        return max(1.0, stats.reset_time - time.time())
