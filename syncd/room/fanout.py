"""One fan-out pass's single frame sent to every peer, as one call per pass.

A busy room sends each pass's merged update to every peer. Through `Channel.send_now`
that was four nested Python calls per delivery (the channel, the transport's write, the
framing memo, the frame counter), most of the server's CPU per delivery in a room of 50
(bench/flush_cost.py --lean). A transport that can do better installs a function that
walks the peers itself, frames once and counts once per pass (`install`); without one,
`send_each_now` calls `send_now` per peer as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from syncd.room.peer import Peer

#: (not taken now: the caller awaits `send` for them, failed: to be dropped), each None
#: when empty, so the common pass allocates no list
Outcome = tuple[list[Peer] | None, list[Peer] | None]
#: `fan_out(peers, skip, frame)`: `frame` to every peer but `skip` without waiting
FanOut = Callable[[Iterable[Peer], object, bytes], Outcome]


def send_each_now(peers: Iterable[Peer], skip: object, frame: bytes) -> Outcome:
    """`Channel.send_now` per peer: what any channel supports (`send_all_each_now` with
    the one frame for all but `skip`, who gets nothing)."""
    return send_all_each_now(peers, skip, (frame,), ())


#: `fan_out_all(peers, sole, shared, mine)`: the frames `shared` (in order, one write) to
#: every peer but `sole`, who gets `mine` (nothing when empty), without waiting
FanOutAll = Callable[[Iterable[Peer], object, tuple[bytes, ...], tuple[bytes, ...]], Outcome]


def send_all_each_now(
    peers: Iterable[Peer], sole: object, shared: tuple[bytes, ...], mine: tuple[bytes, ...]
) -> Outcome:
    """`Channel.send_all_now` (`send_now` for one frame) per peer: what any channel
    supports. A peer not taken now is owed `mine` if it is `sole`, else `shared`."""
    unsent: list[Peer] | None = None
    failed: list[Peer] | None = None
    for peer in peers:
        frames = mine if peer is sole else shared
        try:
            if len(frames) > 1:
                if peer.channel.send_all_now(frames):
                    continue
            elif not frames or peer.channel.send_now(frames[0]):
                continue
        except (ConnectionError, RuntimeError, OSError):
            if failed is None:
                failed = []
            failed.append(peer)
            continue
        if unsent is None:
            unsent = []
        unsent.append(peer)
    return unsent, failed


#: the installed fan-outs (a transport's, else the generic ones)
fan_out: FanOut = send_each_now
fan_out_all: FanOutAll = send_all_each_now


def install(function: FanOut, several: FanOutAll | None = None) -> None:
    """Use `function` for every room's single-frame passes (and `several` for passes of
    several frames). Each must take any `Channel` (peers of one room may be on different
    endpoints), as `send_each_now` and `send_all_each_now` do."""
    global fan_out, fan_out_all
    fan_out = function
    if several is not None:
        fan_out_all = several
