"""Room churn: many short y-websocket connections, each to a note of its own, from Python.

One cycle opens a connection to a fresh note (the server runs with
`SYNCD_AUTO_CREATE_NOTES=1`), does the y-websocket handshake (sync step 1 answered by
step 2), sends one small edit and closes: the room loads, a session opens, the room is
stored and unloads, the session ends and a version is taken. Several workers run cycles
at once, as fast as the server takes them. Raw `websockets` clients rather than Node: a
cycle costs the load generator a fraction of what a stock client would.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pycrdt import Doc, Text
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from syncd.protocol import SyncStep2, encode_sync_step1, encode_sync_step2, encode_update
from tests.support.raw_ws import open_raw, recv_message

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Churn:
    """Cycles over `ws_url` (the `/ws/notes` base) with note ids `<prefix>-<n>`, as user
    `user(n)`."""

    ws_url: str
    token: Callable[[int], str]
    prefix: str
    #: cycles start only while set (cleared to hold the workers, e.g. during a restart)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    done: int = 0
    failed: int = 0
    #: cycles whose connection the server accepted and synced (so it had a connection)
    synced: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gate.set()

    def note_id(self, n: int) -> str:
        return f"{self.prefix}-{n}"

    async def cycle(self, n: int) -> None:
        """One connection to note `n`: handshake, one edit, close."""
        ws = await open_raw(f"{self.ws_url}/{self.note_id(n)}", token=self.token(n))
        try:
            await ws.send(encode_sync_step1(b"\x00"))
            while not isinstance(await recv_message(ws), SyncStep2):
                pass  # the server's step 1 and awareness come first
            self.synced.append(n)
            await ws.send(encode_sync_step2(b"\x00\x00"))
            doc = Doc()
            text = doc.get("t", type=Text)
            text += f"cycle {n}"
            await ws.send(encode_update(doc.get_update()))
        finally:
            await ws.close()

    async def run(self, numbers: Iterator[int], workers: int) -> None:
        """Run the cycles of `numbers` on `workers` concurrent connections."""
        shared = iter(numbers)

        async def work() -> None:
            for n in shared:
                await self.gate.wait()
                try:
                    await self.cycle(n)
                except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
                    log.info("cycle %d failed: %r", n, exc)  # e.g. cut by a restart
                    self.failed += 1
                else:
                    self.done += 1

        await asyncio.gather(*(work() for _ in range(workers)))


def numbered(start: int, count: int) -> Iterator[int]:
    return itertools.islice(itertools.count(start), count)
