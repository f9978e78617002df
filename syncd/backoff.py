"""Capped exponential backoff: the one formula of every loop that retries (the bus's
stream reader and pub/sub listener, the presence worker, job retries)."""

from __future__ import annotations


def capped_delay(first: float, cap: float, attempt: int) -> float:
    """The wait after failed attempt `attempt` (1 for the first failure): `first`,
    doubled per further failure, never above `cap`. No jitter: an outage is probed at a
    predictable pace, and each loop is one per process, so there is no herd to spread."""
    return min(cap, first * 2 ** max(attempt - 1, 0))


class Backoff:
    """The delays of one retrying loop: `next()` after a failure, `reset()` after a
    success."""

    __slots__ = ("_cap", "_first", "failures")

    def __init__(self, first: float = 0.05, cap: float = 5.0) -> None:
        self._first = first
        self._cap = cap
        #: consecutive failures so far
        self.failures = 0

    def next(self) -> float:
        """Count a failure; the delay to wait before trying again."""
        self.failures += 1
        return capped_delay(self._first, self._cap, self.failures)

    def reset(self) -> None:
        self.failures = 0
