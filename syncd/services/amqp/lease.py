"""Which instance publishes the AMQP outbox: exactly one at a time.

Scaled, every instance appends to the one outbox stream, and the instance that holds a
short Redis lease (`SET NX PX`, renewed by its holder well before it expires) publishes
it. One publisher is what keeps a note's messages in order and each published once; if the
holder dies (`kill -9`), its lease expires and another instance takes it and goes on from
the oldest message not yet confirmed (a message the dead one had published but not yet
removed goes out again: consumers dedupe by `message_id`).
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis

from syncd.bus.keys import Keys

#: how long a lease outlives its holder's last renewal
LEASE_TTL = 5.0

_HOLD = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Lease(Protocol):
    async def hold(self) -> bool:
        """Take or renew the lease; True while this instance holds it."""
        ...

    async def release(self) -> None: ...


class SoleLease:
    """Embedded: one process, always the publisher."""

    async def hold(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class RedisLease:
    def __init__(self, redis: Redis, prefix: str, instance_id: str, ttl: float = LEASE_TTL):
        self._redis = redis
        self._key = Keys(prefix).amqp_lease
        self._me = instance_id
        self._ttl_ms = int(ttl * 1000)

    async def hold(self) -> bool:
        held = await self._redis.eval(_HOLD, 1, self._key, self._me, self._ttl_ms)
        return bool(held)

    async def release(self) -> None:
        await self._redis.eval(_RELEASE, 1, self._key, self._me)
