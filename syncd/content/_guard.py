"""Refuse a Yjs update written over REST when it would bring unsafe content into a note."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pycrdt

from ._safety import find_unsafe
from .prosemirror import doc_to_json

__all__ = ["check_update_safe"]


def check_update_safe(doc: pycrdt.Doc[Any], update: bytes, field: str, pointer: str = "") -> None:
    """Raise `UnsafeContent` when applying *update* to *doc* adds content outside the safe
    schema; *doc* is not changed (the update is tried on a copy).

    Content that Yjs clients already put in the doc is not held against the update: it
    is refused only when it brings a kind of unsafe content (by reason: "node type
    'script'", "mark 'link': this 'href' is an unsafe URL") more often than the doc had
    it.  An update that pycrdt cannot apply passes here and is refused where it is
    really applied.
    """
    before = doc_to_json(doc, field)
    scratch: pycrdt.Doc[Any] = pycrdt.Doc()
    try:
        scratch.apply_update(doc.get_update())
        scratch.apply_update(update)
    except Exception:  # refused by pycrdt: the room's own apply refuses it, saying why
        return
    except BaseException as exc:  # pyo3's PanicException derives from BaseException
        if type(exc).__name__ != "PanicException":
            raise
        return
    found = find_unsafe(doc_to_json(scratch, field), pointer)
    added = Counter(e.reason for e in found) - Counter(
        e.reason for e in find_unsafe(before, pointer)
    )
    if added:
        # point at the last place with a new reason: a Yjs update appends more than it
        # prepends, and the earlier places of that reason are most likely the old ones
        raise next(e for e in reversed(found) if e.reason in added)
