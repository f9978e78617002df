"""Tiptap's stock `@hocuspocus/provider` on syncd's `/hocuspocus` endpoint, beside y-websocket."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import pytest

from tests.integration.collab_helpers import FAST, NOTES, presence_of
from tests.support.fixtures import create_note
from tests.support.hocuspocus_node import hocuspocus_node, open_doc, open_socket
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

pytestmark = pytest.mark.interop


def hp_url(server: SyncdProcess) -> str:
    return f"ws://127.0.0.1:{server.port}/hocuspocus"


@pytest.fixture
async def hp() -> AsyncIterator[NodeYjs]:
    async with hocuspocus_node() as hosted:
        yield hosted


async def test_tiptap_and_y_websocket_converge_and_see_each_other(
    syncd: SyncdProcess, hp: NodeYjs, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    await open_socket(hp, "s", hp_url(syncd))
    tip = await open_doc(
        hp,
        "tip",
        socket="s",
        doc=note["id"],
        token=make_token("owner"),
        tiptap=True,
        user={"name": "Tip"},
    )
    await tip.wait("s.synced && s.scope === 'read-write'")
    yws = await node.connect(
        "yws", url=syncd.ws_url, room=note["id"], token=make_token("owner"), reconnect=False
    )
    await yws.wait_synced()
    await tip.tiptap_type("Hello from Tiptap")
    await yws.wait_pm_text(contains="Hello from Tiptap")
    await yws.pm_insert_text(" and y-websocket")
    await tip.wait("s.tiptap.includes('and y-websocket')")
    await tip.wait("s.unsynced === 0")
    assert (await yws.pm_get()) is not None


async def test_awareness_and_presence_are_shared_across_protocols(
    syncd: SyncdProcess, hp: NodeYjs, node: NodeYjs
) -> None:
    note = await create_note(syncd, permissions={"canEdit": ["bob"]})
    await open_socket(hp, "s", hp_url(syncd))
    tip = await open_doc(
        hp, "tip", socket="s", doc=note["id"], token=make_token("bob"), user={"name": "Bob"}
    )
    await tip.wait("s.synced")
    yws = await node.connect(
        "yws", url=syncd.ws_url, room=note["id"], token=make_token("owner"), reconnect=False
    )
    await yws.wait_synced()
    await yws.awareness_set_field("user", {"name": "Owner"})
    await tip.wait("s.awareness.some((a) => a.user && a.user.name === 'Owner')")
    await yws.wait_awareness(contains={"user": {"name": "Bob"}})
    async with syncd.client(make_token("owner")) as client:
        response = await client.get(f"/api/collaborative-notes/{note['id']}/presence")
    assert response.status_code == 200
    assert "bob" in response.text and "owner" in response.text


async def test_ten_documents_over_one_socket_converge_independently(
    syncd: SyncdProcess, hp: NodeYjs, node: NodeYjs
) -> None:
    notes = [await create_note(syncd) for _ in range(10)]
    await open_socket(hp, "s", hp_url(syncd))
    token = make_token("owner")
    docs = [
        await open_doc(hp, f"d{i}", socket="s", doc=note["id"], token=token)
        for i, note in enumerate(notes)
    ]
    for i, doc in enumerate(docs):
        await doc.wait("s.synced")
        await doc.insert(f"doc {i};")
    for i, note in enumerate(notes):
        peer = await node.connect(
            f"y{i}", url=syncd.ws_url, room=note["id"], token=token, reconnect=False
        )
        await peer.wait_text(equals=f"doc {i};")
        await peer.insert(f" back {i}")
    for i, doc in enumerate(docs):
        await doc.wait(f"s.text === 'doc {i}; back {i}' && s.unsynced === 0")


async def test_a_viewer_gets_readonly_and_its_edits_reach_no_one(
    syncd: SyncdProcess, hp: NodeYjs, node: NodeYjs
) -> None:
    note = await create_note(syncd, permissions={"canView": ["viewer"]})
    await open_socket(hp, "s", hp_url(syncd))
    owner = await open_doc(hp, "owner", socket="s", doc=note["id"], token=make_token("owner"))
    await open_socket(hp, "v", hp_url(syncd))
    viewer = await open_doc(hp, "viewer", socket="v", doc=note["id"], token=make_token("viewer"))
    await viewer.wait("s.synced && s.scope === 'readonly'")
    await owner.wait("s.synced && s.scope === 'read-write'")
    await viewer.insert("vandalism")
    await owner.insert("legit")
    await viewer.wait("s.text.includes('legit')")
    state = await viewer.wait("s.unsynced > 0")
    assert state["unsynced"] > 0  # never acked as saved
    late = await node.connect(
        "late", url=syncd.ws_url, room=note["id"], token=make_token("owner"), reconnect=False
    )
    await late.wait_text(equals="legit")
    assert "vandalism" not in (await owner.state())["text"]


async def test_refused_documents_get_permission_denied_and_the_socket_lives_on(
    syncd: SyncdProcess, hp: NodeYjs
) -> None:
    mine = await create_note(syncd)
    private = await create_note(syncd, owner="alice")
    await open_socket(hp, "s", hp_url(syncd))
    forbidden = await open_doc(hp, "f", socket="s", doc=private["id"], token=make_token("bob"))
    unknown = await open_doc(hp, "u", socket="s", doc="no-such-note", token=make_token("bob"))
    bad = await open_doc(hp, "b", socket="s", doc=mine["id"], token="not-a-jwt")
    ok = await open_doc(hp, "ok", socket="s", doc=mine["id"] + "\u0000x", token=make_token("owner"))
    state = await forbidden.wait("s.denied.length > 0")
    assert state["denied"][0].startswith("4403 forbidden")
    assert (await unknown.wait("s.denied.length > 0"))["denied"][0].startswith("4404")
    assert (await bad.wait("s.denied.length > 0"))["denied"][0].startswith("4401")
    await ok.wait("s.synced && s.scope === 'read-write'")
    await ok.insert("still here")
    await ok.wait("s.unsynced === 0")


async def test_revoking_view_closes_only_that_document(syncd: SyncdProcess, hp: NodeYjs) -> None:
    shared = await create_note(syncd, permissions={"canEdit": ["bob"]})
    own = await create_note(syncd, owner="bob")
    await open_socket(hp, "s", hp_url(syncd))
    a = await open_doc(hp, "a", socket="s", doc=shared["id"], token=make_token("bob"))
    b = await open_doc(hp, "b", socket="s", doc=own["id"], token=make_token("bob"))
    await a.wait("s.synced")
    await b.wait("s.synced")
    async with syncd.client(make_token("owner")) as client:
        response = await client.put(
            f"/api/collaborative-notes/{shared['id']}",
            json={"permissions": {"canView": [], "canEdit": [], "canDelete": []}},
        )
    assert response.status_code == 200, response.text
    state = await a.wait("s.denied.length > 0 && s.closes.length > 0")
    assert state["denied"][0].startswith("4403")
    await b.insert("unaffected")
    await b.wait("s.unsynced === 0 && s.authenticated")


async def test_an_expired_token_closes_one_document_and_a_fresh_one_resumes_it(
    syncd: SyncdProcess, hp: NodeYjs, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    other = await create_note(syncd)
    await open_socket(hp, "s", hp_url(syncd))
    short = await open_doc(
        hp, "short", socket="s", doc=note["id"], token=make_token("owner", ttl=2)
    )
    steady = await open_doc(hp, "steady", socket="s", doc=other["id"], token=make_token("owner"))
    await short.wait("s.synced")
    await steady.wait("s.synced")
    await short.insert("before;")
    await short.set_token(make_token("owner", ttl=3600))
    state = await short.wait("s.closes.length > 0", timeout=15)
    assert state["closes"][0].startswith("4401")
    await short.insert("after;")
    await short.wait("s.tokenCalls >= 2 && s.authenticated && s.synced", timeout=15)
    peer = await node.connect(
        "y", url=syncd.ws_url, room=note["id"], token=make_token("owner"), reconnect=False
    )
    await peer.wait_text(contains="after;")
    assert "before;" in await peer.text()
    await peer.insert("from peer;")
    await short.wait("s.text.includes('from peer;')")
    await steady.insert("never closed")
    await steady.wait("s.unsynced === 0 && s.closes.length === 0")


async def test_stateless_messages_are_relayed_within_a_size_limit(
    start_syncd: object, hp: NodeYjs
) -> None:
    server = await start_syncd(env={"SYNCD_HOCUSPOCUS_MAX_STATELESS_BYTES": "1024"})  # type: ignore[operator]
    note = await create_note(server)
    await open_socket(hp, "s1", hp_url(server))
    await open_socket(hp, "s2", hp_url(server))
    a = await open_doc(hp, "a", socket="s1", doc=note["id"], token=make_token("owner"))
    b = await open_doc(hp, "b", socket="s2", doc=note["id"], token=make_token("owner"))
    await a.wait("s.synced")
    await b.wait("s.synced")
    await a.stateless('{"kind": "ping"}')
    await b.wait('s.stateless.includes(\'{"kind": "ping"}\')')
    assert (await a.state())["stateless"] == []  # not echoed to its sender
    await a.stateless("x" * 2000)
    state = await a.wait("s.closes.length > 0")
    assert state["closes"][0].startswith("4400")
    assert all(len(p) < 2000 for p in (await b.state())["stateless"])


async def test_acked_edits_survive_kill_9_and_unacked_ones_are_resent(
    start_syncd: object, hp: NodeYjs, node: NodeYjs
) -> None:
    server = await start_syncd()  # type: ignore[operator]
    note = await create_note(server)
    token = make_token("owner")
    await open_socket(hp, "s", hp_url(server))
    writer = await open_doc(hp, "w", socket="s", doc=note["id"], token=token)
    await writer.wait("s.synced")
    typed = "".join(f"{i % 10}" for i in range(300))
    await writer.type(typed)  # one update (and one ack) per character
    await writer.wait("s.unsynced === 0")
    # Acked means durable: nothing the provider could still re-send is needed.
    await server.kill()
    await writer.destroy()
    await server.start()
    check = await node.connect(
        "check", url=server.ws_url, room=note["id"], token=token, reconnect=False
    )
    await check.wait_text(equals=typed)
    await check.destroy()

    # Edits made while the server is down are never acked; the provider re-sends them.
    again = await open_doc(hp, "again", socket="s", doc=note["id"], token=token)
    await again.wait(f"s.synced && s.text.length === {len(typed)}")
    await server.kill()
    await again.insert("|while down")
    await server.start()
    await again.wait("s.synced && s.unsynced === 0", timeout=20)
    late = await node.connect(
        "late", url=server.ws_url, room=note["id"], token=token, reconnect=False
    )
    await late.wait_text(equals=typed + "|while down")


async def test_a_hocuspocus_user_shows_in_presence_sessions_socket_io_and_metrics(
    start_syncd: object, hp: NodeYjs, node: NodeYjs
) -> None:
    server = await start_syncd(env=FAST)  # type: ignore[operator]
    note = await create_note(server, permissions={"canEdit": ["ed"]})
    watcher = await node.sio_connect("watcher", server.http_url, token=make_token("owner"))
    await watcher.sio_emit("note:join", {"noteId": note["id"]}, ack=True)
    await open_socket(hp, "s", hp_url(server))
    ed = await open_doc(
        hp, "ed", socket="s", doc=note["id"], token=make_token("ed", name="Ed"), tiptap=True
    )
    await ed.wait("s.synced")
    [joined] = await watcher.wait_sio_event("note:user-joined")
    assert joined["user"] == {"id": "ed", "name": "Ed"} and joined["source"] == "websocket"
    await ed.tiptap_type("typed in Tiptap")
    await ed.wait("s.unsynced === 0")
    assert "ed" in [u["userId"] for u in await presence_of(server, note["id"])]

    async def session_with_ed() -> dict | None:
        async with server.client(make_token("owner")) as api:
            response = await api.get(f"{NOTES}/{note['id']}/sessions")
        found = response.json()["sessions"]
        return found[0] if found and "ed" in found[0]["participants"] else None

    await eventually(session_with_ed, what="a session with the Hocuspocus user")

    async def one_connection_counted() -> bool:
        async with server.client() as api:
            text = (await api.get("/metrics")).text
        return re.search(r"^syncd_ws_connections_open(\{[^}]*\})? 1\.0$", text, re.M) is not None

    await eventually(one_connection_counted, what="the open document in the gauge")
    async with server.client() as api:
        stats = (await api.get("/socket-stats")).json()
    assert '"hocuspocus": {"sockets": 1}' in json.dumps(stats)
    await ed.destroy()
    [left] = await watcher.wait_sio_event("note:user-left")
    assert left["userId"] == "ed"
    assert [u["userId"] for u in await presence_of(server, note["id"])] == ["owner"]
