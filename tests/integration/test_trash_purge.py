"""The trash brings a note back whole, and forgets it whole: a restore brings its
versions back with it, and the cleanup job of a real server purges a note past
`SYNCD_TRASH_RETENTION_DAYS` with its versions, content and notifications."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.integration.collab_helpers import FAST, NOTES, notifications_of
from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token

ADMIN = make_token("ops", roles=("admin",))
OWNER = make_token("owner")


async def _take_versions(server: SyncdProcess, url: str) -> list[dict[str, object]]:
    async with server.client(OWNER) as api:
        for label, text in (("first", "one"), ("second", "one two")):
            put = await api.put(url, json={"content": text})
            assert put.status_code == 200, put.text
            taken = await api.post(f"{url}/versions", json={"label": label})
            assert taken.status_code == 201, taken.text
        listed = await api.get(f"{url}/versions")
    assert listed.status_code == 200, listed.text
    versions: list[dict[str, object]] = listed.json()["versions"]
    assert {"first", "second"} <= {v["label"] for v in versions}
    return versions


async def test_a_restore_brings_the_versions_back(syncd: SyncdProcess) -> None:
    note = await create_note(syncd, title="Versions")
    url = f"{NOTES}/{note['id']}"
    before = await _take_versions(syncd, url)
    async with syncd.client(OWNER) as api:
        first = next(v["number"] for v in before if v["label"] == "first")
        assert (await api.delete(url)).status_code == 204
        assert (await api.get(f"{url}/versions")).status_code == 404
        restored = await api.post(f"{url}/restore")
        assert restored.status_code == 200, restored.text
        after = await api.get(f"{url}/versions")
        assert after.status_code == 200, after.text
        assert after.json()["versions"] == before
        old = await api.get(f"{url}/versions/{first}")
        assert old.status_code == 200 and old.json()["content"] == "one", old.text
        # and a version of the restored note can be restored in turn
        back = await api.post(f"{url}/versions/{first}/restore")
        assert back.status_code in (200, 201), back.text
        assert (await api.get(url)).json()["content"] == "one"


#: table -> the column holding the note's id
_TABLES = {
    "notes": "id",
    "note_versions": "note_id",
    "doc_snapshots": "doc_id",
    "doc_updates": "doc_id",
    "notifications": "note_id",
}


def _rows(db: Path, note_id: str) -> dict[str, int]:
    """Rows about the note left in the server's SQLite file, per table."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {
            table: conn.execute(
                f"SELECT count(*) FROM {table} WHERE {column} = ?", (note_id,)
            ).fetchone()[0]
            for table, column in _TABLES.items()
        }


async def test_the_cleanup_job_purges_the_trash_after_its_retention(
    start_syncd: StartServer,
) -> None:
    """A retention of three seconds and a cleanup every half second: the trashed note
    goes with all its rows (read from the server's SQLite file); a live one stays."""
    server = await start_syncd(
        env={**FAST, "SYNCD_TRASH_RETENTION_DAYS": str(3 / 86400), "SYNCD_CLEANUP_INTERVAL": "0.5"}
    )
    doomed = await create_note(server, title="Doomed", permissions={"canView": ["bob"]})
    live = await create_note(server, title="Live", permissions={"canView": ["bob"]})
    url = f"{NOTES}/{doomed['id']}"
    await _take_versions(server, url)
    db = server.data_dir / "syncd.db"

    async def shared() -> bool:
        return len((await notifications_of(server, "bob"))[0]) == 2

    await eventually(shared, what="bob's two share notifications")
    kept = _rows(db, doomed["id"])
    assert kept["note_versions"] >= 2 and kept["notifications"] == 1 and kept["notes"] == 1
    assert kept["doc_snapshots"] + kept["doc_updates"] >= 1
    async with server.client(OWNER) as api:
        assert (await api.delete(url)).status_code == 204

    async def purged() -> bool:
        async with server.client(ADMIN) as api:
            trash = (await api.get(NOTES, params={"deleted": "true"})).json()["notes"]
        return trash == []

    await eventually(purged, timeout=30, what="the trashed note purged by the cleanup job")
    assert set(_rows(db, doomed["id"]).values()) == {0}
    async with server.client(OWNER) as api:
        assert (await api.post(f"{url}/restore")).status_code == 404
        assert (await api.get(f"{NOTES}/{live['id']}")).status_code == 200
    assert _rows(db, live["id"])["notes"] == 1
    assert [n["noteId"] for n in (await notifications_of(server, "bob"))[0]] == [live["id"]]
    async with server.client(ADMIN) as api:
        jobs = (await api.get("/api/jobs", params={"status": "complete"})).json()["jobs"]
    assert any(
        j["function"] == "cleanup" and (j["result"] or {}).get("trash") == 1 for j in jobs
    ), jobs
