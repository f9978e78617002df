"""Stateless messages: relayed to the other Hocuspocus connections of the same document.

They never touch the doc and are never stored. y-websocket peers of the room have no such
message and are skipped. Only this instance's connections receive them (they are not put
on the bus).
"""

from __future__ import annotations

from syncd.protocol.hocuspocus import encode_stateless
from syncd.room import Room
from syncd.transport.hocuspocus.channel import DocChannel


async def relay_stateless(room: Room, sender: DocChannel, payload: str) -> int:
    """Send `payload` to every other Hocuspocus connection of `room`; returns how many."""
    sent = 0
    for peer in list(room.peers):
        channel = peer.channel
        if isinstance(channel, DocChannel) and channel is not sender and not channel.closed:
            await channel.send_raw(encode_stateless(channel.prefix, payload))
            sent += 1
    return sent
