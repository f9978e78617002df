"""Every edge refuses an id no note can have (`syncd.ids`: 1-128 of A-Z a-z 0-9 _ -) before
it is looked up anywhere: REST 422 with the error envelope, `/ws/notes/{id}` 4404,
Socket.IO the `invalid` ack; auto-create makes no such note. One real embedded server."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import pytest
from pycrdt import Doc, Text

from syncd.ids import NOTE_ID_PATTERN
from tests.integration.collab_helpers import NOTES
from tests.support.fixtures import StartServer, create_note
from tests.support.raw_ws import expect_close, open_raw
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

#: ids that may appear as one URL path segment (percent-encoded)
BAD_IN_PATH = [
    "V}x",
    "{V}",
    "V}",
    "a:b",
    "\x00",
    "nul\x00x",
    "é",
    "日本",
    "a.b",
    "a b",
    "V\n",
    "x" * 129,
    "x" * 1000,
]
BAD_IDS = [*BAD_IN_PATH, "", "a/b"]


@pytest.fixture
async def server(start_syncd: StartServer) -> SyncdProcess:
    # auto-create on: even then no note may come into being under a malformed id
    return await start_syncd(env={"SYNCD_AUTO_CREATE_NOTES": "1"})


def _update() -> str:
    doc = Doc()
    doc["text"] = text = Text()
    text += "x"
    return base64.b64encode(doc.get_update()).decode()


def _assert_refused(response: Any, what: str) -> str:
    assert response.status_code == 422, (what, response.status_code, response.text[:300])
    error = response.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str), what
    return str(error["message"])


async def _own_note_ids(server: SyncdProcess, user: str) -> set[str]:
    async with server.client(make_token(user)) as api:
        response = await api.get(NOTES, params={"limit": 100})
    assert response.status_code == 200, response.text
    return {note["id"] for note in response.json()["notes"]}


async def test_creating_a_note_under_a_malformed_id_is_refused(server: SyncdProcess) -> None:
    async with server.client(make_token("mallory")) as api:
        for bad in [*BAD_IDS, 7, ["V"], {"id": "V"}]:
            response = await api.post(NOTES, json={"title": "t", "id": bad})
            _assert_refused(response, repr(bad)[:40])
        for good in ("V_x-1", "x" * 128, "0"):
            response = await api.post(NOTES, json={"title": "t", "id": good})
            assert response.status_code == 201, response.text
    assert await _own_note_ids(server, "mallory") == {"V_x-1", "x" * 128, "0"}


async def test_every_route_that_names_a_note_refuses_a_malformed_id(server: SyncdProcess) -> None:
    note = await create_note(server, "owner")
    bodies = {
        ("put", "/api/collaborative-notes/{note_id}"): {"title": "t"},
        ("post", "/api/collaborative-notes/{note_id}/yjs-update"): {"update": _update()},
    }
    async with server.client(make_token("owner", roles=("admin",))) as api:
        document = (await api.get("/openapi.json")).json()
        routes = [
            (method, path, operation)
            for path, operations in document["paths"].items()
            if "{note_id}" in path
            for method, operation in operations.items()
        ]
        assert len(routes) >= 11, [f"{m} {p}" for m, p, _ in routes]
        for method, path, operation in routes:
            [param] = [p for p in operation["parameters"] if p["name"] == "note_id"]
            assert param["schema"]["pattern"] == NOTE_ID_PATTERN, path
            assert "422" in operation["responses"], (method, path)
            body = bodies.get((method, path), {})
            for bad in BAD_IN_PATH:
                url = path.replace("{note_id}", quote(bad, safe="")).replace("{number}", "1")
                response = await api.request(method, url, json=body)
                message = _assert_refused(response, f"{method} {path} {bad[:20]!r}")
                # a NUL is refused by the URL guard before routing, with its own message
                assert "note id" in message or "NUL" in message, (method, path, message)
            # the same call with the real id gets past the check (the bodies are right)
            url = path.replace("{note_id}", note["id"]).replace("{number}", "1")
            response = await api.request(method, url, json=body)
            assert response.status_code != 422, (method, path, response.text[:300])
        for action in ("start", "end"):
            for bad in BAD_IDS:
                response = await api.post(f"{NOTES}/sessions/{action}", json={"noteId": bad})
                _assert_refused(response, f"sessions/{action} {bad[:20]!r}")
        schema = document["paths"][NOTES]["post"]["requestBody"]["content"]["application/json"]
        id_schema = schema["schema"]["properties"]["id"]
        assert id_schema["pattern"] == NOTE_ID_PATTERN and id_schema["maxLength"] == 128


async def test_the_sync_endpoint_closes_4404_for_a_malformed_id(server: SyncdProcess) -> None:
    token = make_token("mallory")
    for bad in BAD_IDS:
        ws = await open_raw(f"{server.ws_url}/{quote(bad, safe='')}", token=token)
        code, _ = await expect_close(ws)
        assert code == 4404, (bad[:40], code)
    # no token at all: still 4404, refused before anything else is looked at
    ws = await open_raw(f"{server.ws_url}/{quote('V}x', safe='')}")
    assert (await expect_close(ws))[0] == 4404
    assert await _own_note_ids(server, "mallory") == set()
    # control: auto-create is on, and a well-formed unknown id does make a note
    ws = await open_raw(f"{server.ws_url}/fresh_id-1", token=token)
    await ws.close()
    assert await _own_note_ids(server, "mallory") == {"fresh_id-1"}


@pytest.mark.interop
async def test_socketio_refuses_a_malformed_note_id(server: SyncdProcess, node: NodeYjs) -> None:
    note = await create_note(server, "owner")
    socket = await node.sio_connect("s", server.http_url, token=make_token("owner"))
    for event in ("note:join", "note:leave", "note:cursor"):
        for bad in [*BAD_IDS, None, 5]:
            ack = await socket.sio_emit(event, {"noteId": bad, "position": 1}, ack=True)
            assert ack["ok"] is False and ack["error"]["code"] == "invalid", (event, ack)
    joined = await socket.sio_emit("note:join", {"noteId": note["id"]}, ack=True)
    assert joined["ok"] is True
