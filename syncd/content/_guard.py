"""Refuse a Yjs update written over REST when it would bring unsafe content into a note."""

from __future__ import annotations

from typing import Any

import pycrdt

from ._safety import UnsafeContent, find_unsafe
from .prosemirror import doc_to_json

__all__ = ["check_update_safe"]


def check_update_safe(doc: pycrdt.Doc[Any], update: bytes, field: str, pointer: str = "") -> None:
    """Raise `UnsafeContent` when applying *update* to *doc* adds content outside the safe
    schema; *doc* is not changed (the update is tried on a copy).

    Content that Yjs clients already put in the doc is not held against the update: it
    is refused only when it leaves more unsafe places than the doc had.  An update that
    pycrdt cannot apply passes here and is refused where it is really applied.
    """
    before = doc_to_json(doc, field)
    scratch: pycrdt.Doc[Any] = pycrdt.Doc()
    try:
        scratch.apply_update(doc.get_update())
        scratch.apply_update(update)
    except ValueError:  # malformed: the room's own apply refuses it, saying why
        return
    found = find_unsafe(doc_to_json(scratch, field), pointer)
    had = find_unsafe(before, pointer)
    if len(found) > len(had):
        raise _first_new(found, had)


def _first_new(after: list[UnsafeContent], before: list[UnsafeContent]) -> UnsafeContent:
    known = {(e.pointer, e.reason) for e in before}
    return next((e for e in after if (e.pointer, e.reason) not in known), after[0])
