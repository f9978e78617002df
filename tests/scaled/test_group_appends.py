"""Scaled mode groups a turn's passes (issue 15): on a real Redis, the rooms with a pass due
in one loop turn are appended in one `append_group` call (one pipeline, one task), not a
task and an awaited append per room; every update is then in its doc's stream and
delivered to the room's peers, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from redis.asyncio import Redis

from syncd.bus import RedisBus
from syncd.bus.instrumented import InstrumentedBackend
from syncd.bus.keys import Keys
from syncd.protocol import SyncUpdate
from syncd.room import Room
from syncd.storage import Store
from tests.support.bus import store_with_notes
from tests.support.typed import typed_updates
from tests.unit.test_room import peer, text_of

DOCS = [f"g{i}" for i in range(20)]
ROUNDS = 6


def _running(qualname: str) -> int:
    """How many tasks of the loop run a coroutine of that name."""
    return sum(
        1
        for task in asyncio.all_tasks()
        if task.get_coro().__qualname__ == qualname  # type: ignore[union-attr]
    )


def _grows(updates: Sequence[bytes]) -> bool:
    """Each update adds text when applied after the ones before it."""
    lengths = [len(text_of(updates[: n + 1])) for n in range(len(updates))]
    return all(a < b for a, b in zip([0, *lengths], lengths, strict=False))


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    async with store_with_notes(postgres_url, DOCS) as opened:
        yield opened


async def test_a_turns_rooms_are_appended_in_one_call_then_delivered_and_durable(
    redis_server_url: str, redis_prefix: str, store: Store
) -> None:
    keys = Keys(redis_prefix.rstrip(":"))
    redis = Redis.from_url(redis_server_url)
    async with RedisBus(
        redis, redis_server_url, store, "group-a", orphan_interval=3600, keys=keys
    ) as bus:
        backend = InstrumentedBackend(bus)
        #: the doc ids of every call the appender got (each one pipeline to Redis)
        calls: list[list[str]] = []
        appender_append = bus._appender.append

        async def counted(batch: Sequence[tuple[str, Sequence[bytes]]], now: float) -> object:
            calls.append([doc_id for doc_id, _ in batch])
            return await appender_append(batch, now)

        bus._appender.append = counted  # type: ignore[method-assign,assignment]
        per_room: list[tuple[Room, object, object]] = []
        for doc_id in DOCS:
            room = Room(doc_id, backend)
            backend.subscribe(doc_id, room)
            room.load(await backend.load(doc_id))
            (writer, _), (reader, channel) = peer(), peer()
            room.join(writer)
            room.join(reader)
            per_room.append((room, writer, channel))
        scripts = {
            doc_id: typed_updates(10 + i, "abcdef"[:ROUNDS]) for i, doc_id in enumerate(DOCS)
        }

        # one turn: a keystroke in every room, then one group append for all of them
        for room, writer, _ in per_room:
            room.handle(writer, SyncUpdate(scripts[room.doc_id][0]))  # type: ignore[arg-type]
        await asyncio.sleep(0)  # the scheduler's turn: one task for the group, none per room
        assert _running("_append_group") == 1 and _running("Room._flush") == 0
        for room, _, _ in per_room:
            await asyncio.wait_for(room.drain(), 10)
        assert calls == [DOCS]
        for room, _, channel in per_room:
            assert room.durable
            assert text_of(channel.updates()) == "a"  # type: ignore[attr-defined]

        # more turns, not waiting for each other: each room's passes stay in order
        for round_ in range(1, ROUNDS):
            for room, writer, _ in per_room:
                room.handle(writer, SyncUpdate(scripts[room.doc_id][round_]))  # type: ignore[arg-type]
            await asyncio.sleep(0)
        for room, _, _ in per_room:
            await asyncio.wait_for(room.drain(), 10)
        # grouped: never one call per room per pass
        assert len(calls) <= ROUNDS and all(len(call) == len(set(call)) for call in calls)
        expected = "abcdef"[:ROUNDS]
        for room, _, channel in per_room:
            assert room.durable and room.idle
            assert text_of(channel.updates()) == expected  # type: ignore[attr-defined]
            # durable: every update is in the doc's stream, in the order typed
            entries = await redis.xrange(keys.updates(room.doc_id))
            stored = [fields[b"u"] for _, fields in entries]
            assert text_of(stored) == expected
            # in order: every entry applies on those before it (none waits for a later one)
            assert _grows(stored) and _grows(channel.updates())  # type: ignore[attr-defined]
        for doc_id in DOCS:
            backend.unsubscribe(doc_id)
    await redis.aclose()


async def test_turns_while_an_append_is_in_flight_go_out_together_after_it(
    redis_server_url: str, redis_prefix: str, store: Store
) -> None:
    keys = Keys(redis_prefix.rstrip(":"))
    redis = Redis.from_url(redis_server_url)
    async with RedisBus(
        redis, redis_server_url, store, "group-b", orphan_interval=3600, keys=keys
    ) as bus:
        calls: list[list[str]] = []
        gate, called = asyncio.Event(), asyncio.Event()
        appender_append = bus._appender.append

        async def held(batch: Sequence[tuple[str, Sequence[bytes]]], now: float) -> object:
            calls.append([doc_id for doc_id, _ in batch])
            called.set()
            await gate.wait()  # the round trip, held open
            return await appender_append(batch, now)

        bus._appender.append = held  # type: ignore[method-assign,assignment]
        first = asyncio.create_task(bus.append_group([(DOCS[0], [b"first"])]))
        await asyncio.wait_for(called.wait(), 10)
        # two more turns while the first append is on its way
        later = [
            asyncio.create_task(bus.append_group([(DOCS[1], [b"second"])])),
            asyncio.create_task(bus.append_group([(DOCS[2], [b"third"]), (DOCS[1], [b"4th"])])),
        ]
        await asyncio.sleep(0.05)
        assert calls == [[DOCS[0]]]  # no second round trip while the first is in flight
        assert not any(task.done() for task in later)
        gate.set()
        assert await asyncio.wait_for(first, 10) == {DOCS[0]: None}
        answers = await asyncio.wait_for(asyncio.gather(*later), 10)
        assert answers == [{DOCS[1]: None}, {DOCS[2]: None, DOCS[1]: None}]
        assert calls == [[DOCS[0]], [DOCS[1], DOCS[2]]]  # the two turns in one append
        for doc_id, expected in (
            (DOCS[0], [b"first"]),
            (DOCS[1], [b"second", b"4th"]),
            (DOCS[2], [b"third"]),
        ):
            entries = await redis.xrange(keys.updates(doc_id))
            assert [fields[b"u"] for _, fields in entries] == expected
    await redis.aclose()
