"""Refusing updates that would split a character outside the BMP.

Yjs counts text in UTF-16 code units, so a character outside the BMP (an emoji) takes two
clocks, and an item can be split between them: by a delete range that starts or ends
there, by an item inserted after its first half (left origin) or before its second half
(right origin), or by an update re-sending part of it. Yjs then turns both halves into
U+FFFD. yrs (pycrdt 0.14) keeps the whole character in the left part and one clock in the
right one: the doc still works, but its encoding counts one clock too many for that client
from there on, so every later struct of the client shifts and a parent ID lands on the
wrong item. The doc's own update (a fresh client's sync step 2, a compacted snapshot)
then no longer applies: "block parent ... must be deleted or shared ref type". Found by
fuzzing (tests/integration/test_fuzz_frames.py); a stock editor deletes whole characters.

So the room refuses such an update like any other it cannot take (4400): it keeps the
clocks of every low surrogate its doc holds (`surrogate_pairs`) and checks the update's
split points against them and against the update's own.
"""

from __future__ import annotations

import re

from ._errors import ProtocolError
from ._ylimits import YLimits
from ._ystructs import UpdateShape, check_update

__all__ = ["check_splits", "surrogate_pairs"]

#: a four-byte UTF-8 sequence: without one, an update holds no character outside the BMP
_ASTRAL_UTF8 = re.compile(rb"[\xf0-\xf4][\x80-\xbf]{3}")


def check_splits(shape: UpdateShape, pairs: set[tuple[int, int]], clocks: dict[int, int]) -> None:
    """Raise `ProtocolError` (kind "rejected") if integrating the update would split a
    character outside the BMP that the doc (`pairs`, its clocks `clocks`) or the update
    holds."""
    if not pairs and not shape.pairs:
        return
    for split in shape.splits:
        if split in pairs or split in shape.pairs:
            raise _refused(split)
    # Structs the doc already holds are cut off the front of the update's blocks.
    for client, (start, end) in shape.blocks.items():
        clock = clocks.get(client, 0)
        if start < clock < end and (client, clock) in shape.pairs:
            raise _refused((client, clock))


def surrogate_pairs(update: bytes) -> set[tuple[int, int]]:
    """The low-surrogate clocks of a trusted update (stored, or made by another instance
    or by pycrdt here); raises `ProtocolError` if it does not walk."""
    if _ASTRAL_UTF8.search(update) is None:
        return set()
    limits = YLimits.for_message_bytes(max(len(update), 1) * 8)
    return check_update(update, limits).pairs


def _refused(split: tuple[int, int]) -> ProtocolError:
    client, clock = split
    return ProtocolError(
        f"update splits a character outside the BMP at {client}#{clock}, which pycrdt "
        "cannot encode again",
        kind="rejected",
    )
