"""Version history against a real server and stock Yjs clients: label, diff, restore live,
automatic versions at session end and during long editing, retention."""

from __future__ import annotations

from tests.support.fixtures import StartServer, create_note, paragraphs
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

NOTES = "/api/collaborative-notes"


async def versions_of(server: SyncdProcess, note_id: str, user: str = "owner") -> list[dict]:
    async with server.client(make_token(user)) as api:
        response = await api.get(f"{NOTES}/{note_id}/versions")
    assert response.status_code == 200, response.text
    return response.json()["versions"]


async def test_label_type_more_diff_and_restore_reaches_a_connected_client(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    url = f"{NOTES}/{note['id']}/versions"
    editor = await node.connect(
        "editor", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    # a second client proves the server has applied (and stored) what the editor typed
    watcher = await node.connect(
        "watcher", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    labelled = paragraphs("Agenda", "Pricing for Q3")
    await editor.pm_set(labelled)
    await watcher.wait_pm(labelled)
    async with syncd.client(make_token("owner")) as api:
        created = await api.post(url, json={"label": "before the call"})
        assert created.status_code == 201, created.text
        v1 = created.json()
        assert v1["label"] == "before the call"
        assert v1["authors"] == ["owner"]
        assert v1["size"] > 0 and not v1["automatic"]

        await editor.pm_insert_text("Discount agreed", at="new_paragraph")
        await editor.pm_type(" (10%)")
        await watcher.wait_pm_text(contains="Discount agreed (10%)")

        shown = (await api.get(f"{url}/{v1['number']}")).json()
        assert shown["content"] == "Agenda\nPricing for Q3"
        assert shown["contentJson"] == labelled

        diff = (await api.get(f"{url}/{v1['number']}/diff")).json()
        # from the current content back to the labelled version: the new line goes away
        assert diff["removed"] == ["Discount agreed (10%)"]
        assert diff["added"] == []
        assert "-Discount agreed (10%)" in diff["diff"]

        restored = await api.post(f"{url}/{v1['number']}/restore")
        assert restored.status_code == 201, restored.text
        assert restored.json()["restoredFrom"] == v1["number"]
    await editor.wait_pm(labelled)
    await watcher.wait_pm(labelled)
    assert await editor.pm_text() == "Agenda\nPricing for Q3"
    async with syncd.client(make_token("owner")) as api:
        listed = (await api.get(url)).json()["versions"]
        assert [v["number"] for v in listed] == [2, 1]
        after = (await api.get(f"{url}/2/diff", params={"against": "1"})).json()
        assert after["added"] == [] and after["removed"] == [] and after["diff"] == ""
        note_now = (await api.get(f"{NOTES}/{note['id']}")).json()
    assert note_now["contentJson"] == labelled


async def test_an_automatic_version_appears_when_the_last_client_leaves(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd, permissions={"canView": ["ann"]})
    ann = await node.connect(
        "ann", url=syncd.ws_url, room=note["id"], token=make_token("ann"), wait_synced=True
    )
    await node.connect(
        "bob", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    assert await versions_of(syncd, note["id"]) == []
    await ann.destroy()  # ann read only; bob is still there: no session end yet
    bob = node.client("bob")
    await bob.pm_type("Notes from the call")
    await bob.destroy()
    versions = await eventually(lambda: versions_of(syncd, note["id"]), what="an automatic version")
    assert len(versions) == 1
    assert versions[0]["automatic"] is True
    assert versions[0]["authors"] == ["owner"]
    async with syncd.client(make_token("owner")) as api:
        content = (await api.get(f"{NOTES}/{note['id']}/versions/1")).json()["content"]
    assert content == "Notes from the call"

    async def note_moved() -> bool:
        async with syncd.client(make_token("owner")) as api:
            now = (await api.get(f"{NOTES}/{note['id']}")).json()
        return now["version"] > note["version"] and now["lastModified"] > note["lastModified"]

    # the stored change moves the note's version and lastModified (checkpoint at unload)
    await eventually(note_moved, what="the note's version to move")
    # a session that changes nothing adds no version
    again = await node.connect(
        "again", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    await again.destroy()
    await node.connect(
        "probe", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    assert len(await versions_of(syncd, note["id"])) == 1


async def test_long_editing_takes_versions_and_retention_keeps_labelled_ones(
    start_syncd: StartServer, node: NodeYjs
) -> None:
    server = await start_syncd(env={"SYNCD_VERSION_INTERVAL": "0.3", "SYNCD_VERSION_KEEP": "2"})
    note = await create_note(server)
    url = f"{NOTES}/{note['id']}/versions"
    editor = await node.connect(
        "e", url=server.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    async with server.client(make_token("owner")) as api:
        await editor.pm_type("first")
        labelled = (await api.post(url, json={"label": "keep me"})).json()
        for word in (" second", " third", " fourth", " fifth"):
            seen = {v["number"] for v in await versions_of(server, note["id"])}
            await editor.pm_type(word)
            # while the editor stays connected, continued change is versioned by interval
            await eventually(
                lambda seen=seen: _has_new_automatic(server, note["id"], seen),
                what=f"an automatic version after {word!r}",
            )
    versions = await versions_of(server, note["id"])
    automatic = [v for v in versions if v["automatic"]]
    assert len(automatic) == 2, versions  # thinned to the newest SYNCD_VERSION_KEEP
    assert labelled["number"] in {v["number"] for v in versions}


async def _has_new_automatic(server: SyncdProcess, note_id: str, seen: set[int]) -> bool:
    return any(
        v["automatic"] and v["number"] not in seen for v in await versions_of(server, note_id)
    )


async def test_version_rights_and_errors(syncd: SyncdProcess) -> None:
    note = await create_note(
        syncd, content="hello", permissions={"canView": ["viewer"], "canEdit": ["editor"]}
    )
    url = f"{NOTES}/{note['id']}/versions"
    async with syncd.client(make_token("viewer")) as viewer:
        assert (await viewer.get(url)).status_code == 200
        assert (await viewer.post(url, json={})).status_code == 403
        assert (await viewer.post(f"{url}/1/restore")).status_code == 403
    async with syncd.client(make_token("stranger")) as stranger:
        assert (await stranger.get(url)).status_code == 403
    async with syncd.client(make_token("editor")) as editor:
        made = await editor.post(url)  # no body: an unlabelled version
        assert made.status_code == 201, made.text
        assert made.json()["label"] is None
        assert (await editor.get(f"{url}/9")).status_code == 404
        assert (await editor.get(f"{url}/1/diff", params={"against": "9"})).status_code == 404
        assert (await editor.get(f"{url}/1/diff", params={"against": "x"})).status_code == 422
        assert (await editor.post(url, json={"label": 5})).status_code == 422
        assert (await editor.post(f"{url}/7/restore")).status_code == 404
        first = (await editor.get(f"{url}/1/diff", params={"against": "1"})).json()
        assert first["added"] == first["removed"] == []
