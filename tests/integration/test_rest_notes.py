"""The notes REST API against a real server and stock Yjs clients."""

from __future__ import annotations

import base64

from pycrdt import Doc, Text

from tests.support.fixtures import create_note
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

NOTES = "/api/collaborative-notes"


async def test_what_a_yjs_client_typed_is_what_get_returns(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    editor = await node.connect(
        "e", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    await editor.pm_set(
        {
            "type": "doc",
            "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "Call the lead"}]},
                {
                    "type": "paragraph",
                    "content": [
                        {"type": "text", "text": "on "},
                        {"type": "text", "text": "Monday", "marks": [{"type": "strong"}]},
                    ],
                },
            ],
        }
    )
    await editor.pm_type(" morning")
    expected_json = await editor.pm_get(raw=True)
    async with syncd.client(make_token("owner")) as api:
        body = (await api.get(f"{NOTES}/{note['id']}")).json()
    assert body["content"] == "Call the lead\non Monday morning"
    assert body["contentJson"] == expected_json


async def test_put_content_reaches_a_connected_client_live(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd, content="first draft")
    editor = await node.connect(
        "e", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    assert await editor.pm_text() == "first draft"
    async with syncd.client(make_token("owner")) as api:
        response = await api.put(f"{NOTES}/{note['id']}", json={"content": "second\ndraft"})
    assert response.status_code == 200, response.text
    await editor.wait_pm_text(equals="second\ndraft")
    pm = {
        "type": "doc",
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "as json"}]}],
    }
    async with syncd.client(make_token("owner")) as api:
        response = await api.put(f"{NOTES}/{note['id']}", json={"contentJson": pm})
    assert response.status_code == 200, response.text
    assert response.json()["contentJson"] == pm
    await editor.wait_pm(pm)


async def test_a_yjs_update_posted_over_rest_reaches_editors(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    editor = await node.connect(
        "e", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    doc = Doc()
    doc["text"] = Text("from the CRM back end")
    update = base64.b64encode(doc.get_update()).decode()
    async with syncd.client(make_token("svc", roles=["service"])) as api:
        response = await api.post(f"{NOTES}/{note['id']}/yjs-update", json={"update": update})
    assert response.status_code == 200, response.text
    await editor.wait_text(equals="from the CRM back end")


async def test_the_list_shows_only_notes_the_caller_may_view(syncd: SyncdProcess) -> None:
    mine = await create_note(syncd, "alice", title="Alice private")
    shared = await create_note(syncd, "alice", title="Shared", permissions={"canView": ["bob"]})
    editable = await create_note(syncd, "carol", title="Carol's", permissions={"canEdit": ["bob"]})
    async with syncd.client(make_token("bob")) as api:
        ids = {n["id"] for n in (await api.get(NOTES)).json()["notes"]}
    assert ids == {shared["id"], editable["id"]}
    async with syncd.client(make_token("root", roles=["admin"])) as api:
        ids = {n["id"] for n in (await api.get(NOTES)).json()["notes"]}
    assert {mine["id"], shared["id"], editable["id"]} <= ids


async def test_the_list_filters_and_paginates(syncd: SyncdProcess) -> None:
    await create_note(
        syncd,
        title="Kickoff",
        leadId="lead-1",
        metadata={"tags": ["sales"], "category": "meeting", "priority": "high"},
    )
    await create_note(
        syncd,
        title="Follow-up 50% off",
        leadId="lead-2",
        content="discuss pricing",
        metadata={"tags": ["sales", "pricing"], "category": "call", "priority": "low"},
    )
    await create_note(syncd, title="Internal", metadata={"tags": ["ops"]})
    async with syncd.client(make_token("owner")) as api:

        async def titles(**params: str) -> list[str]:
            response = await api.get(NOTES, params=params)
            assert response.status_code == 200, response.text
            return sorted(n["title"] for n in response.json()["notes"])

        assert await titles(leadId="lead-1") == ["Kickoff"]
        assert await titles(tag="sales") == ["Follow-up 50% off", "Kickoff"]
        assert await titles(category="call") == ["Follow-up 50% off"]
        assert await titles(priority="high") == ["Kickoff"]
        assert await titles(q="PRICING") == ["Follow-up 50% off"]
        assert await titles(q="50%") == ["Follow-up 50% off"]
        page = (await api.get(NOTES, params={"limit": "2", "page": "2"})).json()
        assert page["pagination"] == {"page": 2, "limit": 2, "total": 3, "pages": 2}
        assert len(page["notes"]) == 1


async def test_errors_are_json_with_the_right_status(syncd: SyncdProcess) -> None:
    note = await create_note(syncd, permissions={"canView": ["viewer"]})
    url = f"{NOTES}/{note['id']}"
    async with syncd.client() as anonymous:
        assert (await anonymous.get(url)).status_code == 401
    async with syncd.client(make_token("stranger")) as stranger:
        # the note exists and the stranger may not see it: 403, as the WebSocket's 4403
        for response in (
            await stranger.get(url),
            await stranger.put(url, json={"title": "mine now"}),
            await stranger.delete(url),
            await stranger.post(f"{url}/yjs-update", json={"update": "AAA="}),
        ):
            assert response.status_code == 403, response.text
            assert response.json()["error"]["code"] == "forbidden"
        assert (await stranger.get(f"{NOTES}/no-such-note")).status_code == 404
    async with syncd.client(make_token("viewer")) as viewer:
        assert (await viewer.get(url)).status_code == 200
        forbidden = await viewer.put(url, json={"title": "mine now"})
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["code"] == "forbidden"
        assert (await viewer.delete(url)).status_code == 403
    async with syncd.client(make_token("owner")) as owner:
        bad = await owner.put(url, json={"metadata": {"tags": "not-a-list"}})
        assert bad.status_code == 422
        assert "metadata.tags" in bad.json()["error"]["message"]
        assert (await owner.post(NOTES, json={})).status_code == 422
        assert (await owner.post(NOTES, content=b"{not json")).status_code == 400
        huge = await owner.post(NOTES, json={"title": "x", "content": "y" * (9 * 1024 * 1024)})
        assert huge.status_code == 413
        bad_pm = await owner.put(url, json={"contentJson": {"type": 5}})
        assert bad_pm.status_code == 422
        assert (await owner.get(f"{NOTES}/nope")).status_code == 404
        assert (await owner.delete(url)).status_code == 204
        assert (await owner.get(url)).status_code == 404


async def test_deleting_a_note_closes_its_connections_4404(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    editor = await node.connect(
        "e",
        url=syncd.ws_url,
        room=note["id"],
        token=make_token("owner"),
        reconnect=False,
        wait_synced=True,
    )
    async with syncd.client(make_token("owner")) as api:
        assert (await api.delete(f"{NOTES}/{note['id']}")).status_code == 204
    assert (await editor.wait_closed())[0] == 4404


async def test_auto_create_opens_an_unknown_note_for_its_first_user(
    start_syncd, node: NodeYjs
) -> None:
    server = await start_syncd(env={"SYNCD_AUTO_CREATE_NOTES": "1"})
    client = await node.connect(
        "c", url=server.ws_url, room="bench-room-1", token=make_token("dev"), wait_synced=True
    )
    await client.insert("auto")
    async with server.client(make_token("dev")) as api:
        body = (await api.get(f"{NOTES}/bench-room-1")).json()
    assert body["createdBy"] == "dev"
    async with server.client(make_token("other")) as api:  # it exists, and is dev's
        assert (await api.get(f"{NOTES}/bench-room-1")).status_code == 403
