"""Merging and compacting Yjs updates.

`merge`: `pycrdt.merge_updates` costs grow with the square of how many updates it merges at
once (measured: 1,000 updates 3.8 ms, 10,000 0.35 s, 100,000 111 s, holding the GIL).
Merging in groups of 32, then merging the results the same way, gives the same update in
near-linear time (3,000 updates: 33 ms → 2.4 ms). Every layer that folds many updates uses
this.

`compact_state`: what the compactions store as a snapshot. A merged update keeps every
update's items apart (and deleted items with their content); a Doc's encoding joins
adjacent items of one client and drops deleted content. Measured for 10,000 one-character
keystrokes of one client typed at the end of a Y.Text (1 in 20 a backspace), one update
each: merged 96 KB, Doc-encoded 19.5 KB; applying it to a fresh Doc 2.0 ms vs 0.27 ms
(100,000 keystrokes: 1.05 MB vs 207 KB, 37 ms vs 3.3 ms). A Doc's `get_update()` (a fresh
client's sync step 2) costs the same either way once loaded (0.04 ms; 100,000: 0.6 ms). When
consecutive keystrokes go to different types (the bench's coldload alternates a Y.Text and
a paragraph), nothing joins: 87 KB vs 82 KB, 2.6 ms vs 1.6 ms.

What a Doc's encoding leaves out (measured on pycrdt 0.14.13): a struct whose dependency is
missing (an earlier clock of its client, or the item it was inserted next to) stays pending
in the Doc and `Doc.get_update()` drops it (an update of clocks 3..5 applied alone encodes as
the empty update `00 00`); a delete of items the Doc does not hold stays pending and is
dropped too (a delete-only update applied alone: `00 00`). Comparing state vectors misses
the first case: `pycrdt.get_state(update)` counts only each client's clocks contiguous from
0, so an update with a gap has the very state vector of the Doc that left the structs after
the gap pending; and deletes add no clock. yrs also leaves structs pending when their
dependencies do arrive, but out of order in a later update: 750 updates of two clients
applied in a random order left some pending in 117 of 200 orders (one by one; in merged
groups of 32, 82 of 200). So `compact_state` checks directly: what each input holds beyond
the Doc's state vector (`pycrdt.get_update(part, state)`) must have no structs, and the
delete set that diff carries whole must add nothing to the Doc's. If not, it tries once
more from the union as one update (which settled all 82), and what is still pending is
merged into the Doc's encoding: nothing is lost, and what the Doc took in stays compact.

Applying stored updates in one transaction is not always what the room did: it applied them
one by one, and between two transactions yrs garbage-collects deleted items, so an item
whose parent was deleted (and collected) by then is fine live, and refused ("block parent
... must be deleted or shared ref type") when the same parent is still there in one
transaction. `compact_state` then tries once more with one transaction per update. It also
checks that the Doc's encoding covers exactly the Doc's state vector: pycrdt 0.14 can
encode a doc it cannot load again (an item split inside a UTF-16 surrogate pair shifts
every later clock of its client; the room refuses such updates, see
`syncd.protocol.check_splits`). What fails either way raises `CompactionError`, and the
compactions keep the log as it is.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import TypeVar

from pycrdt import Doc, get_state, get_update, merge_updates

from syncd.protocol import ProtocolError, read_state_vector

#: a Yjs v1 update that changes nothing (no structs, empty delete set)
EMPTY_UPDATE = b"\x00\x00"
GROUP = 32
#: an update this large (a snapshot) is applied on its own rather than merged into a group
LARGE = 4096


class CompactionError(ValueError):
    """pycrdt cannot fold these updates into one Doc encoding (it refuses them, panics, or
    encodes a doc it cannot load back); the caller keeps the updates as they are."""


def merge(updates: Sequence[bytes]) -> bytes:
    """One update equivalent to applying all of `updates` (at least one)."""
    parts = list(updates)
    while len(parts) > 1:
        parts = _merge_groups(parts)
    return parts[0]


def _merge_groups(parts: Sequence[bytes]) -> list[bytes]:
    groups = [parts[i : i + GROUP] for i in range(0, len(parts), GROUP)]
    return [group[0] if len(group) == 1 else merge_updates(*group) for group in groups]


def _chunks(updates: Sequence[bytes]) -> list[bytes]:
    """`updates` in order, small ones merged in groups of up to GROUP, large ones alone."""
    chunks: list[bytes] = []
    group: list[bytes] = []
    for update in updates:
        if len(update) >= LARGE:
            chunks.extend(_merge_groups(group))
            group = []
            chunks.append(update)
        else:
            group.append(update)
    chunks.extend(_merge_groups(group))
    return chunks


def compact_state(updates: Sequence[bytes]) -> bytes:
    """One update equivalent to applying all of `updates` (at least one), re-encoded by a
    Doc: as small as the doc gets, and cheap to load and to answer sync step 2 from.

    Whatever the Doc could not integrate (structs or deletes whose dependencies are
    missing) is kept: the result is then the Doc's encoding merged with what each input
    holds beyond the Doc's state vector (see the module docstring).

    Costs (the keystrokes above, holding the GIL): 10,000 updates 9.3 ms (merge: 8.8 ms),
    100,000 117 ms (merge: 105 ms); the usual compaction, a compact snapshot plus 1,000 new
    updates, 1.5 ms for the 10,000-keystroke doc and 7.1 ms for the 100,000 one (merge over
    a merged snapshot: 3.1 and 27 ms). Small updates are merged in groups before being
    applied: applying 10,000 one by one takes 20 ms (9 ms in one transaction) and leaves
    10,000 diffs to check.
    """
    return run_steps(compact_steps(updates))


_T = TypeVar("_T")
#: what `compact_steps` yields between two pieces of work; its return value is the result
Steps = Generator[None, None, bytes]


def run_steps(steps: Generator[None, None, _T]) -> _T:
    """Run a generator of steps (`compact_steps`) to its end at once; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def compact_steps(updates: Sequence[bytes]) -> Steps:
    """`compact_state` as a generator that yields between pieces of work (a merge of one
    group, one chunk applied, one chunk's diff), so an event loop can let other callbacks
    run between them: a doc's compaction (several ms of CPU for one 30 s checkpoint of a
    busy room) then holds the loop for no more than a slice. What it returns is exactly
    `compact_state`'s result. The Doc it builds is its own, so nothing else touches it
    between two steps. The rare fallbacks (something pending, a refused update) run
    without yielding."""
    try:
        chunks = yield from _chunks_steps(updates)
        return (yield from _compact_first(chunks))
    except BaseException as exc:
        first = _failure(exc)
    # As the room applied them (see the module docstring): each in its own transaction.
    try:
        return _compact(list(updates), one_by_one=True)
    except BaseException as exc:
        raise CompactionError(f"{first}; one by one: {_failure(exc)}") from None


