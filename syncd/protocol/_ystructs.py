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

import re
from dataclasses import dataclass, field

from ._codec import MAX_SAFE_INTEGER
from ._errors import ProtocolError
from ._ycontent import TYPE_CONTENT, Cursor, limit, malformed, skip_content, surrogate_offsets
from ._ylimits import MAX_CLOCK, YLimits

__all__ = [
    "UpdateShape",
    "check_dependencies",
    "check_state_vector",
    "check_update",
    "plain_keystroke",
    "read_state_vector",
]

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


@dataclass(slots=True)
class UpdateShape:
    """What an update covers and what it points at, for `check_dependencies`."""

    #: per client: the clock its structs start at and the clock after them
    blocks: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: per client: the highest clock an origin or parent in the update points at
    refs: dict[int, int] = field(default_factory=dict)
    #: per client: the clock after the last one its delete ranges cover
    deletes: dict[int, int] = field(default_factory=dict)
    #: where integrating the update may split an item, as (client, clock): after a left
    #: origin, at a right origin, at both ends of a delete range (see `check_splits`)
    splits: list[tuple[int, int]] = field(default_factory=list)
    #: the clocks of the second UTF-16 unit of every character outside the BMP in the
    #: update's strings: an item split there is one yrs cannot encode again
    pairs: set[tuple[int, int]] = field(default_factory=set)

    def point_at(self, client: int, clock: int) -> None:
        if self.refs.get(client, -1) < clock:
            self.refs[client] = clock


def check_dependencies(shape: UpdateShape, state: dict[int, int]) -> None:
    """Refuse an update that needs structs the doc does not have (given its state vector
    as a dict): a client's structs starting past the doc's clock for it, an origin or
    parent past what the doc and the update hold, or a delete range past them.

    pycrdt keeps such an update pending until the gap is filled, and its integration of
    pending structs is where fuzzed updates crash the process (segfaults in pycrdt 0.14),
    so pycrdt never gets one: the room holds it until the gap is filled. A stock client
    sends one in a narrow race (an edit depending on offline changes before its sync
    step 2).
    """
    for client, (start, _end) in shape.blocks.items():
        if start > state.get(client, 0):
            raise ProtocolError(
                "update starts past the clock the server has for its client", kind="missing"
            )
    for client, clock in shape.refs.items():
        known = state.get(client, 0)
        block = shape.blocks.get(client)
        if block is not None:
            known = max(known, block[1])
        if clock >= known:
            raise ProtocolError("update points at structs the server does not have", kind="missing")
    for client, end in shape.deletes.items():
        known = state.get(client, 0)
        block = shape.blocks.get(client)
        if block is not None:
            known = max(known, block[1])
        if end > known:
            # yrs keeps such a delete pending and applies it when the structs come, after
            # every check of theirs (a split it makes there is one `check_splits` missed)
            raise ProtocolError("update deletes structs the server does not have", kind="missing")


def read_state_vector(data: bytes) -> dict[int, int]:
    """A state vector as a dict (no bounds beyond the cursor's: for trusted input)."""
    cur = Cursor(data)
    return {cur.uint(): cur.uint() for _ in range(cur.uint())}


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


def check_update(data: bytes, limits: YLimits) -> UpdateShape:
    """Raise `ProtocolError` unless `data` is a v1 update within `limits`; return what
    it covers and points at (see `check_dependencies`)."""
    shape = _typing_shape(data)
    if shape is not None:
        return shape
    cur = Cursor(data)
    shape = UpdateShape()
    _walk_structs(cur, limits, shape)
    _walk_delete_set(cur, limits, shape)
    if cur.left:
        raise malformed(f"{cur.left} trailing bytes after an update")
    return shape


# One keystroke as Yjs writes it: one client, one item with a left origin (and a right
# one when typed inside the text) and string content of 1 to 127 bytes, then an empty
# delete set or one range; every var-uint canonical and at most eight bytes.
_VAR = rb"((?:[\x80-\xff]{1,7}[\x01-\x7f])|[\x00-\x7f])"
_KEYSTROKE = re.compile(
    rb"\x01\x01" + _VAR * 2 + rb"(?:\x84|\xc4" + _VAR * 2 + rb")" + _VAR * 2 + rb"([\x01-\x7f])"
)
#: a delete set of one client with one range
_DELETE_ONE = re.compile(rb"\x01" + _VAR + rb"\x01" + _VAR * 2)
#: decoded var-uints of four bytes or more (client ids: a room has few), bounded
_WIDE: dict[bytes, int] = {}
_WIDE_MAX = 4096


