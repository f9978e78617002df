"""Note events every instance must act on (rights changed, note deleted), carried between
instances on Redis pub/sub.

This is only the wire: `syncd.wiring` publishes this instance's events here and hands
what arrives from the other instances (never its own: each message names its origin) to
the typed events bus, where the same subscribers handle local and remote events.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from syncd.bus.keys import Keys

log = logging.getLogger(__name__)

#: (kind, note id) of an event that another instance published
EventHandler = Callable[[str, str], Awaitable[None]]


class RedisEvents:
    """Publishes to and receives from the `events` channel of `keys`."""

    def __init__(
        self, redis: Redis, instance_id: str, keys: Keys, handler: EventHandler | None
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._instance_id = instance_id
        self._handler = handler

    async def publish(self, kind: str, note_id: str) -> None:
        """Tell the other instances (this one handled the event itself already)."""
        message = json.dumps({"origin": self._instance_id, "kind": kind, "note": note_id})
        await self._redis.publish(self._keys.events, message)

    async def receive(self, data: bytes) -> None:
        """A message from the events channel (called by the bus's pub/sub listener)."""
        try:
            event = json.loads(data)
            origin, kind, note_id = event["origin"], event["kind"], event["note"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed note event: %r", data[:200])
            return
        if origin != self._instance_id and self._handler is not None:
            await self._handler(kind, note_id)
