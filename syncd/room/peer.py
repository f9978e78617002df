"""One connection's membership of a room: who it is and what it may do there."""

from __future__ import annotations

from dataclasses import dataclass

from syncd.room.channel import Channel


@dataclass(eq=False, slots=True)
class Peer:
    """State the room keeps per connection (identity semantics: one object per connection)."""

    channel: Channel
    user_id: str
    can_write: bool
    name: str | None = None
    #: role admin/service: rights that no per-note permission change can take away
    privileged: bool = False
    #: awareness client ids this connection introduced (a few at most, bounded by
    #: `RoomLimits.max_awareness_ids`); removed for everyone when it leaves. A tuple: an
    #: empty set is 216 bytes of every connection, a tuple of one id 48
    awareness_ids: tuple[int, ...] = ()
    #: the y-protocols "permission denied" answer is sent once, not per dropped write
    denied_sent: bool = False
    updates_in: int = 0
    bytes_in: int = 0
