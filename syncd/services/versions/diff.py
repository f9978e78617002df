"""A readable text diff between two versions of a note (line based, difflib)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TextDiff:
    unified: str
    added: tuple[str, ...]
    removed: tuple[str, ...]


def text_diff(old: str, new: str, *, old_name: str, new_name: str) -> TextDiff:
    """Lines added and removed going from `old` to `new`, plus a unified diff of them."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    unified = "\n".join(difflib.unified_diff(old_lines, new_lines, old_name, new_name, lineterm=""))
    added: list[str] = []
    removed: list[str] = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            removed.extend(old_lines[i1:i2])
        if tag in ("replace", "insert"):
            added.extend(new_lines[j1:j2])
    return TextDiff(unified=unified, added=tuple(added), removed=tuple(removed))