def _var(raw: bytes) -> int:
    """The value of a var-uint the pattern matched (canonical, at most eight bytes)."""
    size = len(raw)
    if size == 1:
        return raw[0]
    if size == 2:
        return (raw[0] & 0x7F) | (raw[1] << 7)
    if size == 3:
        return (raw[0] & 0x7F) | ((raw[1] & 0x7F) << 7) | (raw[2] << 14)
    value = _WIDE.get(raw)
    if value is None:
        value = shift = 0
        for byte in raw:
            value |= (byte & 0x7F) << shift
            shift += 7
        if len(_WIDE) >= _WIDE_MAX:
            _WIDE.clear()
        _WIDE[raw] = value
    return value


def _typing_shape(data: bytes) -> UpdateShape | None:
    """The shape of a one-keystroke update, read at C speed, or `None`.

    Almost every update a room sees is one keystroke (see `_KEYSTROKE`). The general
    walk spends about 5-11 µs of Python calls on it, more than pycrdt takes to apply it,
    for every keystroke of every writer. A regular expression matches that one layout
    with the checks the walk would make on it (canonical var-uints, a known info byte, the
    string's bytes present and valid UTF-8 and not empty, clocks within u32, at most one
    delete range, nothing trailing); anything else, valid or not, goes to the general walk,
    which has the last word and the error messages. The caps of `YLimits` are all at least
    1,024, above the one client, one struct and one range matched here. No depth needs
    tracking: with no shared type made in the update, every parent depth is zero.
    """
    match = _KEYSTROKE.match(data)
    if match is None:
        return None
    client_raw, start_raw, first, first_clock, second, second_clock, size_raw = match.groups()
    pos = match.end()
    stop = pos + size_raw[0]
    end = len(data)
    if stop >= end:
        return None
    raw = data[pos:stop]
    surrogates: list[int] = []
    if raw.isascii():
        units = stop - pos
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        units = len(text.encode("utf-16-le")) >> 1
        if units != len(text):  # characters outside the BMP: where their halves meet
            surrogates = surrogate_offsets(text)
    deleted: tuple[int, int, int] | None = None
    if stop + 1 != end or data[stop]:  # not an empty delete set: one range, or refused
        deletes = _DELETE_ONE.fullmatch(data, stop)
        if deletes is None:
            return None
        deleter_raw, clock_raw, length_raw = deletes.groups()
        deleter, deleted_start = _var(deleter_raw), _var(clock_raw)
        deleted_end = deleted_start + _var(length_raw)
        if deleter > MAX_SAFE_INTEGER or deleted_end > MAX_CLOCK + 1:
            return None
        deleted = (deleter, deleted_start, deleted_end)
    client = _var(client_raw)
    start = _var(start_raw)
    origin = _var(second)
    clock = _var(second_clock)
    if (
        client > MAX_SAFE_INTEGER
        or start + units > MAX_CLOCK + 1
        or origin > MAX_SAFE_INTEGER
        or clock > MAX_CLOCK
    ):
        return None
    refs = {origin: clock}
    # in the order the walk finds them: left origin, right origin, delete range
    if first is None:  # 0x84: `second` is the left origin
        splits = [(origin, clock + 1)]
    else:  # 0xc4: `first` is the left origin, `second` the right one
        right = (origin, clock)
        origin = _var(first)
        clock = _var(first_clock)
        if origin > MAX_SAFE_INTEGER or clock > MAX_CLOCK:
            return None
        if refs.get(origin, -1) < clock:
            refs[origin] = clock
        splits = [(origin, clock + 1), right]
    deleted_to: dict[int, int] = {}
    if deleted is not None:
        deleter, deleted_start, deleted_end = deleted
        splits += ((deleter, deleted_start), (deleter, deleted_end))
        deleted_to[deleter] = deleted_end
    pairs = {(client, start + offset) for offset in surrogates}
    return UpdateShape({client: (start, start + units)}, refs, deleted_to, splits, pairs)


#: what `plain_keystroke` returns: client, start clock, end clock, left origin (client,
#: clock), right origin (client, clock; -1, -1 when there is none)
KeystrokeIds = tuple[int, int, int, int, int, int, int]


