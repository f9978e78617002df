"""Version history of notes (snapshots, diffs, restores) and its retention policy."""

from syncd.versions.diff import TextDiff, text_diff
from syncd.versions.records import VersionContent, VersionDiff, VersionNotFound
from syncd.versions.retention import versions_to_drop
from syncd.versions.service import VersionService

__all__ = [
    "TextDiff",
    "VersionContent",
    "VersionDiff",
    "VersionNotFound",
    "VersionService",
    "text_diff",
    "versions_to_drop",
]
