"""Notifications against a real server: REST, Socket.IO delivery with socket.io-client,
notifications syncd creates itself (shares, @mentions), read state."""

from __future__ import annotations

import pytest

from tests.integration.collab_helpers import FAST, NOTES, mention, notifications_of, notify
from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs, NodeYjsError


@pytest.fixture
async def server(start_syncd: StartServer) -> SyncdProcess:
    return await start_syncd(env=FAST)


async def test_a_notification_reaches_every_socket_of_its_user_and_no_one_else(
    server: SyncdProcess, node: NodeYjs
) -> None:
    tab1 = await node.sio_connect("ann-1", server.http_url, token=make_token("ann"))
    tab2 = await node.sio_connect("ann-2", server.http_url, token=make_token("ann"))
    bob = await node.sio_connect("bob", server.http_url, token=make_token("bob"))
    [created] = await notify(server, ["ann"], "Quarterly review", category="reminder")
    for tab in (tab1, tab2):
        [payload] = await tab.wait_sio_event("notification:new", contains={"id": created["id"]})
        assert payload["title"] == "Quarterly review" and payload["userId"] == "ann"
        assert payload["category"] == "reminder" and payload["read"] is False
    # Bob's first notification:new is his own one: Ann's never reached him.
    await notify(server, ["bob"], "For Bob")
    [first] = await bob.wait_sio_event("notification:new")
    assert first["title"] == "For Bob"
    assert len(node.client_events("bob", "sio")) == 1


async def test_a_socket_needs_a_valid_token(server: SyncdProcess, node: NodeYjs) -> None:
    with pytest.raises(NodeYjsError, match=r"unauthorized|invalid|missing"):
        await node.sio_connect("anon", server.http_url)
    with pytest.raises(NodeYjsError, match=r"unauthorized|invalid|missing"):
        await node.sio_connect("forged", server.http_url, token=make_token("x", secret="nope" * 8))


async def test_mark_read_and_mark_all_read_change_what_get_returns(server: SyncdProcess) -> None:
    first, second, third = [
        (await notify(server, ["ann"], title, category=category))[0]
        for title, category in (("one", "share"), ("two", "mention"), ("three", "mention"))
    ]
    items, unread = await notifications_of(server, "ann")
    assert [n["title"] for n in items] == ["three", "two", "one"] and unread == 3
    async with server.client(make_token("ann")) as api:
        response = await api.put(f"/api/notifications/{second['id']}/read")
        assert response.status_code == 200 and response.json()["read"] is True
        assert (await api.put("/api/notifications/nope/read")).status_code == 404
    async with server.client(make_token("bob")) as api:  # not Bob's to mark
        assert (await api.put(f"/api/notifications/{first['id']}/read")).status_code == 404
    unread_items, unread = await notifications_of(server, "ann", unread="true")
    assert [n["id"] for n in unread_items] == [third["id"], first["id"]] and unread == 2
    mentions, _ = await notifications_of(server, "ann", category="mention")
    assert [n["title"] for n in mentions] == ["three", "two"]
    limited, _ = await notifications_of(server, "ann", limit="1")
    assert len(limited) == 1
    async with server.client(make_token("ann")) as api:
        response = await api.put("/api/notifications/mark-all-read")
    assert response.json() == {"updated": 2}
    assert await notifications_of(server, "ann", unread="true") == ([], 0)
    read, _ = await notifications_of(server, "ann", unread="false")
    assert len(read) == 3 and all(n["read"] and n["readAt"] for n in read)


async def test_marking_read_is_told_to_every_tab_of_the_user_and_no_one_else(
    server: SyncdProcess, node: NodeYjs
) -> None:
    tab1 = await node.sio_connect("ann-1", server.http_url, token=make_token("ann"))
    tab2 = await node.sio_connect("ann-2", server.http_url, token=make_token("ann"))
    bob = await node.sio_connect("bob", server.http_url, token=make_token("bob"))
    first, _ = [(await notify(server, ["ann"], title))[0] for title in ("one", "two")]
    async with server.client(make_token("ann")) as api:
        assert (await api.put(f"/api/notifications/{first['id']}/read")).status_code == 200
    for tab in (tab1, tab2):
        [read] = await tab.wait_sio_event("notification:read")
        assert read == {"id": first["id"]}
    async with server.client(make_token("ann")) as api:
        response = await api.put("/api/notifications/mark-all-read?category=reminder")
        assert response.json() == {"updated": 0}  # none of that category: nothing to tell
        assert (await api.put("/api/notifications/mark-all-read")).json() == {"updated": 1}
    for tab in (tab1, tab2):
        [everything] = await tab.wait_sio_event("notification:read", count=2)
        assert everything == {"all": True, "category": None}
    # Bob's first event is his own notification: Ann's reads never reached him.
    await notify(server, ["bob"], "For Bob")
    await bob.wait_sio_event("notification:new")
    assert [e["name"] for e in node.client_events("bob", "sio")] == ["notification:new"]
    assert len(node.client_events("ann-1", "sio")) == 4  # two new, two read


