"""The events bus: order, isolation of failures, queued subscribers off the hot path."""

from __future__ import annotations

import asyncio

import pytest

from syncd import metrics
from syncd.services.events import (
    ALL_KINDS,
    EventBus,
    NoteDeleted,
    NoteEvent,
    PeerJoined,
    PermissionsChanged,
)


def _errors() -> float:
    return metrics.ERRORS.labels("events")._value.get()


async def test_inline_and_awaited_subscribers_run_in_registration_order() -> None:
    seen: list[str] = []
    bus = EventBus()

    def first(event: NoteDeleted) -> None:
        seen.append(f"inline {event.note_id}")

    async def second(event: NoteDeleted) -> None:
        await asyncio.sleep(0)
        seen.append(f"awaited {event.note_id}")

    bus.subscribe(NoteDeleted, first)
    bus.subscribe(NoteDeleted, second)
    await bus.publish(NoteDeleted("n1"))
    assert seen == ["inline n1", "awaited n1"]


async def test_a_failing_subscriber_is_counted_and_never_stops_the_others() -> None:
    seen: list[str] = []
    bus = EventBus()

    async def broken(event: NoteDeleted) -> None:
        raise RuntimeError("boom")

    async def fine(event: NoteDeleted) -> None:
        seen.append(event.note_id)

    bus.subscribe(NoteDeleted, broken)
    bus.subscribe(NoteDeleted, fine)
    before = _errors()
    await bus.publish(NoteDeleted("n1"))
    assert seen == ["n1"]
    assert _errors() == before + 1


async def test_only_the_published_kind_reaches_its_subscribers() -> None:
    seen: list[object] = []
    bus = EventBus()
    bus.subscribe(NoteDeleted, seen.append)
    await bus.publish(PermissionsChanged("n1"))
    assert seen == []


async def test_a_queued_subscriber_keeps_publish_order_and_never_blocks_the_publisher() -> None:
    release = asyncio.Event()
    seen: list[tuple[str, str]] = []

    async def slow(event: NoteDeleted | PermissionsChanged) -> None:
        await release.wait()
        seen.append((type(event).__name__, event.note_id))

    bus = EventBus()
    bus.subscribe(PermissionsChanged, slow, queued=True)
    bus.subscribe(NoteDeleted, slow, queued=True)
    async with bus:
        async with asyncio.timeout(1):  # the subscriber is stuck, publishing is not
            for i in range(3):
                await bus.publish(PermissionsChanged(f"n{i}"))
                await bus.publish(NoteDeleted(f"n{i}"))
        assert seen == []
        release.set()
        async with asyncio.timeout(5):
            await bus.drain()
    assert seen == [
        (kind, f"n{i}") for i in range(3) for kind in ("PermissionsChanged", "NoteDeleted")
    ]


async def test_a_full_queue_drops_for_that_subscriber_only_and_counts_it() -> None:
    release = asyncio.Event()
    slow_seen: list[str] = []
    fast_seen: list[str] = []

    async def slow(event: NoteDeleted) -> None:
        await release.wait()
        slow_seen.append(event.note_id)

    async def fast(event: NoteDeleted) -> None:
        fast_seen.append(event.note_id)

    bus = EventBus(queue_size=2)
    bus.subscribe(NoteDeleted, slow, queued=True, name="slow")
    bus.subscribe(NoteDeleted, fast, queued=True, name="fast")
    dropped = metrics.EVENTS_DROPPED.labels("slow")
    before = dropped._value.get()
    async with bus:
        for i in range(5):
            await bus.publish(NoteDeleted(f"n{i}"))
            await asyncio.sleep(0)  # the fast worker keeps up
        release.set()
        async with asyncio.timeout(5):
            await bus.drain()
    assert fast_seen == [f"n{i}" for i in range(5)]
    assert slow_seen[0] == "n0" and len(slow_seen) < 5
    assert dropped._value.get() == before + 5 - len(slow_seen)


async def test_queued_events_are_handled_before_the_bus_closes() -> None:
    seen: list[str] = []

    async def record(event: NoteDeleted) -> None:
        await asyncio.sleep(0.001)
        seen.append(event.note_id)

    bus = EventBus()
    bus.subscribe(NoteDeleted, record, queued=True)
    async with bus:
        for i in range(10):
            await bus.publish(NoteDeleted(f"n{i}"))
    assert seen == [f"n{i}" for i in range(10)]


def test_hot_kinds_refuse_subscribers_that_would_block_the_sync_path() -> None:
    bus = EventBus()

    async def awaits(event: PeerJoined) -> None:
        return None

    with pytest.raises(TypeError, match="hot path"):
        bus.subscribe(PeerJoined, awaits)
    bus.subscribe(PeerJoined, awaits, queued=True)  # queued is fine
    with pytest.raises(TypeError, match="async"):
        bus.subscribe(NoteDeleted, lambda event: None, queued=True)


async def test_publish_nowait_runs_inline_subscribers_and_counts_their_failures() -> None:
    seen: list[str] = []
    bus = EventBus()

    def broken(event: NoteDeleted) -> None:
        raise ValueError("boom")

    bus.subscribe(NoteDeleted, broken)
    bus.subscribe(NoteDeleted, lambda event: seen.append(event.note_id))
    before = _errors()
    bus.publish_nowait(NoteDeleted("n1"))
    assert seen == ["n1"]
    assert _errors() == before + 1


def test_every_kind_is_listed_once_in_all_kinds() -> None:
    import syncd.services.events.kinds as kinds

    defined = {
        value
        for value in vars(kinds).values()
        if isinstance(value, type) and issubclass(value, NoteEvent) and value is not NoteEvent
    }
    assert len(ALL_KINDS) == len(set(ALL_KINDS))
    assert set(ALL_KINDS) == defined
