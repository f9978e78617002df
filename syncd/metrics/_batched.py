"""Counter and histogram children updated in plain Python numbers on hot paths and moved
into prometheus-client in one go (`flush_batched`, run every second and before every
scrape by `syncd.metrics`).

Why: the room's flush, run once per room per loop turn, counted and timed itself with a
`Counter.inc` and two `Histogram.observe` calls, each taking prometheus-client's value
locks (one per value touched) and walking the bucket bounds; summed over a busy instance
that was a visible part of the CPU per delivery (see bench/README.md, `flush_cost.py`).
Here an increment is one addition, an observation one `bisect` and two additions.

prometheus-client has no public call that adds many observations at once, so `flush`
adds to the child's bucket and sum values (`_buckets`, `_sum`: the same value objects
its own `observe` increments, in both single- and multi-process mode). The unit tests
pin that the rendered values are exact after a flush, so a library upgrade that moves
them fails there, not in production.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any

_ALL: list[BatchedCounter | BatchedHistogram] = []


class BatchedCounter:
    """A counter child (`Counter(...).labels(...)` or a label-less counter) batched."""

    __slots__ = ("_child", "_pending")

    def __init__(self, child: Any) -> None:
        self._child = child
        self._pending: float = 0
        _ALL.append(self)

    def inc(self, amount: float = 1) -> None:
        self._pending += amount

    def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, 0
            self._child.inc(pending)


class BatchedHistogram:
    """A histogram child batched: counts per bucket and the sum, kept since the last flush."""

    __slots__ = ("_bounds", "_child", "_counts", "_sum")

    def __init__(self, child: Any, buckets: tuple[float, ...]) -> None:
        self._child = child
        # prometheus-client appends +Inf when the buckets lack it; so do we
        bounds = [float(b) for b in buckets]
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self._bounds = bounds
        self._counts = [0] * len(bounds)
        self._sum = 0.0
        if len(child._buckets) != len(bounds):
            raise ValueError("buckets differ from the histogram's")
        _ALL.append(self)

    def observe(self, amount: float) -> None:
        # the first bound >= amount: prometheus-client's `amount <= bound`
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum += amount

    def observe_many(self, amount: float, times: int) -> None:
        """`observe(amount)` `times` times (one bisect)."""
        self._counts[bisect_left(self._bounds, amount)] += times
        self._sum += amount * times

    def flush(self) -> None:
        counts = self._counts
        if not any(counts):
            return
        self._counts = [0] * len(counts)
        total, self._sum = self._sum, 0.0
        child = self._child
        child._sum.inc(total)
        for value, count in zip(child._buckets, counts, strict=True):
            if count:
                value.inc(count)


def flush_batched() -> None:
    """Move everything batched so far into the prometheus-client values."""
    for batched in _ALL:
        batched.flush()
