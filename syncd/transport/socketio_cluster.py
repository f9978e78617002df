"""Socket.IO across instances on a Redis Cluster: a python-socketio client manager over
sharded pub/sub (`SPUBLISH` / `SSUBSCRIBE`, Redis 7+).

python-socketio's own `AsyncRedisManager` speaks to one Redis: given a cluster node it works
only while that node lives (its listener retries the same address forever after a
failover). Its documented extension point is a subclass of `AsyncPubSubManager` that
implements `_publish` and `_listen`; this one does that over the shared `RedisCluster`
client. Sharded pub/sub rather than classic `PUBLISH` because a shard channel lives on the
shard that owns its slot (classic messages are broadcast to every node of the cluster),
and redis-py's `ClusterPubSub` follows a shard channel to the new owner of its slot after a
failover; the listener below rebuilds its subscription on any error it still sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

# the asyncio base of python-socketio's pub/sub managers (the package's top level
# re-exports only the threaded one)
from socketio.async_pubsub_manager import AsyncPubSubManager

from syncd import metrics
from syncd.backoff import Backoff

log = logging.getLogger(__name__)

#: seconds one poll of the subscription waits for a message
POLL_SECONDS = 1.0


class ClusterSocketManager(AsyncPubSubManager):
    """`AsyncRedisManager`'s role on a Redis Cluster (same channel, same messages)."""

    name = "rediscluster"

    def __init__(self, cluster: RedisCluster, *, channel: str, write_only: bool = False) -> None:
        super().__init__(channel=channel, write_only=write_only)
        self._cluster = cluster
        #: set while the listener holds a live subscription (start-up waits on it)
        self.subscribed = asyncio.Event()

    async def _publish(self, data: Any) -> None:
        # At most once, as python-socketio's Redis manager: an event emitted while the
        # channel's shard fails over is logged, counted and dropped, never queued.
        try:
            await self._cluster.spublish(self.channel, self.json.dumps(data))
        except (RedisError, OSError) as exc:
            metrics.ERRORS.labels("socketio").inc()
            log.warning("Socket.IO publish on the cluster failed: %s", exc)

    async def _listen(self) -> AsyncIterator[Any]:
        channel = self.channel.encode()
        backoff = Backoff(0.05, 5.0)
        while True:
            pubsub = self._cluster.pubsub()
            try:
                await pubsub.ssubscribe(self.channel)
                self.subscribed.set()
                while True:
                    message = await pubsub.get_sharded_message(
                        ignore_subscribe_messages=True, timeout=POLL_SECONDS
                    )
                    backoff.reset()
                    if (
                        message is not None
                        and message.get("type") in ("smessage", b"smessage")
                        and message.get("channel") == channel
                    ):
                        yield message["data"]
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                metrics.ERRORS.labels("socketio").inc()
                delay = backoff.next()
                log.warning("Socket.IO listener on the cluster: %s; again in %.2fs", exc, delay)
                self.subscribed.clear()
                await asyncio.sleep(delay)
                # the slot map may be stale (a failover): read it again before resubscribing
                with contextlib.suppress(RedisError, OSError):
                    await self._cluster.nodes_manager.initialize()
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