def plain_keystroke(data: bytes) -> KeystrokeIds | None:
    """The IDs of the commonest update of all, or `None` for any other (valid or not).

    That update is one keystroke (`_KEYSTROKE`) of ASCII text with an empty delete set:
    what a writer sends for almost every character typed. It holds no surrogate pair and
    deletes nothing, so its whole `UpdateShape` is these IDs (blocks `{client: (start,
    end)}`, refs and splits from the origins) and a room can check its dependencies and
    splits from them without building one (`Room._apply_keystroke`). Everything the
    general walk would refuse in such a frame is refused here by returning `None`, so the
    general walk decides, with its error messages; the unit tests compare both.
    """
    match = _KEYSTROKE.match(data)
    if match is None:
        return None
    client_raw, start_raw, first, first_clock, second, second_clock, size_raw = match.groups()
    pos = match.end()
    stop = pos + size_raw[0]
    # the empty delete set is the last byte; the string is ASCII, so each byte one clock
    if stop + 1 != len(data) or data[stop] or not data[pos:stop].isascii():
        return None
    # `_var` inlined where it is cheap: a client id is wide (cached), clocks short
    client = _WIDE.get(client_raw)
    if client is None:
        client = _var(client_raw)
    size = len(start_raw)
    start = (
        start_raw[0]
        if size == 1
        else (start_raw[0] & 0x7F) | (start_raw[1] << 7)
        if size == 2
        else _var(start_raw)
    )
    origin = client if second == client_raw else _var(second)
    size = len(second_clock)
    clock = (
        second_clock[0]
        if size == 1
        else (second_clock[0] & 0x7F) | (second_clock[1] << 7)
        if size == 2
        else _var(second_clock)
    )
    end = start + stop - pos
    if (
        client > MAX_SAFE_INTEGER
        or end > MAX_CLOCK + 1
        or origin > MAX_SAFE_INTEGER
        or clock > MAX_CLOCK
    ):
        return None
    if first is None:  # 0x84: `second` is the left origin
        return client, start, end, origin, clock, -1, -1
    left = client if first == client_raw else _var(first)
    left_clock = _var(first_clock)
    if left > MAX_SAFE_INTEGER or left_clock > MAX_CLOCK:
        return None
    return client, start, end, left, left_clock, origin, clock


def _walk_structs(cur: Cursor, limits: YLimits, shape: UpdateShape) -> None:
    clients = cur.count("clients", limits.max_clients, _MIN_CLIENT)
    budget = limits.max_structs
    seen: set[int] = set()
    pairs: list[int] = []
    # How deep each type made in this update sits, keyed by its item's ID, and the depth
    # of the parent of every item (by its first and last ID, which is what right and left
    # origins point at); items whose parent is outside the update count from zero.
    type_depth: dict[tuple[int, int], int] = {}
    parent_depth: dict[tuple[int, int], int] = {}
    for _ in range(clients):
        structs = cur.count("structs", budget, _MIN_STRUCT)
        budget -= structs
        client = cur.uint()
        clock = start = cur.uint()
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
                depth = _walk_item_header(cur, info, limits, type_depth, parent_depth, shape)
                length = skip_content(cur, ref, limits, pairs)
                if pairs:
                    shape.pairs.update((client, clock + offset) for offset in pairs)
                    pairs.clear()
                parent_depth[(client, clock)] = depth
                parent_depth[(client, clock + length - 1)] = depth
                if ref == TYPE_CONTENT:
                    if depth >= limits.max_type_depth:
                        raise limit(f"shared types nested deeper than {limits.max_type_depth}")
                    type_depth[(client, clock)] = depth + 1
            clock += length
            if clock > MAX_CLOCK + 1:
                raise malformed("a clock beyond 2**32 - 1 in an update")
        shape.blocks[client] = (start, clock)


def _walk_item_header(
    cur: Cursor,
    info: int,
    limits: YLimits,
    type_depth: dict[tuple[int, int], int],
    parent_depth: dict[tuple[int, int], int],
    shape: UpdateShape,
) -> int:
    """Read origins, parent and key; return the nesting depth of the item's parent."""
    depth = 0
    if info & _HAS_ORIGIN:
        origin = (cur.uint(), _clock(cur))
        shape.point_at(*origin)
        shape.splits.append((origin[0], origin[1] + 1))
        depth = parent_depth.get(origin, 0)
    if info & _HAS_RIGHT_ORIGIN:
        origin = (cur.uint(), _clock(cur))
        shape.point_at(*origin)
        shape.splits.append(origin)
        depth = max(depth, parent_depth.get(origin, 0))
    if info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):
        return depth  # the parent is the origin's; the key bit carries nothing here
    parent_is_named = cur.uint()
    if parent_is_named == 1:
        cur.string(limits.max_key_bytes)  # a root type
    elif parent_is_named == 0:
        parent = (cur.uint(), _clock(cur))
        shape.point_at(*parent)
        depth = type_depth.get(parent, 0)
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


def _walk_delete_set(cur: Cursor, limits: YLimits, shape: UpdateShape) -> None:
    clients = cur.count("delete-set clients", limits.max_clients, _MIN_PAIR)
    budget = limits.max_delete_ranges
    splits = shape.splits
    for _ in range(clients):
        client = cur.uint()
        ranges = cur.count("delete ranges", budget, _MIN_PAIR)
        budget -= ranges
        for _ in range(ranges):
            clock = cur.uint()
            end = clock + cur.uint()
            if end > MAX_CLOCK + 1:
                raise malformed("a delete range beyond clock 2**32 - 1")
            splits += ((client, clock), (client, end))
            if shape.deletes.get(client, 0) < end:
                shape.deletes[client] = end
