"""The one place a shared Redis client is made: a plain client, or redis-py's cluster
client when `REDIS_URL` names a Redis Cluster (`redis+cluster://`, SYNCD_REDIS_CLUSTER=1).

Every user of the shared client (streams, compaction, pub/sub, presence, caches, refresh
tokens, webhook windows) keeps its multi-key commands, scripts and transactions within one
hash tag, so the same code runs on either (one exception: on a single Redis, `RedisBus`
appends a turn's docs in one `MULTI` block; on a cluster it pipelines them instead);
`RedisCluster` offers the same command API, and is handed around typed as `Redis`. The
stream reader is the other exception that has to know (`XREAD` over many docs is
multi-slot): `RedisBus` picks `ClusterStreamReader` for it.
"""

from __future__ import annotations

from typing import cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

#: connections the shared client of a single Redis opens at most
MAX_CONNECTIONS = 100
#: seconds a command waits for one of them to be free before it fails
POOL_TIMEOUT = 10.0


def open_redis(url: str, *, cluster: bool) -> Redis:
    """A client for `url`. On a cluster, `url` names one node or several, comma-separated
    (`redis://h1:7000,h2:7000/0`): the client starts from whichever answers, so an instance
    still starts while the first node named is the master that just failed."""
    if cluster:
        first, others = split_seeds(url)
        seeds = [ClusterNode(host, port) for host, port in others]
        return cast(Redis, RedisCluster.from_url(first, startup_nodes=seeds or None))
    # redis-py's default pool refuses a command past 100 connections in use
    # (`MaxConnectionsError`): a checkpoint compacting 100 rooms at once, or a busy turn's
    # background publishes, failed so. This one waits for a connection to be free instead.
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=POOL_TIMEOUT
    )
    return Redis.from_pool(pool)


def split_seeds(url: str) -> tuple[str, list[tuple[str, int]]]:
    """The URL of the first node named in `url`, and (host, port) of the others."""
    parts = urlsplit(url)
    auth, at, hosts = parts.netloc.rpartition("@")
    names = [name.strip() for name in hosts.split(",") if name.strip()]
    if not names:
        return url, []
    first = urlunsplit(parts._replace(netloc=f"{auth}{at}{names[0]}"))
    others = []
    for name in names[1:]:
        host, _, port = name.rpartition(":")
        others.append((host.strip("[]") or "localhost", int(port)) if host else (name, 6379))
    return first, others
