"""Opening a session while another instance ends it or deletes its note (real Postgres).

Between two statements of `SessionStore.open` a second connection (its own thread and
event loop, as another instance would be) ends the session or deletes the note, and
`open` must still return a session that was active when it committed. The interleaving is
forced, not hoped for: an engine event runs the competitor right after the session
upsert and waits until it either committed or is blocked on one of `open`'s locks.
(SQLite needs no such test: its one writer serialises these transactions.)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event

from syncd.storage import SessionStore, Store, open_store

WAIT = 15.0


class Competitor:
    """Runs one SQL statement on another connection, in a thread of its own."""

    def __init__(self, dsn: str, statement: str) -> None:
        self._dsn = dsn
        self._statement = statement
        self.settled = threading.Event()  # it committed, or it waits for a lock of ours
        self.outcome: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the competing statement never finished"

    async def _run(self) -> None:
        worker = await asyncpg.connect(self._dsn, timeout=10)
        watcher = await asyncpg.connect(self._dsn, timeout=10)
        try:
            pid = worker.get_server_pid()
            task = asyncio.create_task(worker.execute(self._statement))
            deadline = time.monotonic() + WAIT
            while not task.done() and time.monotonic() < deadline:
                waiting = await watcher.fetchval(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
                )
                if waiting == "Lock":
                    self.outcome = "blocked"
                    break
                await asyncio.sleep(0.01)  # polling the server's view, bounded above
            else:
                self.outcome = "committed" if task.done() else "stuck"
            self.settled.set()
            await asyncio.wait_for(task, WAIT)
        finally:
            self.settled.set()
            await worker.close()
            await watcher.close()


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[Store]:
    async with open_store(postgres_url) as opened:
        await opened.create_note(note_id="n1", title="t", created_by="ann")
        yield opened


def interfere_after_upsert(store: Store, competitor: Competitor) -> None:
    """Start `competitor` once, right after the session upsert of the next `open`."""

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO collab_sessions ") and competitor.outcome is None:
            competitor.start()
            assert competitor.settled.wait(WAIT), "the competitor never settled"

    event.listen(store.engine.sync_engine, "after_cursor_execute", after)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE collab_sessions SET is_active = false, ended_at = now()"
        " WHERE note_id = 'n1' AND is_active",
        "DELETE FROM notes WHERE id = 'n1'",
    ],
    ids=["session-ended", "note-deleted"],
)
async def test_open_survives_a_session_ending_or_its_note_going_meanwhile(
    pg_store: Store, postgres_url: str, statement: str
) -> None:
    sessions = SessionStore(pg_store.engine)
    first = await sessions.open("n1", ("ann",))
    competitor = Competitor(postgres_url, statement)
    interfere_after_upsert(pg_store, competitor)

    opened = await sessions.open("n1", ("bob",), updates=2, size=10)
    competitor.join()

    # The upsert locked what the competitor needs, so it waited for our commit: we joined
    # the session that was active then, and the competitor acted after us.
    assert competitor.outcome == "blocked"
    assert opened.id == first.id and opened.active
    assert sorted(opened.participants) == ["ann", "bob"] and opened.updates == 2
    assert await sessions.active("n1") is None


JOIN_ELSEWHERE = (
    "INSERT INTO collab_sessions (id, note_id, is_active, started_at, last_activity)"
    " VALUES ('elsewhere', 'n1', true, now(), now())"
    " ON CONFLICT (note_id) WHERE is_active DO UPDATE SET last_activity = now()"
)


@pytest.mark.parametrize("over", [True, False], ids=["confirmed", "someone-came"])
async def test_an_instance_joining_while_an_end_is_confirmed_waits_for_it(
    pg_store: Store, postgres_url: str, over: bool
) -> None:
    """Another instance records a connection while this one asks whether the session is
    over: its upsert waits on the lock `close_many` holds, so the end applies to the
    session as confirmed, and the other instance then opens a new session (ended) or
    joins the one kept (someone came)."""
    sessions = SessionStore(pg_store.engine)
    first = await sessions.open("n1", ("ann",))
    competitor = Competitor(postgres_url, JOIN_ELSEWHERE)
    asked: list[list[str]] = []

    async def confirm(note_ids: list[str]) -> list[str]:
        asked.append(note_ids)
        competitor.start()
        assert await asyncio.to_thread(competitor.settled.wait, WAIT)
        return note_ids if over else []

    ended = await sessions.close_many(["n1", "gone"], confirm=confirm)
    competitor.join()

    assert asked == [["n1"]] and competitor.outcome == "blocked"
    active = await sessions.active("n1")
    assert active is not None
    if over:
        assert [record.id for record in ended] == [first.id]
        assert active.id == "elsewhere"  # opened after the end, not ended by it
    else:
        assert ended == [] and active.id == first.id
