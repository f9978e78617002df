"""A session whose instance was killed (`kill -9`, nothing stored at exit) is ended by the
next start, as of its last activity, and the version its end owes is taken: embedded, at
once (the only instance just started, nothing is connected); scaled, once it missed three
presence refreshes (no live instance touches it any more)."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Text

from syncd.protocol import SyncStep2, encode_sync_step1, encode_update
from tests.integration.collab_helpers import FAST, NOTES
from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.raw_ws import open_raw, recv_message
from tests.support.server import SyncdProcess, make_token


@pytest.fixture(params=["embedded", "scaled"])
def start(request: pytest.FixtureRequest) -> StartServer:
    return request.getfixturevalue("start_scaled" if request.param == "scaled" else "start_syncd")


async def sessions_of(server: SyncdProcess, note_id: str) -> list[dict]:
    async with server.client(make_token("owner")) as api:
        response = await api.get(f"{NOTES}/{note_id}/sessions")
    assert response.status_code == 200, response.text
    return response.json()["sessions"]


async def versions_of(server: SyncdProcess, note_id: str) -> list[dict]:
    async with server.client(make_token("owner")) as api:
        response = await api.get(f"{NOTES}/{note_id}/versions")
    assert response.status_code == 200, response.text
    return response.json()["versions"]


async def test_a_session_left_open_by_a_crash_is_ended_and_versioned_by_the_next_start(
    start: StartServer,
) -> None:
    server = await start(env=FAST)
    note = await create_note(server, permissions={"canEdit": ["ed"]})
    ws = await open_raw(f"{server.ws_url}/{note['id']}", token=make_token("ed"))
    doc = Doc()
    text = doc.get("t", type=Text)
    text += "written just before the crash"
    await ws.send(encode_update(doc.get_update()))
    # the answer to a sync step 1 is sent once what came before it is durable
    await ws.send(encode_sync_step1(b"\x00"))
    while not isinstance(await recv_message(ws), SyncStep2):
        pass

    async def active() -> dict | None:
        found = await sessions_of(server, note["id"])
        return found[0] if found and found[0]["isActive"] else None

    opened = await eventually(active, what="the session of the connection")
    assert opened["participants"] == ["ed"]
    assert await versions_of(server, note["id"]) == []
    await server.kill()  # the connection never leaves: nothing ends the session
    await ws.close()
    await server.start()

    async def ended() -> dict | None:
        found = await sessions_of(server, note["id"])
        return found[0] if found and not found[0]["isActive"] else None

    session = await eventually(ended, what="the stale session ending")
    assert session["id"] == opened["id"] and session["participants"] == ["ed"]
    assert session["endedAt"] == session["lastActivity"]  # as of its last sign of life
    [version] = await eventually(
        lambda: versions_of(server, note["id"]), what="the version of the session's end"
    )
    assert version["automatic"] is True
