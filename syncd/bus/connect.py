"""The one place a shared Redis client is made: a plain client, or redis-py's cluster
client when `REDIS_URL` names a Redis Cluster (`redis+cluster://`, SYNCD_REDIS_CLUSTER=1).

Every user of the shared client (streams, compaction, pub/sub, presence, caches, refresh
tokens, webhook windows) keeps its multi-key commands, scripts and transactions within one
hash tag, so the same code runs on either (one exception: on a single Redis, `RedisBus`
appends a turn's docs in one script; on a cluster it pipelines them instead);
`RedisCluster` offers the same command API, and is handed around typed as `Redis`. The
stream reader is the other exception that has to know (`XREAD` over many docs is
multi-slot): `RedisBus` picks `ClusterStreamReader` for it.
"""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster


def open_redis(url: str, *, cluster: bool) -> Redis:
    """A client for `url`; on a cluster, `url` is any one node (the seed)."""
    if cluster:
        return cast(Redis, RedisCluster.from_url(url))
    return Redis.from_url(url)
