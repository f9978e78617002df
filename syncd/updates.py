"""Merging Yjs updates in bounded groups.

`pycrdt.merge_updates` costs grow with the square of how many updates it merges at once
(measured: 1,000 updates 3.8 ms, 10,000 0.35 s, 100,000 111 s, holding the GIL). Merging in
groups of 32, then merging the results the same way, gives the same update in near-linear
time (3,000 updates: 33 ms → 2.4 ms). Every layer that folds many updates uses this.
"""

from __future__ import annotations

from collections.abc import Sequence

from pycrdt import merge_updates

GROUP = 32


def merge(updates: Sequence[bytes]) -> bytes:
    """One update equivalent to applying all of `updates` (at least one)."""
    parts = list(updates)
    while len(parts) > 1:
        groups = [parts[i : i + GROUP] for i in range(0, len(parts), GROUP)]
        parts = [group[0] if len(group) == 1 else merge_updates(*group) for group in groups]
    return parts[0]
