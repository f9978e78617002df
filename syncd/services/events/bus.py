"""The in-process events bus: services publish `NoteEvent`s, subscribers registered in
`syncd.wiring` react.

A subscriber is one of three kinds, chosen at `subscribe`:

- **inline**: a plain function, called inside `publish` in registration order. For cheap
  bookkeeping that must be current at once (the presence board when a peer joins); no I/O.
- **awaited** (async, the default): awaited by `publish`, one after the other in
  registration order. For effects the publisher's caller relies on before it answers:
  the cache invalidated and revoked connections closed before a PUT returns, a share's
  notification stored before the response.
- **queued** (async, `queued=True`): its own bounded FIFO and one worker task. `publish`
  only enqueues, so a slow subscriber (a webhook, a broker) never holds up a request or
  the sync path. One worker per subscriber keeps events in publish order for it, hence
  in order per note. A full queue drops the event for that subscriber only: logged and
  counted (`syncd_events_dropped_total`), because blocking the publisher would let one
  slow consumer stall every note. The queues are drained when the bus closes.

Whatever the kind, an exception in one subscriber is logged and counted
(`syncd_errors_total{component="events"}`) and never stops the others nor fails the
publisher. Hot kinds (`NoteEvent.hot`, published from synchronous code) take only inline
and queued subscribers, checked at `subscribe`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from syncd import metrics
from syncd.services.events.kinds import NoteEvent

log = logging.getLogger(__name__)

E = TypeVar("E", bound=NoteEvent)
Handler = Callable[[Any], Awaitable[None] | None]

#: a queued subscriber's backlog bound (events, not bytes)
QUEUE_SIZE = 10_000


@dataclass(slots=True)
class _Subscriber:
    name: str
    handler: Handler
    kind: str  # "inline", "awaited" or "queued"
    queue: asyncio.Queue[NoteEvent] | None = None
    worker: asyncio.Task[None] | None = None
    kinds: set[type[NoteEvent]] = field(default_factory=set)


class EventBus:
    """One per process; an async context manager (starts and drains the queued workers)."""

    def __init__(self, *, queue_size: int = QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._by_kind: dict[type[NoteEvent], list[_Subscriber]] = {}
        self._queued: dict[Handler, _Subscriber] = {}
        self._running = False

    def subscribe(
        self,
        kind: type[E],
        handler: Callable[[E], Awaitable[None] | None],
        *,
        queued: bool = False,
        name: str | None = None,
    ) -> None:
        """Call `handler` with every published event of `kind` (see the module docstring
        for the three kinds of subscriber). One handler queued for several kinds shares
        one queue, so it sees them in publish order."""
        is_async = inspect.iscoroutinefunction(handler)
        if queued and not is_async:
            raise TypeError("a queued subscriber must be an async function")
        if kind.hot and is_async and not queued:
            raise TypeError(f"{kind.__name__} is published on the hot path: inline or queued")
        label = str(name or getattr(handler, "__qualname__", repr(handler)))
        if queued:
            sub = self._queued.get(handler)
            if sub is None:
                sub = _Subscriber(label, handler, "queued", asyncio.Queue(self._queue_size))
                self._queued[handler] = sub
                if self._running:
                    self._start(sub)
        else:
            sub = _Subscriber(label, handler, "awaited" if is_async else "inline")
        sub.kinds.add(kind)
        self._by_kind.setdefault(kind, []).append(sub)

    async def publish(self, event: NoteEvent) -> None:
        """Run the inline and awaited subscribers, enqueue for the queued ones."""
        for sub in self._by_kind.get(type(event), ()):
            if sub.kind == "queued":
                self._offer(sub, event)
                continue
            try:
                result = sub.handler(event)
                if result is not None:
                    await result
            except Exception:
                self._failed(sub, event)

    def publish_nowait(self, event: NoteEvent) -> None:
        """From synchronous code (hot kinds): inline subscribers run, queued ones enqueue."""
        for sub in self._by_kind.get(type(event), ()):
            if sub.kind == "queued":
                self._offer(sub, event)
                continue
            if sub.kind == "awaited":
                raise TypeError(f"{sub.name} awaits {type(event).__name__}: use publish")
            try:
                sub.handler(event)
            except Exception:
                self._failed(sub, event)

    async def drain(self) -> None:
        """Wait until every queued subscriber has handled what was published so far."""
        for sub in self._queued.values():
            if sub.queue is not None and sub.worker is not None:
                await sub.queue.join()

    async def __aenter__(self) -> EventBus:
        self._running = True
        for sub in self._queued.values():
            self._start(sub)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            async with asyncio.timeout(10):
                await self.drain()
        except TimeoutError:
            log.error("queued event subscribers did not drain in time")
            metrics.ERRORS.labels("events").inc()
        self._running = False
        workers = [sub.worker for sub in self._queued.values() if sub.worker is not None]
        for worker in workers:
            worker.cancel()
        if workers:
            await asyncio.wait(workers)
        for sub in self._queued.values():
            sub.worker = None

    # -- internals ---------------------------------------------------------------------------

    def _start(self, sub: _Subscriber) -> None:
        sub.worker = asyncio.get_running_loop().create_task(
            self._work(sub), name=f"events:{sub.name}"
        )

    def _offer(self, sub: _Subscriber, event: NoteEvent) -> None:
        assert sub.queue is not None
        try:
            sub.queue.put_nowait(event)
        except asyncio.QueueFull:
            log.error(
                "subscriber %s is %d events behind: dropped a %s of note %s",
                sub.name,
                sub.queue.qsize(),
                type(event).__name__,
                event.note_id,
            )
            metrics.EVENTS_DROPPED.labels(sub.name).inc()

    async def _work(self, sub: _Subscriber) -> None:
        assert sub.queue is not None
        while True:
            event = await sub.queue.get()
            try:
                result = sub.handler(event)
                if result is not None:
                    await result
            except Exception:
                self._failed(sub, event)
            finally:
                sub.queue.task_done()

    @staticmethod
    def _failed(sub: _Subscriber, event: NoteEvent) -> None:
        log.exception(
            "event subscriber %s failed on %s of note %s",
            sub.name,
            type(event).__name__,
            event.note_id,
        )
        metrics.ERRORS.labels("events").inc()
