"""The cleanup job's steps on a real (SQLite) store: old read notifications, sessions that
stopped being touched, expired refresh tokens."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.services.events import EventBus
from syncd.services.job_catalog import Cleanup, standard_cleanup
from syncd.services.sessions import SessionService
from syncd.settings import Settings
from syncd.storage import (
    NewNotification,
    NotificationStore,
    SessionStore,
    SqlRefreshRecords,
    Store,
    open_store,
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'db.sqlite'}") as opened:
        yield opened


async def test_cleanup_steps(store: Store) -> None:
    base = Settings()
    settings = replace(
        base,
        collab=replace(base.collab, notification_retention_days=1e-9, presence_refresh=1e-6),
    )
    notifications = NotificationStore(store.engine)
    [old] = await notifications.create(["ann"], NewNotification("t", "old"))
    await notifications.create(["ann"], NewNotification("t", "unread"))
    await notifications.mark_read("ann", old.id)
    await store.create_note(note_id="n1", title="t", created_by="ann")
    sessions = SessionService(SessionStore(store.engine), EventBus())
    await sessions.start("n1", ("ann",))
    tokens = SqlRefreshRecords(store.engine)
    await tokens.issue("j1", "f1", "ann", time.time() - 1)
    await tokens.issue("j2", "f2", "ann", time.time() + 3600)
    cleanup = standard_cleanup(settings, store, sessions, None)
    done = await cleanup.run()
    assert done == {
        "read_notifications": 1,
        "trash": 0,
        "stale_sessions": 1,
        "expired_refresh_tokens": 1,
    }
    assert [n.title for n in (await notifications.list("ann"))[0]] == ["unread"]
    assert await sessions.active("n1") is None


async def test_the_trash_is_purged_after_its_retention(store: Store) -> None:
    base = Settings()
    settings = replace(base, collab=replace(base.collab, trash_retention_days=30))
    notifications = NotificationStore(store.engine)
    for note_id in ("early", "late", "live"):
        await store.create_note(note_id=note_id, title=note_id, created_by="ann")
    await notifications.create(["bob"], NewNotification("share", "early", note_id="early"))
    now = datetime.now(UTC)
    await store.trash_note("early")
    await store.trash_note("late")
    clock = [now]
    sessions = SessionService(SessionStore(store.engine), EventBus())
    cleanup = standard_cleanup(settings, store, sessions, None, clock=lambda: clock[0])
    assert (await cleanup.run())["trash"] == 0
    clock[0] = now + timedelta(days=29, hours=23)
    assert (await cleanup.run())["trash"] == 0
    assert await store.get_note("early", trashed=True) is not None
    clock[0] = now + timedelta(days=30, seconds=5)
    assert (await cleanup.run())["trash"] == 2
    assert await store.get_note("early", trashed=None) is None
    assert await store.get_note("late", trashed=None) is None
    assert await store.get_note("live") is not None
    assert await notifications.list("bob") == ([], 0)
    assert (await cleanup.run())["trash"] == 0


async def test_a_failing_step_fails_the_job_after_the_others_ran() -> None:
    ran: list[str] = []

    async def fine() -> int:
        ran.append("fine")
        return 1

    async def broken() -> int:
        raise RuntimeError("database down")

    cleanup = Cleanup()
    cleanup.add("broken", broken)
    cleanup.add("fine", fine)
    with pytest.raises(RuntimeError, match="broken"):
        await cleanup.run()
    assert ran == ["fine"]
