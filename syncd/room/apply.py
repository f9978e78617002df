"""`Doc.apply_update` for a room's doc, without pycrdt's Python transaction wrapper.

pycrdt's `Doc.apply_update` makes a Python `Transaction` (or re-enters the current one):
six Python calls (`transaction`, `__init__`, `__enter__`, `forbid_read_transaction`,
`__exit__`, the method itself) around the one call into yrs, which cost more than yrs's
apply of a keystroke (callgrind, `bench/inbound_cost.py`). A room's doc is a plain
`Doc`: no pydantic model, no multithreading lock, and nobody observes it (observers'
errors are what pycrdt's `__exit__` collects), so the same yrs calls are made here
directly: into the current read-write transaction when there is one (a burst, see
`Room.burst`), else in a transaction of their own, committed and dropped as pycrdt's
`__exit__` does, on success and on failure alike. Any other doc goes through pycrdt.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Doc
from pycrdt._transaction import ReadTransaction

__all__ = ["apply_update"]


def apply_update(doc: Doc[Any], update: bytes) -> None:
    """What `doc.apply_update(update)` does, in fewer Python calls (module docstring).
    Raises what pycrdt raises (ValueError, a Rust panic)."""
    current = doc._txn
    if current is not None:
        raw = current._txn
        if raw is None or isinstance(current, ReadTransaction):
            doc.apply_update(update)  # pycrdt's own error (or behaviour) for these
            return
        doc._doc.apply_update(raw, update)
        return
    if doc._Model is not None or doc._allow_multithreading or doc._exceptions:
        doc.apply_update(update)
        return
    inner = doc._doc
    raw = inner.create_transaction()
    try:
        inner.apply_update(raw, update)
    finally:
        try:
            raw.commit()
        finally:
            raw.drop()
    if doc._exceptions:  # an observer's error, as pycrdt's `__exit__` raises it
        exceptions = tuple(doc._exceptions)
        doc._exceptions.clear()
        raise ExceptionGroup("Observer callback error", exceptions)
