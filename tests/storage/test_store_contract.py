"""The storage contract: every test runs on SQLite and on Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pycrdt
import pytest
import sqlalchemy as sa

from syncd.storage import (
    NoteExists,
    NoteMetadata,
    NoteNotFound,
    Permissions,
    Store,
    UserRecord,
    migrate_database,
    open_store,
)


def text_doc(client_id: int | None = None) -> tuple[pycrdt.Doc, pycrdt.Text, list[bytes]]:
    """A doc whose every transaction's update is appended to the returned list."""
    doc = pycrdt.Doc() if client_id is None else pycrdt.Doc(client_id=client_id)
    text = doc.get("content", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    return doc, text, updates


def text_of(*updates: bytes) -> str:
    doc = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    for update in updates:
        doc.apply_update(update)
    return str(text)


async def test_migrations_are_idempotent(store_url: str) -> None:
    await migrate_database(store_url)
    await migrate_database(store_url)
    async with open_store(store_url) as store:  # migrates a third time
        await store.create_note(note_id="n1", title="t", created_by="u")
    async with open_store(store_url, migrate=False) as store:
        assert (await store.get_note("n1")) is not None


async def test_concurrent_migrations_are_safe(store_url: str) -> None:
    await asyncio.gather(*(migrate_database(store_url) for _ in range(3)))
    async with open_store(store_url, migrate=False) as store:
        await store.create_note(note_id="n1", title="t", created_by="u")


async def test_migrated_schema_matches_table_definitions(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from syncd.storage.schema import metadata

    def diff(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with store._read() as conn:
        assert await conn.run_sync(diff) == []


async def test_ping(store: Store) -> None:
    await store.ping()
    assert store.dialect in ("sqlite", "postgresql")


async def test_users_upsert_and_get(store: Store) -> None:
    assert await store.get_user("u1") is None
    await store.upsert_user(UserRecord("u1", "Ann", "ann@example.com", ("admin",)))
    assert await store.get_user("u1") == UserRecord("u1", "Ann", "ann@example.com", ("admin",))
    # a token without an e-mail keeps the stored one (the CRM may have registered it)
    await store.upsert_user(UserRecord("u1", "Ann B", None, ()))
    assert await store.get_user("u1") == UserRecord("u1", "Ann B", "ann@example.com", ())


async def test_create_and_get_note(store: Store) -> None:
    note = await store.create_note(
        note_id="n1",
        title="Kickoff",
        created_by="owner",
        lead_id="lead-1",
        metadata=NoteMetadata(("b", "a", "b"), "meeting", "high", "2024-01-01"),
        content_text="hello",
    )
    assert note == await store.get_note("n1")
    assert (note.id, note.title, note.lead_id, note.created_by) == (
        "n1",
        "Kickoff",
        "lead-1",
        "owner",
    )
    assert note.updated_by is None
    assert note.metadata == NoteMetadata(("a", "b"), "meeting", "high", "2024-01-01")
    assert (note.content_text, note.version) == ("hello", 1)
    assert note.created_at.tzinfo is UTC and note.last_modified == note.created_at
    assert await store.get_note("missing") is None


async def test_generated_ids_and_duplicates(store: Store) -> None:
    first = await store.create_note(note_id=None, title="a", created_by="u")
    second = await store.create_note(note_id=None, title="b", created_by="u")
    assert len(first.id) == 32 and first.id != second.id
    with pytest.raises(NoteExists):
        await store.create_note(note_id=first.id, title="again", created_by="u")
    assert (await store.get_note(first.id)).title == "a"  # type: ignore[union-attr]


async def test_update_note_changes_only_what_is_given(store: Store) -> None:
    created = await store.create_note(
        note_id="n1",
        title="old",
        created_by="owner",
        lead_id="lead",
        permissions=Permissions(can_view=("v",)),
        metadata=NoteMetadata(("t",), "c"),
    )
    updated = await store.update_note("n1", updated_by="editor", title="new")
    assert updated is not None
    assert (updated.title, updated.lead_id, updated.updated_by) == ("new", "lead", "editor")
    assert updated.permissions == created.permissions
    assert updated.metadata == created.metadata
    assert updated.last_modified > created.last_modified
    assert updated.version == created.version

    updated = await store.update_note(
        "n1",
        updated_by="editor",
        lead_id=None,
        permissions=Permissions(can_edit=("e",)),
        metadata=NoteMetadata(("x", "y"), None, "low"),
    )
    assert updated is not None and updated.lead_id is None
    assert updated.permissions == Permissions(can_view=("e",), can_edit=("e",))
    assert updated.metadata == NoteMetadata(("x", "y"), None, "low", None)
    assert await store.get_note("n1") == updated
    assert await store.update_note("missing", updated_by="u", title="x") is None


async def test_permissions_are_normalised(store: Store) -> None:
    given = Permissions(can_view=("v", "e1"), can_edit=("e2", "e1"), can_delete=("d", "e2"))
    note = await store.create_note(note_id="n1", title="t", created_by="o", permissions=given)
    # Edit implies view; ids sorted; one row per user.
    assert note.permissions == Permissions(
        can_view=("e1", "e2", "v"), can_edit=("e1", "e2"), can_delete=("d", "e2")
    )
    async with store._read() as conn:
        rows = await conn.scalar(sa.text("SELECT count(*) FROM note_permissions"))
    assert rows == 4


async def test_record_doc_change(store: Store) -> None:
    await store.create_note(note_id="n1", title="t", created_by="o")
    await store.record_doc_change("n1", updated_by="e", content_text="new text")
    await store.record_doc_change("n1", updated_by=None, content_text="newer text")
    note = await store.get_note("n1")
    assert note is not None
    assert (note.version, note.content_text, note.updated_by) == (3, "newer text", "e")
    await store.record_doc_change("missing", updated_by="e", content_text="x")  # no error


async def _ids(store: Store, **filters: object) -> tuple[list[str], int]:
    filters.setdefault("viewer_id", None)
    notes, total = await store.list_notes(**filters)  # type: ignore[arg-type]
    return [note.id for note in notes], total


async def test_list_filters(store: Store) -> None:
    await store.create_note(
        note_id="a",
        title="Quarterly REVIEW",
        created_by="o",
        lead_id="L1",
        metadata=NoteMetadata(("sales", "q3"), "meeting", "high"),
    )
    await store.create_note(
        note_id="b",
        title="Call notes",
        created_by="o",
        lead_id="L2",
        metadata=NoteMetadata(("sales",), "call", "low"),
        content_text="we reviewed 100% of it",
    )
    await store.create_note(note_id="c", title="a_b plan", created_by="o", content_text="axb")
    assert await _ids(store) == (["c", "b", "a"], 3)
    assert await _ids(store, lead_id="L1") == (["a"], 1)
    assert await _ids(store, q="review") == (["b", "a"], 2)  # title or content, any case
    assert await _ids(store, q="100%") == (["b"], 1)
    assert await _ids(store, q="%") == (["b"], 1)  # literal, not a wildcard
    assert await _ids(store, q="_") == (["c"], 1)
    assert await _ids(store, q="a_b") == (["c"], 1)
    assert await _ids(store, tag="sales") == (["b", "a"], 2)
    assert await _ids(store, tag="q3") == (["a"], 1)
    assert await _ids(store, category="call") == (["b"], 1)
    assert await _ids(store, priority="high") == (["a"], 1)
    assert await _ids(store, tag="sales", priority="low") == (["b"], 1)
    assert await _ids(store, tag="nope") == ([], 0)


async def test_list_pagination_orders_by_last_modified(store: Store) -> None:
    for i in range(5):
        await store.create_note(note_id=f"n{i}", title="t", created_by="o")
    assert await _ids(store, limit=2) == (["n4", "n3"], 5)
    assert await _ids(store, offset=2, limit=2) == (["n2", "n1"], 5)
    assert await _ids(store, offset=4, limit=2) == (["n0"], 5)
    assert await _ids(store, offset=10) == ([], 5)
    await store.update_note("n0", updated_by="o", title="touched")
    assert (await _ids(store, limit=1))[0] == ["n0"]


@pytest.mark.parametrize(
    ("viewer", "expected"),
    [
        ("owner", ["n-own", "n-shared"]),
        ("viewer", ["n-shared"]),
        ("editor", ["n-shared"]),
        ("deleter", ["n-shared"]),
        ("stranger", []),
    ],
)
async def test_list_viewer_filtering(store: Store, viewer: str, expected: list[str]) -> None:
    await store.create_note(
        note_id="n-shared",
        title="shared",
        created_by="owner",
        permissions=Permissions(("viewer",), ("editor",), ("deleter",)),
    )
    await store.create_note(note_id="n-own", title="own", created_by="owner")
    await store.create_note(note_id="n-other", title="other", created_by="someone")
    ids, total = await _ids(store, viewer_id=viewer)
    assert (sorted(ids), total) == (expected, len(expected))
    assert (await _ids(store))[1] == 3  # no viewer: everything


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("owner", (True, True, True, True)),
        ("viewer", (False, True, False, False)),
        ("editor", (False, True, True, False)),  # edit implies view
        ("deleter", (False, False, False, True)),
        ("stranger", (False, False, False, False)),
    ],
)
async def test_get_access(store: Store, user: str, expected: tuple[bool, ...]) -> None:
    await store.create_note(
        note_id="n1",
        title="t",
        created_by="owner",
        permissions=Permissions(("viewer",), ("editor",), ("deleter",)),
    )
    access = await store.get_access("n1", user)
    assert access is not None
    assert (access.owner, access.can_view, access.can_edit, access.can_delete) == expected
    assert await store.get_access("missing", user) is None


async def test_append_and_read_updates(store: Store) -> None:
    await store.create_note(note_id="n1", title="t", created_by="o")
    _, text, updates = text_doc()
    for char in "hello":
        text += char
    last = await store.append_updates("n1", updates[:3])
    assert await store.append_updates("n1", updates[3:]) > last
    rows = await store.read_updates("n1")
    assert [data for _, data in rows] == updates
    seqs = [seq for seq, _ in rows]
    assert seqs == sorted(seqs) and seqs[-1] == await store.append_updates("n1", [])
    assert [data for _, data in await store.read_updates("n1", after_seq=last)] == updates[3:]
    assert await store.read_updates("other") == []
    with pytest.raises(NoteNotFound):
        await store.append_updates("missing", updates[:1])


async def test_snapshot_round_trip(store: Store) -> None:
    await store.create_note(note_id="n1", title="t", created_by="o")
    assert await store.load_snapshot("n1") is None
    doc, text, _ = text_doc()
    text += "hello"
    assert await store.save_snapshot("n1", doc.get_update(), position="7")
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None
    assert (snapshot.state, snapshot.position) == (doc.get_update(), "7")
    assert snapshot.state_vector == doc.get_state()
    with pytest.raises(NoteNotFound):
        await store.save_snapshot("missing", doc.get_update(), position="1")


async def test_snapshot_never_goes_backwards(store: Store) -> None:
    await store.create_note(note_id="n1", title="t", created_by="o")
    doc, text, _ = text_doc()
    text += "small"
    small = doc.get_update()
    text += " and bigger"
    big = doc.get_update()
    assert await store.save_snapshot("n1", big, position="2")
    assert not await store.save_snapshot("n1", small, position="1")
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None
    assert (text_of(snapshot.state), snapshot.position) == ("small and bigger", "2")
    # Concurrent edits from another client: neither state dominates the other.
    other, other_text, _ = text_doc()
    other_text += "elsewhere"
    assert not await store.save_snapshot("n1", other.get_update(), position="3")
    assert await store.save_snapshot("n1", big, position="2")  # equal is fine


async def test_snapshot_keeps_deletions_at_equal_clocks(store: Store) -> None:
    await store.create_note(note_id="n1", title="t", created_by="o")
    doc, text, _ = text_doc()
    text += "hello world"
    before_delete = doc.get_update()
    del text[5:]  # a deletion adds no clock: same state vector as before
    assert doc.get_state() == pycrdt.get_state(before_delete)
    assert await store.save_snapshot("n1", doc.get_update(), position="2")
    assert await store.save_snapshot("n1", before_delete, position="2")
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None and text_of(snapshot.state) == "hello"


async def test_compaction_folds_the_log_into_the_snapshot(store: Store) -> None:
    await store.create_note(note_id="n1", title="t", created_by="o")
    assert await store.compact_doc("n1") == 0
    _, text, updates = text_doc()
    for word in ("alpha ", "beta ", "gamma"):
        text += word
    await store.append_updates("n1", updates)
    assert len(await store.read_updates("n1")) == 3
    assert await store.compact_doc("n1") == 3
    assert await store.compact_doc("n1") == 0  # idempotent
    assert await store.read_updates("n1") == []
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None and text_of(snapshot.state) == "alpha beta gamma"

    text += "!"
    del text[0:6]
    last = await store.append_updates("n1", updates[3:])
    assert last > int(snapshot.position)  # seqs are never reused after compaction
    assert await store.compact_doc("n1") == 2
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None and snapshot.position == str(last)
    assert text_of(snapshot.state) == text_of(*updates) == "beta gamma!"


async def test_snapshot_plus_log_equals_all_updates(store: Store) -> None:
    """What a loader sees (snapshot + remaining log) equals every update applied."""
    await store.create_note(note_id="n1", title="t", created_by="o")
    _, text_a, updates = text_doc(client_id=1)
    _, text_b, updates_b = text_doc(client_id=2)
    for i in range(20):
        text_a += f"a{i} "
        text_b.insert(0, f"b{i} ")
        await store.append_updates("n1", updates[-1:] + updates_b[-1:])
        if i % 7 == 3:
            await store.compact_doc("n1")
    snapshot = await store.load_snapshot("n1")
    assert snapshot is not None
    remaining = [data for _, data in await store.read_updates("n1")]
    assert remaining  # the last compaction was not the last write
    assert text_of(snapshot.state, *remaining) == text_of(*updates, *updates_b)


async def test_compaction_concurrent_with_appends_loses_nothing(store: Store) -> None:
    await store.create_note(note_id="n1", title="t", created_by="o")
    _, text, updates = text_doc()
    for i in range(60):
        text += f"{i},"

    async def append() -> None:
        for update in updates:
            await store.append_updates("n1", [update])

    async def compact() -> None:
        for _ in range(15):
            await store.compact_doc("n1")

    await asyncio.gather(append(), compact(), compact())
    snapshot = await store.load_snapshot("n1")
    remaining = [data for _, data in await store.read_updates("n1")]
    state = [snapshot.state] if snapshot else []
    assert text_of(*state, *remaining) == str(text)


async def test_delete_note_cascades(store: Store) -> None:
    await store.create_note(
        note_id="n1",
        title="t",
        created_by="o",
        permissions=Permissions(("v",)),
        metadata=NoteMetadata(("tag",)),
    )
    doc, text, updates = text_doc()
    text += "x"
    await store.append_updates("n1", updates)
    await store.save_snapshot("n1", doc.get_update(), position="1")
    assert await store.delete_note("n1")
    assert not await store.delete_note("n1")
    assert await store.get_note("n1") is None and await store.get_access("n1", "o") is None
    assert await store.read_updates("n1") == [] and await store.load_snapshot("n1") is None
    async with store._read() as conn:
        for table in ("note_permissions", "note_tags", "doc_snapshots", "doc_updates"):
            assert await conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 0


async def test_created_record_is_the_stored_one(store: Store) -> None:
    """`create_note` answers a note without rights or tags from the row it inserted (no
    read back): that answer must be exactly what reading the note returns."""
    created = await store.create_note(
        note_id="plain",
        title="t",
        created_by="owner",
        lead_id="lead-1",
        metadata=NoteMetadata((), "cat", "high", "2026-01-02"),
        content_text="body",
    )
    assert created == await store.get_note("plain")
    assert created.created_at.tzinfo is not None
    with_children = await store.create_note(
        note_id="rich",
        title="t",
        created_by="owner",
        permissions=Permissions(can_view=("v2", "v1"), can_edit=("e1",), can_delete=("v1",)),
        metadata=NoteMetadata(("b", "a", "a"), None, None, None),
    )
    assert with_children == await store.get_note("rich")


async def test_recreated_note_has_no_rights_of_the_purged_one(store: Store) -> None:
    """`create_note` inserts a note's rights and tags without deleting first: a purged note's
    rows must be gone with it (foreign keys, ON DELETE CASCADE), or a note created again
    under the same id would inherit them."""
    await store.create_note(
        note_id="again",
        title="t",
        created_by="owner",
        permissions=Permissions(can_view=("u1",), can_edit=("u1",)),
        metadata=NoteMetadata(("tag",), None, None, None),
    )
    assert await store.delete_note("again")
    recreated = await store.create_note(note_id="again", title="t", created_by="owner")
    assert recreated == await store.get_note("again")
    assert recreated.permissions == Permissions()
    assert recreated.metadata.tags == ()
    access = await store.get_access("again", "u1")
    assert access is not None and not access.can_view and not access.can_edit
