"""Notifications, mentions and sessions storage: every test runs on SQLite and on Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from syncd.storage import (
    NewNotification,
    NoteNotFound,
    NotificationStore,
    Permissions,
    SessionActivity,
    SessionStore,
    Store,
    UserRecord,
)


@pytest.fixture
def notifications(store: Store) -> NotificationStore:
    return NotificationStore(store.engine)


@pytest.fixture
def sessions(store: Store) -> SessionStore:
    return SessionStore(store.engine)


async def test_notifications_are_listed_newest_first_per_user(
    notifications: NotificationStore,
) -> None:
    await notifications.create(["ann", "bob"], NewNotification("share", "first", category="a"))
    await notifications.create(["ann"], NewNotification("mention", "second", data={"k": 1}))
    ann, unread = await notifications.list("ann")
    assert [n.title for n in ann] == ["second", "first"]
    assert ann[0].data == {"k": 1} and ann[0].category == "general"
    assert unread == 2
    bob, _ = await notifications.list("bob")
    assert [n.title for n in bob] == ["first"]
    only_a, _ = await notifications.list("ann", category="a")
    assert [n.title for n in only_a] == ["first"]
    limited, _ = await notifications.list("ann", limit=1)
    assert len(limited) == 1


async def test_mark_read_only_touches_the_owners_notification(
    notifications: NotificationStore,
) -> None:
    [mine] = await notifications.create(["ann"], NewNotification("t", "mine"))
    [other] = await notifications.create(["bob"], NewNotification("t", "theirs"))
    assert await notifications.mark_read("ann", other.id) is None
    read = await notifications.mark_read("ann", mine.id)
    assert read is not None and read.read and read.read_at is not None
    unread, count = await notifications.list("ann", unread=True)
    assert unread == [] and count == 0
    still, _ = await notifications.list("bob", unread=True)
    assert [n.id for n in still] == [other.id]


async def test_mark_all_read_and_retention(notifications: NotificationStore) -> None:
    await notifications.create(["ann"], NewNotification("t", "one"))
    await notifications.create(["ann"], NewNotification("t", "two"))
    [kept] = await notifications.create(["bob"], NewNotification("t", "bob's"))
    assert await notifications.mark_all_read("ann") == 2
    assert await notifications.mark_all_read("ann") == 0
    read, _ = await notifications.list("ann", unread=False)
    assert len(read) == 2
    # Only read notifications older than the cutoff go; bob's unread one stays.
    assert await notifications.delete_read_before(datetime.now(UTC) + timedelta(seconds=1)) == 2
    assert (await notifications.list("ann"))[0] == []
    assert await notifications.get(kept.id) is not None


async def test_keyset_pages_delete_and_notifications_of_a_deleted_note(
    store: Store, notifications: NotificationStore
) -> None:
    # one insert: the same created_at for all, so the id breaks the tie
    same = await notifications.create(["ann", "amy", "abe"], NewNotification("t", "same"))
    ids = {n.id for n in same}
    await store.create_note(note_id="n1", title="t", created_by="owner")
    [about] = await notifications.create(["ann"], NewNotification("t", "about n1", note_id="n1"))
    pages = []
    after = None
    while True:
        page, _ = await notifications.list("ann", limit=1, after=after)
        if not page:
            break
        pages.append(page[0].id)
        after = (page[0].created_at, page[0].id)
    assert pages == [about.id, *(n.id for n in same if n.user_id == "ann")]
    # Amy's and Abe's share the timestamp: paging past one row of a tie finds no other's
    for user in ("amy", "abe"):
        [row], _ = await notifications.list(user)
        assert (await notifications.list(user, after=(row.created_at, row.id)))[0] == []
    assert ids == {n.id for n in same}
    assert await notifications.delete("bob", about.id) is False
    assert await notifications.delete("ann", about.id) is True
    assert await notifications.get(about.id) is None
    [again] = await notifications.create(["ann"], NewNotification("t", "again", note_id="n1"))
    assert await store.delete_note("n1")
    assert await notifications.get(again.id) is None
    assert len((await notifications.list("ann"))[0]) == 1  # the one not about n1


async def test_each_mention_notifies_once_and_only_known_users(
    store: Store, notifications: NotificationStore
) -> None:
    await store.create_note(
        note_id="n1", title="t", created_by="owner", permissions=Permissions(can_view=("bob",))
    )
    await store.upsert_user(UserRecord("carol"))
    make = NewNotification("mention", "You were mentioned", note_id="n1")
    first = await notifications.notify_mentions(
        "n1", ["bob", "carol", "owner", "bo", "nobody"], make, skip="owner"
    )
    assert sorted(n.user_id for n in first) == ["bob", "carol"]
    assert await notifications.mentioned_users("n1") == {"bob", "carol"}
    # the editor's own mention waits for a checkpoint where someone else edited last
    again = await notifications.notify_mentions("n1", ["bob", "carol", "owner"], make, skip="bob")
    assert [n.user_id for n in again] == ["owner"]
    assert await notifications.notify_mentions("n1", ["bob", "owner"], make, skip=None) == []
    assert await notifications.mentioned_users("n1") == {"bob", "carol", "owner"}


async def test_concurrent_checkpoints_notify_a_mention_once(
    store: Store, notifications: NotificationStore
) -> None:
    await store.create_note(
        note_id="n1", title="t", created_by="owner", permissions=Permissions(can_edit=("bob",))
    )
    make = NewNotification("mention", "m", note_id="n1")
    results = await asyncio.gather(
        *(notifications.notify_mentions("n1", ["bob"], make, skip=None) for _ in range(4)),
        return_exceptions=True,
    )
    created = [n for r in results if isinstance(r, list) for n in r]
    assert len(created) == 1
    assert len((await notifications.list("bob"))[0]) == 1


async def test_one_active_session_per_note(store: Store, sessions: SessionStore) -> None:
    await store.create_note(note_id="n1", title="t", created_by="owner")
    opened = await asyncio.gather(*(sessions.open("n1", (f"u{i}",)) for i in range(4)))
    assert len({s.id for s in opened}) == 1
    active = await sessions.active("n1")
    assert active is not None and active.active
    assert sorted(active.participants) == ["u0", "u1", "u2", "u3"]
    await sessions.open("n1", ("u9",), updates=3, size=120)
    await sessions.open("n1", updates=2, size=30)
    closed = await sessions.end("n1")
    assert closed is not None and not closed.active and closed.ended_at is not None
    assert (closed.updates, closed.bytes) == (5, 150)
    assert "u9" in closed.participants
    assert await sessions.end("n1") is None
    reopened = await sessions.open("n1", ("u1",))
    assert reopened.id != closed.id and reopened.participants == ("u1",)
    listed = await sessions.list("n1")
    assert [s.id for s in listed] == [reopened.id, closed.id]


async def test_idle_sessions_are_closed(store: Store, sessions: SessionStore) -> None:
    for note_id in ("n1", "n2", "n3"):
        await store.create_note(note_id=note_id, title="t", created_by="owner")
    await sessions.open("n1")
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    await sessions.open("n2")
    stale = await sessions.close_stale(cutoff)
    assert sorted(s.note_id for s in stale) == ["n1", "n2"]
    assert all(not s.active and s.ended_at == s.last_activity for s in stale)
    assert await sessions.active("n1") is None
    assert await sessions.close_stale(cutoff) == []
    await sessions.open("n3")
    assert await sessions.close_stale(datetime.now(UTC) - timedelta(hours=1)) == []
    [everything] = await sessions.close_stale()  # at an embedded start: all of them
    assert everything.note_id == "n3" and await sessions.active("n3") is None


async def test_a_session_needs_its_note(sessions: SessionStore, store: Store) -> None:
    with pytest.raises(NoteNotFound):
        await sessions.open("missing")
    await store.create_note(note_id="n1", title="t", created_by="owner")
    await sessions.open("n1", ("a",))
    await store.delete_note("n1")
    assert await sessions.list("n1") == []


async def test_recording_many_notes_opens_joins_and_keeps_sessions_in_one_go(
    store: Store, sessions: SessionStore
) -> None:
    for note_id in ("n1", "n2", "n3"):
        await store.create_note(note_id=note_id, title="t", created_by="owner")
    one = await sessions.open("n1", ("a",))
    two = await sessions.open("n2", ("b",), updates=1, size=5)
    recorded = await sessions.record(
        [
            SessionActivity("n1", ("a", "c"), 4, 40),
            SessionActivity("n2"),
            SessionActivity("n3", ("d",), 2, 20),
            SessionActivity("gone", ("e",), 1, 1),  # deleted meanwhile: left out
            SessionActivity("n1", ("f",), 1, 1),  # twice in one batch: merged
        ]
    )
    assert set(recorded) == {"n1", "n2", "n3"}
    first, second, third = [await sessions.active(n) for n in ("n1", "n2", "n3")]
    assert first is not None and first.id == one.id == recorded["n1"]
    assert (first.updates, first.bytes) == (5, 41)
    assert sorted(first.participants) == ["a", "c", "f"]
    assert first.last_activity >= one.last_activity
    assert second is not None and (second.updates, second.bytes) == (1, 5)
    assert second.last_activity >= two.last_activity
    assert third is not None and third.participants == ("d",) and third.updates == 2
    assert await sessions.record([]) == {}
    ended = await sessions.close_many(["n1", "n3", "gone"])
    assert sorted(s.note_id for s in ended) == ["n1", "n3"]
    assert all(not s.active for s in ended) and await sessions.close_many(["n1"]) == []


async def test_statistics_alone_never_open_a_session(store: Store, sessions: SessionStore) -> None:
    """A connection's leave recorded after another instance ended the session: its
    statistics go to that session, and no session is opened with nobody in it."""
    await store.create_note(note_id="n1", title="t", created_by="owner")
    first = await sessions.open("n1", ("ann",), updates=1, size=10)
    assert await sessions.record([SessionActivity("n1", (), 2, 20)]) == {"n1": first.id}
    await sessions.close_many(["n1"])
    assert await sessions.record([SessionActivity("n1", (), 3, 30)]) == {}
    assert await sessions.active("n1") is None
    [ended] = await sessions.list("n1")
    assert ended.id == first.id and (ended.updates, ended.bytes) == (6, 60)
    again = await sessions.record([SessionActivity("n1", ("bob",))])
    assert again["n1"] != first.id


async def test_only_confirmed_sessions_are_closed(store: Store, sessions: SessionStore) -> None:
    for note_id in ("n1", "n2", "n3"):
        await store.create_note(note_id=note_id, title="t", created_by="owner")
    await sessions.record([SessionActivity(n, ("ann",)) for n in ("n1", "n2")])
    asked: list[list[str]] = []

    async def confirm(note_ids: list[str]) -> list[str]:
        asked.append(note_ids)
        return ["n2"]

    ended = await sessions.close_many(["n3", "n2", "n1"], confirm=confirm)
    assert asked == [["n1", "n2"]]  # the notes with an active session, in order
    assert [record.note_id for record in ended] == ["n2"]
    assert await sessions.active("n1") is not None and await sessions.active("n2") is None


async def test_recording_compiles_its_statements_once_whatever_the_batch(
    store: Store, sessions: SessionStore
) -> None:
    """A refresh records every loaded note: the session and participant upserts are one
    parameterised statement each, compiled once and reused for any number of rows (a
    VALUES list with the rows in it was compiled afresh on every call)."""
    notes = [f"n{i}" for i in range(30)]
    for note_id in notes:
        await store.create_note(note_id=note_id, title="t", created_by="owner")
    sent: list[tuple[str, int]] = []

    def seen(_conn: object, _cursor: object, statement: str, *args: object) -> None:
        verb = statement.split(None, 1)[0].upper()
        if verb in ("SELECT", "INSERT"):
            sent.append((verb, id(getattr(args[1], "compiled", None))))

    def activity(count: int, users: int) -> list[SessionActivity]:
        people = tuple(f"u{j}" for j in range(users))
        return [SessionActivity(n, people, 3, 30) for n in notes[:count]]

    sa.event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
    try:
        first = await sessions.record(activity(30, 10))
        split = len(sent)
        again = await sessions.record(activity(12, 4))
    finally:
        sa.event.remove(store.engine.sync_engine, "before_cursor_execute", seen)
    assert set(first) == set(notes) and again == {n: first[n] for n in notes[:12]}
    assert [verb for verb, _ in sent] == ["SELECT", "INSERT", "INSERT"] * 2
    assert [c for _, c in sent[1:split]] == [c for _, c in sent[split + 1 :]]
    active = await sessions.active("n7")
    assert active is not None and (active.updates, active.bytes) == (6, 60)
    assert active.participants == tuple(f"u{j}" for j in range(10))
