"""The `note.updated` window shared by instances (real Redis): two publishers, as on two
instances, each with a change of the same note; the first sends at once, the second only
when the first's window has ended, with its own (later) state."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from syncd.services.events import NoteUpdated
from syncd.services.events.payloads import EventMessage
from syncd.services.webhooks import RedisWindow, WebhookPublisher
from syncd.settings import WebhookSettings
from syncd.storage import NoteRecord
from syncd.storage.records import NoteMetadata, Permissions
from tests.support.polling import eventually

WINDOW = 1.0
AT = datetime(2026, 12, 5, tzinfo=UTC)


def _record(title: str) -> NoteRecord:
    return NoteRecord(
        "n1", title, None, "alice", None, Permissions(), NoteMetadata(), title, 1, AT, AT
    )


@pytest.fixture
async def redis(redis_server_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server_url)
    yield client
    await client.aclose()


async def test_the_window_is_claimed_once_and_ends(redis: Redis, redis_prefix: str) -> None:
    window = RedisWindow(redis, redis_prefix.rstrip(":"))
    assert await window.claim("n1", WINDOW) == 0
    left = await window.claim("n1", WINDOW)
    assert 0 < left <= WINDOW
    assert await window.claim("n2", WINDOW) == 0  # per note

    async def free() -> bool:
        return await window.claim("n1", WINDOW) == 0

    await eventually(free, timeout=5, what="the window's end")


async def test_two_publishers_send_a_window_apart(redis: Redis, redis_prefix: str) -> None:
    sent: list[tuple[float, dict[str, Any]]] = []

    async def dispatch(message: EventMessage) -> None:
        sent.append((time.monotonic(), json.loads(message.body())))

    settings = WebhookSettings(debounce=WINDOW)
    titles = iter(["first", "second"])
    window = RedisWindow(redis, redis_prefix.rstrip(":"))

    async def get_note(note_id: str) -> NoteRecord:
        return _record(next(titles))

    one = WebhookPublisher(settings, dispatch, get_note, window=window)
    two = WebhookPublisher(settings, dispatch, get_note, window=window)
    before = _record("before")
    await one.on_event(NoteUpdated("n1", _record("x"), before))
    await two.on_event(NoteUpdated("n1", _record("y"), before))

    async def both() -> bool:
        return len(sent) == 2

    await eventually(both, timeout=10, what="both note.updated")
    (t1, first), (t2, second) = sent
    assert [first["data"]["note"]["title"], second["data"]["note"]["title"]] == [
        "first",
        "second",
    ]
    # the first after its own debounce, the second once the first's window had ended
    assert t2 - t1 >= WINDOW * 0.8
