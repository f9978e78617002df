"""Version history of notes (snapshots, diffs, restores) and its retention policy."""

from syncd.services.versions.diff import TextDiff, text_diff
from syncd.services.versions.records import VersionContent, VersionDiff, VersionNotFound
from syncd.services.versions.retention import versions_to_drop
from syncd.services.versions.service import VersionService

__all__ = [
    "TextDiff",
    "VersionContent",
    "VersionDiff",
    "VersionNotFound",
    "VersionService",
    "text_diff",
    "versions_to_drop",
]
