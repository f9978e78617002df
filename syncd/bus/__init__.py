"""Cross-instance fan-out and the durable update log behind it."""

from syncd.bus.local import LocalBus

__all__ = ["LocalBus"]
