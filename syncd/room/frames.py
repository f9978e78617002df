"""What one fan-out pass sends: the turn's updates merged into one frame."""

from __future__ import annotations

from syncd.protocol import encode_update
from syncd.room.peer import Peer


class FramePlan:
    """The frames of one fan-out pass: one merged frame for everyone, except that a peer
    whose update was the only one of the turn gets nothing back.

    A peer that contributed along with others gets the merged frame including its own
    update (Yjs ignores what it already has; the reference server and Hocuspocus echo
    everything): computing an "everything but yours" merge per contributor cost more CPU
    than all the rest of the fan-out at saturation.
    """

    __slots__ = ("frame", "sole_origin")

    def __init__(self, updates: list[tuple[Peer | None, bytes]], merged: bytes) -> None:
        """`merged`: all of `updates` as one update (the room merged them for the log)."""
        #: the one peer whose update was the turn's only one (None: several, or the server)
        self.sole_origin = sole_origin(updates)
        #: the merged frame: what every peer but `sole_origin` gets
        self.frame = encode_update(merged)


def sole_origin(updates: list[tuple[Peer | None, bytes]]) -> Peer | None:
    """The origin of all of `updates` if they have one (None: several, or the server)."""
    first = updates[0][0]
    for origin, _ in updates:
        if origin is not first:
            return None
    return first
