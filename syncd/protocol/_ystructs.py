"""A strict walk over Yjs state vectors and v1 updates, before pycrdt sees them.

pycrdt (yrs) sizes its tables from the counts declared inside a state vector or an
update before checking them against the data: a 12-byte sync step 1 declaring 300
million clients costs it half a gigabyte. These walkers read the same layout (yjs
`src/utils/encoding.js` `writeStructs`/`readClientsStructRefs`, `DeleteSet.js`,
`Item.js`) without building anything, and refuse a frame when any declared count or
length cannot fit in the bytes left, when it passes a cap of `YLimits`, when a clock
would pass what yrs can hold, or when anything a stock Yjs client never writes
appears (unknown content, zero lengths, a client twice, trailing bytes).

Layout of an update: structs, then a delete set.

- structs: ``n_clients``, then per client ``n_structs client clock`` and the structs;
  a struct is an info byte whose low five bits pick GC (0, a length), skip (10, a
  length) or an item: left origin ID if bit 7, right origin ID if bit 6, else the parent
  (``1`` + type name, or ``0`` + item ID) and, if bit 5, the key in a map; then content.
- delete set: ``n_clients``, then per client ``client n_ranges`` and ``clock length``
  pairs.
- state vector: ``n_clients``, then ``client clock`` pairs.
"""

from __future__ import annotations

from ._ycontent import TYPE_CONTENT, Cursor, limit, malformed, skip_content
from ._ylimits import MAX_CLOCK, YLimits

__all__ = ["check_state_vector", "check_update"]

_GC = 0
_SKIP = 10
_HAS_ORIGIN = 0x80
_HAS_RIGHT_ORIGIN = 0x40
_HAS_PARENT_SUB = 0x20
_CONTENT = 0x1F
# smallest encodings: a struct (info + one byte), a client header (three var-uints),
# a state-vector entry or a delete range (two var-uints)
_MIN_STRUCT = 2
_MIN_CLIENT = 3
_MIN_PAIR = 2


def check_state_vector(data: bytes, limits: YLimits) -> None:
    """Raise `ProtocolError` unless `data` is a state vector within `limits`."""
    cur = Cursor(data)
    clients = cur.count("clients", limits.max_clients, _MIN_PAIR)
    seen: set[int] = set()
    for _ in range(clients):
        client = cur.uint()
        if cur.uint() > MAX_CLOCK:
            raise malformed("a clock beyond 2**32 - 1 in a state vector")
        if client in seen:
            raise malformed("a client twice in a state vector")
        seen.add(client)
    if cur.left:
        raise malformed(f"{cur.left} trailing bytes after a state vector")


def check_update(data: bytes, limits: YLimits) -> None:
    """Raise `ProtocolError` unless `data` is a v1 update within `limits`."""
    cur = Cursor(data)
    _walk_structs(cur, limits)
    _walk_delete_set(cur, limits)
    if cur.left:
        raise malformed(f"{cur.left} trailing bytes after an update")


def _walk_structs(cur: Cursor, limits: YLimits) -> None:
    clients = cur.count("clients", limits.max_clients, _MIN_CLIENT)
    budget = limits.max_structs
    seen: set[int] = set()
    # How deep each type made in this update sits, keyed by its item's ID, and the depth
    # of the parent of every item (by its first and last ID, which is what right and left
    # origins point at); items whose parent is outside the update count from zero.
    type_depth: dict[tuple[int, int], int] = {}
    parent_depth: dict[tuple[int, int], int] = {}
    for _ in range(clients):
        structs = cur.count("structs", budget, _MIN_STRUCT)
        budget -= structs
        client = cur.uint()
        clock = cur.uint()
        if client in seen:
            raise malformed("a client twice in an update")
        seen.add(client)
        for _ in range(structs):
            info = cur.byte()
            ref = info & _CONTENT
            if ref in (_GC, _SKIP):
                length = cur.uint()
                if length == 0:
                    raise malformed("a zero-length struct")
            else:
                depth = _walk_item_header(cur, info, limits, type_depth, parent_depth)
                length = skip_content(cur, ref, limits)
                parent_depth[(client, clock)] = depth
                parent_depth[(client, clock + length - 1)] = depth
                if ref == TYPE_CONTENT:
                    if depth >= limits.max_type_depth:
                        raise limit(f"shared types nested deeper than {limits.max_type_depth}")
                    type_depth[(client, clock)] = depth + 1
            clock += length
            if clock > MAX_CLOCK + 1:
                raise malformed("a clock beyond 2**32 - 1 in an update")


def _walk_item_header(
    cur: Cursor,
    info: int,
    limits: YLimits,
    type_depth: dict[tuple[int, int], int],
    parent_depth: dict[tuple[int, int], int],
) -> int:
    """Read origins, parent and key; return the nesting depth of the item's parent."""
    depth = 0
    if info & _HAS_ORIGIN:
        depth = parent_depth.get((cur.uint(), _clock(cur)), 0)
    if info & _HAS_RIGHT_ORIGIN:
        depth = max(depth, parent_depth.get((cur.uint(), _clock(cur)), 0))
    if info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):
        return depth  # the parent is the origin's; the key bit carries nothing here
    parent_is_named = cur.uint()
    if parent_is_named == 1:
        cur.string(limits.max_key_bytes)  # a root type
    elif parent_is_named == 0:
        depth = type_depth.get((cur.uint(), _clock(cur)), 0)
    else:
        raise malformed(f"parent info {parent_is_named} is neither 0 nor 1")
    if info & _HAS_PARENT_SUB:
        cur.string(limits.max_key_bytes)
    return depth


def _clock(cur: Cursor) -> int:
    clock = cur.uint()
    if clock > MAX_CLOCK:
        raise malformed("a clock beyond 2**32 - 1 in an ID")
    return clock


def _walk_delete_set(cur: Cursor, limits: YLimits) -> None:
    clients = cur.count("delete-set clients", limits.max_clients, _MIN_PAIR)
    budget = limits.max_delete_ranges
    for _ in range(clients):
        cur.uint()
        ranges = cur.count("delete ranges", budget, _MIN_PAIR)
        budget -= ranges
        for _ in range(ranges):
            clock = cur.uint()
            if clock + cur.uint() > MAX_CLOCK + 1:
                raise malformed("a delete range beyond clock 2**32 - 1")
