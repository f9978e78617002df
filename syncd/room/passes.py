"""One callback per event-loop turn runs the fan-out passes of every room dirtied in it.

Before this, each room that got a keystroke created an asyncio Task for its pass, whose
coroutine chain (flush, durable append, backend append, a future per room) was stepped
twice per pass: with rooms of a few peers and about one keystroke per pass, that fixed
cost per pass was a large part of the CPU per delivery (bench/flush_cost.py). Here the
turn's rooms are handled in one plain callback: their updates go to the durable log in
one group commit made without awaiting (`DocBackend.append_now`, where the backend has
one), and only once that returned are they sent, with no await per peer while sockets
take what they are given.

A backend whose append must be awaited (Redis: a round trip) groups too, through
`append_group`: the turn's rooms go to it in one awaited call (one pipeline) made from
one task per turn, not one task and one awaited append per room; each room's pass is
sent once that call tells its entry is durable. While its group append is in flight a
room takes no other pass (what arrives meanwhile waits for the next turn after it), so
its appends and sends keep their order.

A group commit that cannot run without awaiting (SQLite's write lock held by a compaction
or a session write; the embedded bus on Postgres) waits the same way, in one task for the
turn's rooms, through the backend's `append_group`.

Whatever cannot be done so falls back, per room, to that room's own flush task exactly
as before: a backend with neither, a group commit that failed, a
room whose entry a group append did not make durable (each such room then retries on its
own with backoff, so one room's failing append never holds back another room's passes),
a paced room, and the sends a paused socket did not take.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

log = logging.getLogger(__name__)


class PassRoom(Protocol):
    """What the scheduler needs of a room (`syncd.room.room.Room`)."""

    doc_id: str

    def pass_backend(self) -> object:
        """The backend the room appends to (rooms sharing one share a group commit)."""
        ...

    def take_pass(self) -> bytes | bool | None:
        """Take the queued work for a pass run here: the merged update to append first
        (None: nothing to append), or False when the room runs its pass in its own task."""
        ...

    def finish_pass(self, appended: bool) -> None:
        """Append done (`appended`: the group commit took it) or not (retry in a task)."""
        ...


#: (doc id, updates) of the rooms of one group
Batches = Sequence[tuple[str, Sequence[bytes]]]
#: `append_now(batches) -> bool`: a backend's group commit without awaiting
AppendNow = Callable[[Batches], bool]
#: `append_group(batches) -> {doc id: None if durable, else the error}`: one awaited
#: call for the whole group (a doc missing from the answer counts as failed)
AppendGroup = Callable[[Batches], Awaitable[Mapping[str, BaseException | None]]]


class PassScheduler:
    """The rooms of one event loop with a pass due, run together in one `call_soon`."""

    __slots__ = ("_done", "_groups", "_rooms", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._rooms: list[PassRoom] = []
        #: resolved after the next run; made only when someone waits (`Room.drain`)
        self._done: asyncio.Future[None] | None = None
        #: the group appends in flight (`append_group`), one task per turn and backend
        self._groups: set[asyncio.Task[None]] = set()

    def add(self, room: PassRoom) -> None:
        """Run `room`'s pass on the next loop turn (the caller adds a room once)."""
        if not self._rooms:
            self.loop.call_soon(self._run)
        self._rooms.append(room)

    def ran(self) -> asyncio.Future[None]:
        """A future done once the rooms now queued have had their pass started."""
        done = self._done
        if done is None:
            done = self._done = self.loop.create_future()
            if not self._rooms:  # nothing queued: nothing to wait for
                self._done = None
                done.set_result(None)
        return done

    async def landed(self) -> None:
        """Wait until the group appends now in flight have finished their rooms' passes."""
        # those in flight now only (later ones could keep a busy loop's set from ever
        # emptying); `asyncio.wait` neither cancels them nor raises what they raised
        if self._groups:
            await asyncio.wait(self._groups.copy())

    def _run(self) -> None:
        rooms, self._rooms = self._rooms, []
        try:
            self._run_passes(rooms)
        finally:
            done, self._done = self._done, None
            if done is not None and not done.done():
                done.set_result(None)

    def _await_group(
        self, append_group: AppendGroup, members: list[PassRoom], batches: Batches
    ) -> None:
        task = self.loop.create_task(_append_group(append_group, members, batches))
        self._groups.add(task)
        task.add_done_callback(self._groups.discard)

    def _run_passes(self, rooms: list[PassRoom]) -> None:
        # the rooms with something to append, by backend (one group commit per backend)
        groups: dict[int, tuple[object, list[PassRoom], list[tuple[str, Sequence[bytes]]]]] = {}
        for room in rooms:
            try:
                merged = room.take_pass()
            except Exception:
                log.exception("room %s: preparing a fan-out pass failed", room.doc_id)
                continue
            if merged is False or merged is True:
                continue  # the room runs this pass in its own task
            if merged is None:  # only relays: nothing to make durable first
                _finish(room, appended=True)
                continue
            backend = room.pass_backend()
            group = groups.get(id(backend))
            if group is None:
                group = groups[id(backend)] = (backend, [], [])
            group[1].append(room)
            group[2].append((room.doc_id, (merged,)))
        for backend, members, batches in groups.values():
            if getattr(backend, "groups_appends", False):
                self._await_group(backend.append_group, members, batches)  # type: ignore[attr-defined]
                continue
            appended = False
            append_now: AppendNow | None = getattr(backend, "append_now", None)
            if append_now is not None:
                try:
                    appended = append_now(batches)
                except Exception:
                    # Nothing was written: each room retries on its own (and logs and
                    # counts the error if it persists), so one bad room holds back no other.
                    log.debug("group append of %d rooms failed; retrying per room", len(members))
                    for room in members:
                        _finish(room, appended=False)
                    continue
            if not appended and hasattr(backend, "append_group"):
                # It could not commit without awaiting (its write lock is held): the
                # group waits in one task, not one task per room.
                self._await_group(backend.append_group, members, batches)
                continue
            for room in members:
                _finish(room, appended=appended)


async def _append_group(
    append_group: AppendGroup, members: list[PassRoom], batches: Batches
) -> None:
    """One turn's group append: each room's pass sent once its entry is durable, the
    others (an error for the whole call included) retried by each room on its own."""
    try:
        outcome: Mapping[str, BaseException | None] = await append_group(batches)
    except asyncio.CancelledError:
        for room in members:  # the rooms keep their pass, in their own tasks
            _finish(room, appended=False)
        raise
    except Exception as exc:
        log.debug("group append of %d rooms failed (%s); retrying per room", len(members), exc)
        outcome = {}
    missing = RuntimeError("not in the group append's answer")
    for room in members:
        _finish(room, appended=outcome.get(room.doc_id, missing) is None)


def _finish(room: PassRoom, *, appended: bool) -> None:
    try:
        room.finish_pass(appended)
    except Exception:
        log.exception("room %s: a fan-out pass failed", room.doc_id)


#: the scheduler of the running loop (a process serves from one loop; tests make many)
_current: PassScheduler | None = None


def scheduler_for(loop: asyncio.AbstractEventLoop) -> PassScheduler:
    """The pass scheduler of `loop` (made on first use)."""
    global _current
    current = _current
    if current is None or current.loop is not loop:
        current = _current = PassScheduler(loop)
    return current
