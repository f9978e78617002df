"""Stateless messages: relayed to the other Hocuspocus connections of the same document.

They never touch the doc and are never stored. y-websocket peers of the room have no such
message and are skipped. The other instances get them through the bus (one pub/sub
channel, best effort like awareness) and relay them to their own connections.
"""

from __future__ import annotations

import logging

from syncd.protocol.hocuspocus import encode_stateless
from syncd.room import Room
from syncd.transport.hocuspocus.channel import DocChannel

log = logging.getLogger(__name__)


async def relay_stateless(room: Room, sender: DocChannel | None, payload: str) -> int:
    """Send `payload` to every Hocuspocus connection of `room` but `sender`; returns how
    many."""
    sent = 0
    for peer in list(room.peers):
        channel = peer.channel
        if isinstance(channel, DocChannel) and channel is not sender and not channel.closed:
            try:
                await channel.send_raw(encode_stateless(channel.prefix, payload))
            except (ConnectionError, OSError, RuntimeError) as exc:
                # That socket is going away (its own pump ends it); the others still get it.
                log.info("a stateless message was not delivered: %s", exc)
                continue
            sent += 1
    return sent
