"""The trash and registered users in storage: every test runs on SQLite and on Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pycrdt

from syncd.storage import (
    NewNotification,
    NotificationStore,
    Permissions,
    Store,
    UserRecord,
    VersionStore,
)


async def _note(store: Store, note_id: str, **rights: tuple[str, ...]) -> None:
    await store.create_note(
        note_id=note_id,
        title=f"note {note_id}",
        created_by="owner",
        permissions=Permissions(**rights),
    )


async def test_a_trashed_note_is_hidden_then_restored_whole(store: Store) -> None:
    await _note(store, "n1", can_view=("viewer",), can_delete=("deleter",))
    doc = pycrdt.Doc()
    doc.get("content", type=pycrdt.Text).insert(0, "kept")
    await store.append_updates("n1", [doc.get_update()])
    await store.save_snapshot("n1", doc.get_update(), position="1")
    before = await store.get_note("n1")
    trashed = await store.trash_note("n1")
    assert trashed is not None and trashed.deleted_at is not None
    assert await store.trash_note("n1") is None  # already there
    assert await store.get_note("n1") is None and await store.get_access("n1", "owner") is None
    assert (await store.get_note("n1", trashed=True)) == trashed
    assert await store.update_note("n1", updated_by="owner", title="x") is None
    assert (await store.list_notes(viewer_id=None))[1] == 0
    restored = await store.restore_note("n1")
    assert restored == before
    assert await store.restore_note("n1") is None  # not in the trash any more
    access = await store.get_access("n1", "viewer")
    assert access is not None and access.can_view
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None and snapshot.state == doc.get_update()


async def test_the_trash_lists_what_the_viewer_may_delete(store: Store) -> None:
    await _note(store, "n1", can_view=("viewer",), can_delete=("deleter",))
    await _note(store, "n2", can_edit=("deleter",))
    await _note(store, "live", can_delete=("deleter",))
    await store.trash_note("n1")
    await store.trash_note("n2")

    async def trash(viewer: str | None) -> list[str]:
        records, total = await store.list_notes(viewer_id=viewer, trashed=True)
        assert total == len(records)
        return [r.id for r in records]

    assert await trash("deleter") == ["n1"]  # an editor of n2 may not delete it
    assert await trash("viewer") == []
    assert await trash("owner") == ["n2", "n1"]  # newest first
    assert await trash(None) == ["n2", "n1"]
    assert [r.id for r in (await store.list_notes(viewer_id="deleter"))[0]] == ["live"]


async def test_purging_takes_expired_trash_only_with_everything_of_it(store: Store) -> None:
    notifications = NotificationStore(store.engine)
    versions = VersionStore(store.engine)
    for note_id in ("old", "new", "live"):
        await _note(store, note_id)
    doc = pycrdt.Doc()
    await versions.add("old", state=doc.get_update(), state_vector=doc.get_state())
    await notifications.create(["bob"], NewNotification("share", "about old", note_id="old"))
    await store.trash_note("old")
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    assert await store.purge_trash(cutoff - timedelta(days=1)) == []
    await store.trash_note("new")
    assert sorted(await store.purge_trash(cutoff)) == ["new", "old"]
    assert await store.get_note("old", trashed=None) is None
    assert await versions.list("old") == []
    assert await notifications.list("bob") == ([], 0)
    assert await store.get_note("live") is not None
    assert await store.delete_note("live") and not await store.delete_note("live")


async def test_notifications_of_a_trashed_note_are_hidden_not_counted(store: Store) -> None:
    notifications = NotificationStore(store.engine)
    await _note(store, "n1")
    await notifications.create(["bob"], NewNotification("share", "about n1", note_id="n1"))
    await notifications.create(["bob"], NewNotification("misc", "about nothing"))
    await store.trash_note("n1")
    listed, unread = await notifications.list("bob")
    assert [n.title for n in listed] == ["about nothing"] and unread == 1
    assert await notifications.mark_all_read("bob") == 1
    await store.restore_note("n1")
    listed, unread = await notifications.list("bob")
    assert {n.title for n in listed} == {"about n1", "about nothing"} and unread == 1


async def test_registered_users_keep_what_tokens_do_not_say(store: Store) -> None:
    user = await store.register_user("crm-7", name="Cy", email="cy@example.com")
    assert user == UserRecord("crm-7", "Cy", "cy@example.com", (), email_notifications=True)
    await store.upsert_user(UserRecord("crm-7", None, None, ("sales",)))
    assert await store.get_user("crm-7") == UserRecord("crm-7", "Cy", "cy@example.com", ("sales",))
    off = await store.register_user("crm-7", email_notifications=False)
    assert off.email_notifications is False and off.email == "cy@example.com"
    await store.upsert_user(UserRecord("crm-7", "Cy B", "cy@b.example", ("sales",)))
    assert await store.get_user("crm-7") == UserRecord(
        "crm-7", "Cy B", "cy@b.example", ("sales",), email_notifications=False
    )
    assert await store.register_user("crm-8") == UserRecord("crm-8")