def _chunks_steps(updates: Sequence[bytes]) -> Generator[None, None, list[bytes]]:
    """`_chunks`, yielding after each merged group."""
    chunks: list[bytes] = []
    group: list[bytes] = []
    for update in updates:
        if len(update) >= LARGE:
            chunks.extend((yield from _merge_groups_steps(group)))
            group = []
            chunks.append(update)
        else:
            group.append(update)
    chunks.extend((yield from _merge_groups_steps(group)))
    return chunks


def _merge_groups_steps(parts: Sequence[bytes]) -> Generator[None, None, list[bytes]]:
    merged: list[bytes] = []
    for i in range(0, len(parts), GROUP):
        group = parts[i : i + GROUP]
        merged.append(group[0] if len(group) == 1 else merge_updates(*group))
        yield
    return merged


def _compact_first(chunks: Sequence[bytes]) -> Steps:
    """`_compact(chunks, one_by_one=False)` with the common case (the Doc took in every
    chunk) in steps; the retry from the union runs at once."""
    compact, rests = yield from _encode_steps(chunks)
    if not rests:
        return compact
    compact, rests = _encode([merge([compact, *rests])], one_by_one=False)
    return merge([compact, *rests]) if rests else compact


def _encode_steps(chunks: Sequence[bytes]) -> Generator[None, None, tuple[bytes, list[bytes]]]:
    """`_encode(chunks, one_by_one=False)`, yielding after each chunk applied (all in one
    transaction of a Doc nothing else sees) and after each chunk's diff."""
    doc: Doc = Doc()
    with doc.transaction():
        for chunk in chunks:
            doc.apply_update(chunk)
            yield
    state = doc.get_state()
    compact = doc.get_update()
    yield
    if _clocks(get_state(compact)) != _clocks(state):
        raise CompactionError("the doc's encoding does not match its state vector")
    rests = []
    for chunk in chunks:
        rests.append(get_update(chunk, state))
        yield
    deletes = get_update(compact, state)
    if all(rest[0] == 0 for rest in rests) and merge([deletes, *rests]) == deletes:
        return compact, []
    return compact, rests


