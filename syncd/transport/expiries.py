"""Token expiry of open connections: one timer for all of them."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import weakref
from typing import Protocol


class Expiring(Protocol):
    """What can expire: a connection (y-websocket) or one document of a socket (Hocuspocus)."""

    @property
    def closed(self) -> bool: ...

    async def close(self, code: int, reason: str = "") -> None: ...


class Expiries:
    """Closes connections with 4401 when their token expires: one timer for them all.

    A timer handle and a closure per connection cost about 750 bytes of every idle
    connection (tracemalloc); a heap entry with a weak reference is a fraction of it, and a
    connection that ended leaves nothing alive but that entry, rebuilt away once dead
    entries outnumber live ones.
    """

    def __init__(self, code: int) -> None:
        self._code = code
        self._heap: list[tuple[float, int, weakref.ref[Expiring]]] = []
        self._order = itertools.count()
        self._live = 0
        self._ended = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def add(self, channel: Expiring, expires_at: float) -> None:
        self._live += 1
        entry = (expires_at, next(self._order), weakref.ref(channel))
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            self._arm()

    def discard(self) -> None:
        """A connection ended (its entry dies with its channel).

        The heap is rebuilt without dead entries once as many connections ended since the
        last rebuild as are still open (plus 64): amortised O(1) per connection. Counting
        entries instead would rebuild on every end while ended channels are still
        referenced (a mass disconnect: quadratic).
        """
        self._live -= 1
        self._ended += 1
        if self._ended > self._live + 64:
            self._ended = 0
            self._heap = [entry for entry in self._heap if entry[2]() is not None]
            heapq.heapify(self._heap)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, self._heap[0][0] - time.time())
        self._timer = asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = time.time()
        loop = asyncio.get_running_loop()
        while self._heap and self._heap[0][0] <= now:
            channel = heapq.heappop(self._heap)[2]()
            if channel is not None and not channel.closed:
                task = loop.create_task(channel.close(self._code, "token expired"))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        if self._heap:
            self._arm()
