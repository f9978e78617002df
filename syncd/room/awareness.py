"""Awareness (presence, cursors) of one room, with the owner of every client id.

The server keeps states as the JSON text the clients sent, never parsing them into objects
on the hot path; it only needs the clocks (for y-protocols' ordering rule) and who introduced
each client id, so that a connection can neither overwrite nor remove someone else's state
and its own states are removed for everyone when it leaves.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from syncd.protocol import MAX_SAFE_INTEGER, AwarenessEntry
from syncd.room.peer import Peer

NULL_STATE = "null"
#: y-protocols clients renew their state every 15 s and drop others' after 30 s without
#: renewal; a state relayed from another instance is forgotten on the same schedule
REMOTE_TTL = 30.0


@dataclass(slots=True)
class _State:
    clock: int
    state: str
    #: the local connection that introduced it; None for a state from another instance
    owner: Peer | None
    #: when a remote state was last renewed (only those expire)
    seen: float = 0.0


class AwarenessTable:
    """Current awareness states keyed by client id."""

    def __init__(self) -> None:
        self._states: dict[int, _State] = {}

    def __len__(self) -> int:
        return len(self._states)

    def apply(
        self, peer: Peer, entries: Iterable[AwarenessEntry], *, max_ids: int
    ) -> list[AwarenessEntry]:
        """Apply what `peer` sent; return the entries that changed something (to relay).

        Follows y-protocols' rule: a state is taken when its clock is newer, or when it is a
        removal at the same clock. Entries for client ids owned by another connection, and
        new ids beyond `max_ids` per connection, are dropped.
        """
        accepted: list[AwarenessEntry] = []
        for entry in entries:
            current = self._states.get(entry.client_id)
            if current is None:
                if entry.state == NULL_STATE:
                    continue
                if len(peer.awareness_ids) >= max_ids:
                    continue
                self._states[entry.client_id] = _State(entry.clock, entry.state, peer)
                peer.awareness_ids += (entry.client_id,)
                accepted.append(entry)
                continue
            if current.owner is not peer:
                continue
            if self._take(entry, current):
                accepted.append(entry)
                if entry.state == NULL_STATE:
                    peer.awareness_ids = tuple(
                        cid for cid in peer.awareness_ids if cid != entry.client_id
                    )
        return accepted

    def apply_remote(self, entries: Iterable[AwarenessEntry]) -> list[AwarenessEntry]:
        """Apply states relayed by another instance; ids owned here are left alone."""
        accepted: list[AwarenessEntry] = []
        for entry in entries:
            current = self._states.get(entry.client_id)
            if current is None:
                if entry.state != NULL_STATE:
                    self._states[entry.client_id] = _State(
                        entry.clock, entry.state, None, time.monotonic()
                    )
                    accepted.append(entry)
            elif current.owner is None and self._take(entry, current):
                accepted.append(entry)
        return accepted

    def _take(self, entry: AwarenessEntry, current: _State) -> bool:
        """y-protocols' rule: a newer clock wins; a removal also wins at the same clock."""
        newer = entry.clock > current.clock
        same_clock_removal = entry.clock == current.clock and entry.state == NULL_STATE
        if not (newer or same_clock_removal):
            return False
        current.clock = entry.clock
        current.state = entry.state
        if current.owner is None:
            # only another instance's states expire (`snapshot`): no clock read per
            # cursor move of a local connection, which is removed when it leaves
            current.seen = time.monotonic()
        if entry.state == NULL_STATE:
            del self._states[entry.client_id]
        return True

    def remove_peer(self, peer: Peer) -> list[AwarenessEntry]:
        """Forget every state `peer` introduced; return the removals to broadcast."""
        removals = []
        for client_id in sorted(peer.awareness_ids):
            current = self._states.pop(client_id, None)
            if current is not None:
                # a removal at the same clock also wins, so the clock never has to pass
                # what lib0 can encode (a peer may have sent 2**53 - 1 itself)
                clock = min(current.clock + 1, MAX_SAFE_INTEGER)
                removals.append(AwarenessEntry(client_id, clock, NULL_STATE))
        peer.awareness_ids = ()
        return removals

    def snapshot(self) -> list[AwarenessEntry]:
        """All known states, for a client that joins or asks (query awareness)."""
        stale = time.monotonic() - REMOTE_TTL
        for client_id in [
            cid for cid, s in self._states.items() if s.owner is None and s.seen < stale
        ]:
            del self._states[client_id]
        return [AwarenessEntry(cid, s.clock, s.state) for cid, s in self._states.items()]

    def states_of(self, peer: Peer) -> list[tuple[int, str]]:
        """(client id, JSON state) pairs that `peer` owns, for presence."""
        return [
            (client_id, self._states[client_id].state)
            for client_id in peer.awareness_ids
            if client_id in self._states
        ]
