"""Refresh-token records in Redis (scaled mode): keys expire with the tokens.

Keys of one family share the hash tag `{rt:<family>}` (Redis Cluster: one slot, so one
script may touch them all; `syncd.bus.keys` builds them, the family and jti encoded):
- `<prefix>:{rt:<family>}:t:<jti>`: "active" or "used", expiring with the token;
- `<prefix>:{rt:<family>}:revoked`: present once the family is revoked (logout, replay),
  expiring after the longest a token of the family can live.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from syncd.bus.keys import Keys
from syncd.storage import Rotation

# KEYS: presented token, family revoked flag, new token.
# ARGV: new token's ttl (ms), family flag ttl (ms).
_ROTATE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'revoked' end
local state = redis.call('GET', KEYS[1])
if not state then return 'unknown' end
if state == 'active' then
  redis.call('SET', KEYS[1], 'used', 'KEEPTTL')
  redis.call('SET', KEYS[3], 'active', 'PX', ARGV[1])
  return 'ok'
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 'reused'
"""


# As _ROTATE, but a presented token with no record is one minted by the CRM back end:
# record it as spent until its own expiry (ARGV[3]) and issue the new one.
_ADOPT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'revoked' end
local state = redis.call('GET', KEYS[1])
if not state then
  redis.call('SET', KEYS[1], 'used', 'PX', ARGV[3])
  redis.call('SET', KEYS[3], 'active', 'PX', ARGV[1])
  return 'ok'
end
if state == 'active' then
  redis.call('SET', KEYS[1], 'used', 'KEEPTTL')
  redis.call('SET', KEYS[3], 'active', 'PX', ARGV[1])
  return 'ok'
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 'reused'
"""


class RedisRefreshRecords:
    """`RefreshRecords` over Redis strings with TTLs; rotation is one Lua script."""

    def __init__(self, redis: Redis, *, prefix: str = "syncd", max_ttl: int = 30 * 24 * 3600):
        self._redis = redis
        self._keys = Keys(prefix)
        self._max_ttl_ms = max_ttl * 1000
        self._rotate = redis.register_script(_ROTATE)
        self._adopt = redis.register_script(_ADOPT)

    def _token_key(self, family: str, jti: str) -> str:
        return self._keys.refresh_token(family, jti)

    def _family_key(self, family: str) -> str:
        return self._keys.refresh_family(family)

    async def issue(self, jti: str, family: str, user_id: str, expires_at: float) -> None:
        del user_id  # the token carries it; Redis only needs the state
        ttl = int((expires_at - time.time()) * 1000)
        if ttl > 0:  # an already expired token needs no record: it is refused anyway
            await self._redis.set(self._token_key(family, jti), "active", px=ttl)

    async def rotate(
        self, jti: str, family: str, new_jti: str, user_id: str, expires_at: float
    ) -> Rotation:
        del user_id
        keys = [
            self._token_key(family, jti),
            self._family_key(family),
            self._token_key(family, new_jti),
        ]
        result = await self._rotate(keys=keys, args=[_ttl_ms(expires_at), self._max_ttl_ms])
        return Rotation(result.decode() if isinstance(result, bytes) else result)

    async def adopt(
        self,
        jti: str,
        family: str,
        spent_until: float,
        new_jti: str,
        user_id: str,
        expires_at: float,
    ) -> Rotation:
        del user_id
        keys = [
            self._token_key(family, jti),
            self._family_key(family),
            self._token_key(family, new_jti),
        ]
        spent_ms = _ttl_ms(spent_until)
        # A revoked family must stay revoked as long as its first token could be presented.
        family_ms = max(self._max_ttl_ms, spent_ms)
        result = await self._adopt(keys=keys, args=[_ttl_ms(expires_at), family_ms, spent_ms])
        return Rotation(result.decode() if isinstance(result, bytes) else result)

    async def revoke(self, family: str, until: float | None = None) -> None:
        ttl = self._max_ttl_ms if until is None else max(self._max_ttl_ms, _ttl_ms(until))
        await self._redis.set(self._family_key(family), "1", px=ttl)

    async def purge_expired(self) -> int:
        """Nothing to do: Redis expires the keys itself."""
        return 0


def _ttl_ms(expires_at: float) -> int:
    return max(1, int((expires_at - time.time()) * 1000))
