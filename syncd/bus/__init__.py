"""Cross-instance fan-out and the durable update log behind it.

`LocalBus`: the embedded mode (the store's update table, no other instance).
`RedisBus`: the scaled mode (one Redis stream per doc, Postgres snapshots).
"""

from syncd.bus.events import EventHandler, RedisEvents
from syncd.bus.local import LocalBus
from syncd.bus.redis import RedisBus

__all__ = ["EventHandler", "LocalBus", "RedisBus", "RedisEvents"]
