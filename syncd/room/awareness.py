"""Awareness (presence, cursors) of one room, with the owner of every client id.

The server keeps states as the JSON text the clients sent, never parsing them into objects
on the hot path; it only needs the clocks (for y-protocols' ordering rule) and who introduced
each client id, so that a connection can neither overwrite nor remove someone else's state
and its own states are removed for everyone when it leaves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from syncd.protocol import AwarenessEntry
from syncd.room.peer import Peer

NULL_STATE = "null"


@dataclass(slots=True)
class _State:
    clock: int
    state: str
    owner: Peer


class AwarenessTable:
    """Current awareness states keyed by client id."""

    def __init__(self) -> None:
        self._states: dict[int, _State] = {}

    def __len__(self) -> int:
        return sum(1 for s in self._states.values() if s.state != NULL_STATE)

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
                peer.awareness_ids.add(entry.client_id)
                accepted.append(entry)
                continue
            if current.owner is not peer:
                continue
            newer = entry.clock > current.clock
            same_clock_removal = entry.clock == current.clock and entry.state == NULL_STATE
            if not (newer or same_clock_removal):
                continue
            current.clock = entry.clock
            current.state = entry.state
            accepted.append(entry)
            if entry.state == NULL_STATE:
                del self._states[entry.client_id]
                peer.awareness_ids.discard(entry.client_id)
        return accepted

    def remove_peer(self, peer: Peer) -> list[AwarenessEntry]:
        """Forget every state `peer` introduced; return the removals to broadcast."""
        removals = []
        for client_id in sorted(peer.awareness_ids):
            current = self._states.pop(client_id, None)
            if current is not None:
                removals.append(AwarenessEntry(client_id, current.clock + 1, NULL_STATE))
        peer.awareness_ids.clear()
        return removals

    def snapshot(self) -> list[AwarenessEntry]:
        """All known states, for a client that joins or asks (query awareness)."""
        return [
            AwarenessEntry(client_id, s.clock, s.state)
            for client_id, s in self._states.items()
            if s.state != NULL_STATE
        ]

    def states_of(self, peer: Peer) -> list[tuple[int, str]]:
        """(client id, JSON state) pairs that `peer` owns, for presence."""
        return [
            (client_id, self._states[client_id].state)
            for client_id in peer.awareness_ids
            if client_id in self._states
        ]
