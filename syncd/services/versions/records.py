"""What the version service hands out."""

from __future__ import annotations

from dataclasses import dataclass

from syncd.services.versions.diff import TextDiff
from syncd.storage import VersionRecord


class VersionNotFound(LookupError):
    """No such version of the note (HTTP 404)."""


@dataclass(frozen=True, slots=True)
class VersionContent:
    record: VersionRecord
    text: str
    json: dict[str, object]


@dataclass(frozen=True, slots=True)
class VersionDiff:
    number: int
    #: the version compared against; None: the current content
    against: int | None
    diff: TextDiff
