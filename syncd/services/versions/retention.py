"""Which old automatic versions to drop: a pure function of the list, the clock and the policy.

Kept always: every version somebody asked for (manual, labelled, restores) and the newest
`keep_recent` automatic ones. Older automatic versions are thinned to the newest one of each
UTC day, and dropped entirely once older than `max_age_days`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol


class VersionInfo(Protocol):
    @property
    def number(self) -> int: ...
    @property
    def automatic(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...


def versions_to_drop(
    versions: Iterable[VersionInfo], *, now: datetime, keep_recent: int, max_age_days: int
) -> list[int]:
    """Numbers of the versions the policy drops (ascending)."""
    automatic = sorted((v for v in versions if v.automatic), key=lambda v: v.number, reverse=True)
    oldest_kept = now - timedelta(days=max_age_days)
    days_seen: set[object] = set()
    drop: list[int] = []
    for index, version in enumerate(automatic):
        if index < keep_recent:
            days_seen.add(version.created_at.date())
            continue
        day = version.created_at.date()
        if version.created_at < oldest_kept or day in days_seen:
            drop.append(version.number)
        else:
            days_seen.add(day)
    return sorted(drop)
