"""Ephemeral cross-instance state in Redis: presence per note, who is online, instance stats.

Each is a hash whose fields carry their own expiry time (`exp`, epoch seconds): an instance
rewrites its fields every refresh interval, readers skip and delete fields past their
expiry, and the key's TTL is pushed forward on every write. So the entries of an instance
that died disappear within one TTL, and a hash nobody writes to any more vanishes whole.
Keys of one note share the hash tag `{note:<id>}`, of one user `{user:<id>}` (`syncd.bus.keys`:
the ids are encoded there, so no id can reach into another's key).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from redis.asyncio import Redis

from syncd import metrics
from syncd.bus.keys import Keys

log = logging.getLogger(__name__)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ExpiringHash:
    """Fields with their own expiry inside one Redis hash (see the module docstring)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def put(self, key: str, fields: Mapping[str, dict[str, Any]], ttl: float) -> None:
        if not fields:
            return
        expires = time.time() + ttl
        payload = {name: json.dumps({**value, "exp": expires}) for name, value in fields.items()}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=payload)
            pipe.pexpire(key, int(ttl * 1000) + 1000)
            await pipe.execute()

    async def drop(self, key: str, fields: Iterable[str]) -> None:
        names = list(fields)
        if names:
            await self._redis.hdel(key, *names)

    async def prune(self, key: str) -> int:
        """Delete expired fields now; returns about how many (writers may race)."""
        before = await self._redis.hlen(key)
        return max(before - len(await self.read(key)), 0)

    async def read(self, key: str) -> dict[str, dict[str, Any]]:
        """Live fields; expired ones are deleted on the way."""
        now = time.time()
        live: dict[str, dict[str, Any]] = {}
        expired: list[str] = []
        for raw_name, raw_value in (await self._redis.hgetall(key)).items():
            name = _text(raw_name)
            try:
                value = json.loads(raw_value)
                fresh = float(value.get("exp", 0)) > now
            except (ValueError, TypeError, AttributeError):
                log.warning("dropping a malformed entry %s in %s", name, key)
                metrics.ERRORS.labels("presence").inc()
                fresh = False
                value = None
            if fresh:
                live[name] = value
            else:
                expired.append(name)
        if expired:
            await self._redis.hdel(key, *expired)
        return live


class RedisPresence:
    """Presence entries per note, one field per connection."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._hash = ExpiringHash(redis)
        self._keys = Keys(prefix)

    def key(self, note_id: str) -> str:
        return self._keys.presence(note_id)

    async def put(self, note_id: str, entries: Iterable[dict[str, Any]], ttl: float) -> None:
        await self._hash.put(self.key(note_id), {e["connId"]: e for e in entries}, ttl)

    async def drop(self, note_id: str, conn_ids: Iterable[str]) -> None:
        await self._hash.drop(self.key(note_id), conn_ids)

    async def read(self, note_id: str) -> list[dict[str, Any]]:
        return list((await self._hash.read(self.key(note_id))).values())


class RedisOnline:
    """Which users have a connection (Socket.IO or y-websocket) on some instance."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._hash = ExpiringHash(redis)
        self._keys = Keys(prefix)

    def key(self, user_id: str) -> str:
        return self._keys.online(user_id)

    async def put(self, user_id: str, instance_id: str, connections: int, ttl: float) -> None:
        await self._hash.put(self.key(user_id), {instance_id: {"connections": connections}}, ttl)

    async def drop(self, user_id: str, instance_id: str) -> None:
        await self._hash.drop(self.key(user_id), [instance_id])

    async def online(self, user_id: str) -> bool:
        return bool(await self._hash.read(self.key(user_id)))


class RedisInstances:
    """Per-instance Socket.IO and y-websocket counts, for cluster-wide `/socket-stats`."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._hash = ExpiringHash(redis)
        self.key = Keys(prefix).socketio_instances

    async def put(self, instance_id: str, stats: dict[str, Any], ttl: float) -> None:
        await self._hash.put(self.key, {instance_id: stats}, ttl)

    async def drop(self, instance_id: str) -> None:
        await self._hash.drop(self.key, [instance_id])

    async def read(self) -> dict[str, dict[str, Any]]:
        return await self._hash.read(self.key)

    async def prune(self) -> int:
        """Forget instances that stopped refreshing (the cleanup job)."""
        return await self._hash.prune(self.key)
