"""The cleanup job's steps on a real (SQLite) store: old read notifications, sessions that
stopped being touched, expired refresh tokens."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
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
    assert done == {"read_notifications": 1, "stale_sessions": 1, "expired_refresh_tokens": 1}
    assert [n.title for n in (await notifications.list("ann"))[0]] == ["unread"]
    assert await sessions.active("n1") is None


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
