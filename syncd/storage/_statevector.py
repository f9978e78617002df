"""Yjs state vectors: decode and compare, so a snapshot never goes backwards.

A state vector is `varuint(n)` followed by n pairs `varuint(client)`,
`varuint(clock)`; clock is the number of items seen from that client.
"""

from __future__ import annotations


def _read_varuint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated state vector")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def decode_state_vector(data: bytes) -> dict[int, int]:
    """Return {client id: clock}."""
    count, pos = _read_varuint(data, 0)
    clocks: dict[int, int] = {}
    for _ in range(count):
        client, pos = _read_varuint(data, pos)
        clocks[client], pos = _read_varuint(data, pos)
    return clocks


def dominates(candidate: bytes, stored: bytes) -> bool:
    """True if `candidate` has seen at least everything `stored` has."""
    mine = decode_state_vector(candidate)
    return all(
        mine.get(client, 0) >= clock for client, clock in decode_state_vector(stored).items()
    )
