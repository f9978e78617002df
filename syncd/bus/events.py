"""Note events that every instance must act on: rights changed, note deleted.

Embedded, the handler runs in process; scaled, the event also goes out on Redis pub/sub and
every other instance runs its handler (an instance handles its own events directly, so it
does not depend on the round trip).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from syncd.bus.keys import Keys

log = logging.getLogger(__name__)

EventHandler = Callable[[str, str], Awaitable[None]]


class LocalEvents:
    """One instance: publishing is calling the handler."""

    def __init__(self) -> None:
        self.handler: EventHandler | None = None

    async def publish(self, kind: str, note_id: str) -> None:
        if self.handler is not None:
            await self.handler(kind, note_id)


class RedisEvents(LocalEvents):
    """Handle locally, then tell the other instances through `syncd:events`."""

    def __init__(self, redis: Redis, instance_id: str, keys: Keys) -> None:
        super().__init__()
        self._redis = redis
        self._keys = keys
        self._instance_id = instance_id

    async def publish(self, kind: str, note_id: str) -> None:
        await super().publish(kind, note_id)
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
        if origin != self._instance_id and self.handler is not None:
            await self.handler(kind, note_id)