def _failure(exc: BaseException) -> str:
    """What pycrdt raised, as text; anything else (cancellation, exit) goes on up."""
    # a Rust panic surfaces as pyo3's PanicException, a BaseException
    if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
        raise exc
    return f"{type(exc).__name__}: {exc}"[:300]


def _compact(chunks: Sequence[bytes], *, one_by_one: bool) -> bytes:
    compact, rests = _encode(chunks, one_by_one=one_by_one)
    if not rests:
        return compact
    # Something stayed pending. Either its dependencies are missing, or they came in a
    # later chunk and yrs did not integrate it after all (it does not always, with updates
    # out of order). Once more from the union as one update, integrated in one pass. The
    # Doc holds every struct below its state vector, so the Doc's encoding plus the rests
    # is the union of all updates; with the Doc's encoding first, the merge keeps its
    # compact structs.
    compact, rests = _encode([merge([compact, *rests])], one_by_one=False)
    return merge([compact, *rests]) if rests else compact


def _encode(chunks: Sequence[bytes], *, one_by_one: bool) -> tuple[bytes, list[bytes]]:
    """The encoding of a Doc that `chunks` were applied to (in one transaction, or one
    each), and, if the Doc did not take in all of them, what each chunk holds beyond the
    Doc's state vector (else [])."""
    doc: Doc = Doc()
    if one_by_one:
        for chunk in chunks:
            doc.apply_update(chunk)
    else:
        with doc.transaction():
            for chunk in chunks:
                doc.apply_update(chunk)
    state = doc.get_state()
    compact = doc.get_update()
    if _clocks(get_state(compact)) != _clocks(state):
        raise CompactionError("the doc's encoding does not match its state vector")
    # What each chunk holds that the Doc's state vector does not cover: the structs the Doc
    # left pending, and the chunk's whole delete set.
    rests = [get_update(chunk, state) for chunk in chunks]
    # The Doc's own delete set alone (its encoding has nothing beyond its state vector).
    deletes = get_update(compact, state)
    # A leading 0 is "no structs"; merging delete sets is their union, encoded canonically,
    # so it equals the Doc's own when it adds no delete to it.
    if all(rest[0] == 0 for rest in rests) and merge([deletes, *rests]) == deletes:
        return compact, []
    return compact, rests


def _clocks(state_vector: bytes) -> dict[int, int]:
    """A state vector as a dict, without clients at clock 0 (a Doc lists a client whose
    structs all stayed pending; its encoding does not)."""
    try:
        clocks = read_state_vector(state_vector)
    except ProtocolError as exc:
        raise CompactionError(f"unreadable state vector: {exc}") from None
    return {client: clock for client, clock in clocks.items() if clock}
