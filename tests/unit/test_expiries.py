"""The sync endpoint's token-expiry clock: one timer for every connection."""

from __future__ import annotations

import asyncio
import gc
import time

from syncd.protocol.close_codes import CLOSE_UNAUTHORIZED
from syncd.transport.expiries import Expiries
from syncd.transport.websocket import AsgiChannel


async def test_each_channel_is_closed_with_4401_once_its_token_expires() -> None:
    sent: dict[str, list[dict[str, object]]] = {"soon": [], "later": []}
    closed = asyncio.Event()

    def channel(name: str) -> AsgiChannel:
        async def send(message: dict[str, object]) -> None:
            sent[name].append(message)
            closed.set()

        return AsgiChannel(send, principal=None)  # type: ignore[arg-type]

    soon, later = channel("soon"), channel("later")
    clock = Expiries(CLOSE_UNAUTHORIZED)
    clock.add(later, time.time() + 60)
    clock.add(soon, time.time() + 0.05)
    async with asyncio.timeout(5):
        await closed.wait()
    assert sent["soon"] == [
        {"type": "websocket.close", "code": CLOSE_UNAUTHORIZED, "reason": "token expired"}
    ]
    assert not later.closed and sent["later"] == []


async def test_ended_connections_do_not_stay_alive_in_the_clock() -> None:
    clock = Expiries(CLOSE_UNAUTHORIZED)
    channels = [AsgiChannel(None, None) for _ in range(500)]  # type: ignore[arg-type]
    for item in channels:
        clock.add(item, time.time() + 3600)
    for _ in range(len(channels)):
        channels.pop()
        clock.discard()
    gc.collect()
    assert len(clock._heap) <= 64  # rebuilt once dead entries outnumbered live ones