async def test_read_notifications_past_their_retention_are_cleaned_up(
    start_syncd: StartServer,
) -> None:
    env = {**FAST, "SYNCD_CLEANUP_INTERVAL": "0.5", "SYNCD_NOTIFICATION_RETENTION_DAYS": "0.00001"}
    server = await start_syncd(env=env)
    old, kept = [(await notify(server, ["ann"], title))[0] for title in ("old", "unread")]
    async with server.client(make_token("ann")) as api:
        assert (await api.put(f"/api/notifications/{old['id']}/read")).status_code == 200

    async def only_unread_left() -> bool:
        items, _ = await notifications_of(server, "ann")
        return [n["id"] for n in items] == [kept["id"]]

    await eventually(only_unread_left, what="the periodic cleanup removing the read one")


async def test_only_service_or_admin_tokens_create_notifications(server: SyncdProcess) -> None:
    async with server.client(make_token("ann")) as api:
        response = await api.post("/api/notifications", json={"userIds": ["bob"], "title": "x"})
    assert response.status_code == 403
    async with server.client(make_token("root", roles=("admin",))) as api:
        bad = await api.post("/api/notifications", json={"userIds": [], "title": "x"})
        assert bad.status_code == 422
        no_title = await api.post("/api/notifications", json={"userId": "bob"})
        assert no_title.status_code == 422
        ok = await api.post("/api/notifications", json={"userId": "bob", "title": "hi"})
        assert ok.status_code == 201


async def test_sharing_a_note_notifies_each_new_user_once(
    server: SyncdProcess, node: NodeYjs
) -> None:
    bob = await node.sio_connect("bob", server.http_url, token=make_token("bob"))
    note = await create_note(server, title="Pricing", permissions={"canView": ["bob"]})
    [shared] = await bob.wait_sio_event("notification:new", contains={"type": "note_shared"})
    assert shared["noteId"] == note["id"] and "Pricing" in shared["title"]
    url = f"{NOTES}/{note['id']}"
    async with server.client(make_token("owner")) as api:
        # carol is added; bob moves from view to edit (he had access: no new share)
        perms = {"canView": ["bob"], "canEdit": ["bob", "carol"]}
        assert (await api.put(url, json={"permissions": perms})).status_code == 200
        assert (await api.put(url, json={"permissions": perms})).status_code == 200
        assert (await api.put(url, json={"title": "Pricing v2"})).status_code == 200
    carol_items, _ = await eventually(
        lambda: _with_items(server, "carol"), what="carol's share notification"
    )
    assert [n["type"] for n in carol_items] == ["note_shared"]
    bob_items, _ = await notifications_of(server, "bob")
    assert [n["type"] for n in bob_items] == ["note_shared"]
    owner_items, _ = await notifications_of(server, "owner")
    assert owner_items == []


async def _with_items(server: SyncdProcess, user: str) -> tuple[list[dict], int] | None:
    items, unread = await notifications_of(server, user)
    return (items, unread) if items else None


async def _version(server: SyncdProcess, note_id: str) -> int:
    async with server.client(make_token("owner")) as api:
        return int((await api.get(f"{NOTES}/{note_id}")).json()["version"])


async def test_a_mention_notifies_once_however_often_the_doc_is_stored(
    server: SyncdProcess, node: NodeYjs
) -> None:
    dave = await node.sio_connect("dave", server.http_url, token=make_token("dave"))
    note = await create_note(
        server,
        title="Launch",
        permissions={"canEdit": ["dave", "erin", "fay"]},
        contentJson=mention("dave"),
    )
    [mentioned] = await dave.wait_sio_event("notification:new", contains={"type": "mention"})
    assert mentioned["noteId"] == note["id"] and "Launch" in mentioned["title"]
    # An editor types more, "@dave" and "@erin" key by key: every checkpoint sees the
    # mentions again (and half-typed ones like "@da"), but only erin is new.
    editor = await node.connect(
        "editor", url=server.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    before = await _version(server, note["id"])
    await editor.pm_type(" and @dave, @erin", interval_ms=20)
    await eventually(lambda: _mentions(server, "erin"), what="erin's mention")
    stored = await eventually(
        lambda: _newer(server, note["id"], before), what="a checkpoint after typing"
    )
    await editor.pm_type(" again @dave")
    await editor.disconnect()  # the last peer leaving stores the doc once more
    await eventually(lambda: _newer(server, note["id"], stored), what="the last checkpoint")
    # A later edit waits for that unload to finish: once fay is told, the checkpoints
    # before have been looked at for mentions too.
    async with server.client(make_token("owner")) as api:
        body = {"content": "@dave @erin @fay"}
        assert (await api.put(f"{NOTES}/{note['id']}", json=body)).status_code == 200
    await eventually(lambda: _mentions(server, "fay"), what="fay's mention")
    assert len(await _mentions(server, "erin")) == 1
    assert len(await _mentions(server, "dave")) == 1
    assert await _mentions(server, "owner") == []  # not told about their own text


async def _newer(server: SyncdProcess, note_id: str, version: int) -> int | None:
    current = await _version(server, note_id)
    return current if current > version else None


async def _mentions(server: SyncdProcess, user: str) -> list[dict]:
    items, _ = await notifications_of(server, user, category="mention")
    return items
