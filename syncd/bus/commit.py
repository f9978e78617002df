"""At most one append of an instance in flight to Redis; the turns meanwhile go in the next.

Each event-loop turn with passes due made its own append (`RedisBus.append_group`), each
on its own connection, while the one before was still on its way: per append Redis runs a
`MULTI` block with its `PUBLISH`, the appender writes and reads a socket, and every other
instance's reader is told and reads once. Here, while one append is in flight, the turns
that come queue and go out together in one append as soon as it returns (a group commit):
a room's entry waits at most for the append ahead of it, and the busier the instance, the
more turns share each round trip. Nothing is sent to a peer before its entry is in the
stream: each caller's answer is the outcome of the append that carried its updates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

#: (doc id, updates) of one turn's rooms
Batches = Sequence[tuple[str, Sequence[bytes]]]
#: {doc id: None once durable, else the error}
Outcome = dict[str, Exception | None]
#: the error of a doc the append's answer leaves out
_UNANSWERED = RuntimeError("the append's answer does not name this doc")


class GroupCommit:
    """`await commit(batches)`: `append(batches)` made one at a time, queued calls merged."""

    __slots__ = ("_append", "_queue", "_task")

    def __init__(self, append: Callable[[Batches], Awaitable[Outcome]]) -> None:
        self._append = append
        #: calls waiting for the append in flight to return: (their batches, their answer)
        self._queue: list[tuple[Batches, asyncio.Future[Outcome]]] = []
        #: the task making the appends, while there is one in flight
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, batches: Batches) -> Outcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.append((batches, future))
        if self._task is None:
            self._task = loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        taken: list[tuple[Batches, asyncio.Future[Outcome]]] = []
        try:
            while self._queue:
                taken, self._queue = self._queue, []
                merged: dict[str, list[bytes]] = {}
                for batches, _ in taken:
                    for doc_id, updates in batches:
                        # one doc twice (two callers): its updates in the order they came
                        merged.setdefault(doc_id, []).extend(updates)
                try:
                    outcome = await self._append(list(merged.items()))
                except Exception as exc:
                    outcome = {doc_id: exc for doc_id in merged}
                for batches, future in taken:
                    if not future.done():
                        future.set_result(
                            {doc_id: outcome.get(doc_id, _UNANSWERED) for doc_id, _ in batches}
                        )
        finally:
            self._task = None
            # cancelled (the bus closing): their appends' outcome is unknown
            for _, future in (*taken, *self._queue):
                if not future.done():
                    future.cancel()
            self._queue = []

    async def aclose(self) -> None:
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
