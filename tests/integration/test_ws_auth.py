"""Who may open a note over the sync endpoint, and what each close code means."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from tests.support.fixtures import create_note
from tests.support.raw_ws import expect_close, open_raw
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs


def _unsigned_token(user: str) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': user, 'exp': time.time() + 600})}."


@pytest.mark.parametrize(
    ("case", "token", "code"),
    [
        ("no token", None, 4401),
        ("bad signature", jwt.encode({"sub": "owner", "exp": time.time() + 600}, "x" * 32), 4401),
        ("expired", make_token("owner", ttl=-60), 4401),
        ("alg none", _unsigned_token("owner"), 4401),
        ("garbage", "not-a-jwt", 4401),
        ("NUL in the user id", make_token("own\x00er"), 4401),
        ("NUL in the name", make_token("owner", name="Ow\x00ner"), 4401),
        ("user id over 200 characters", make_token("o" * 201), 4401),
    ],
)
async def test_a_connection_without_a_valid_token_is_closed_4401(
    syncd: SyncdProcess, case: str, token: str | None, code: int
) -> None:
    note = await create_note(syncd)
    ws = await open_raw(f"{syncd.ws_url}/{note['id']}", token=token)
    assert (await expect_close(ws))[0] == code, case
    # REST refuses the same token with 401 and the JSON envelope, never a 5xx
    async with syncd.client(token) as api:
        response = await api.get(f"/api/collaborative-notes/{note['id']}")
    assert response.status_code == 401, (case, response.text)
    assert response.json()["error"]["code"] == "unauthorized"


async def test_the_token_may_come_in_the_authorization_header(syncd: SyncdProcess) -> None:
    note = await create_note(syncd)
    ws = await open_raw(
        f"{syncd.ws_url}/{note['id']}",
        headers=[("Authorization", f"Bearer {make_token('owner')}")],
    )
    first = await ws.recv()
    assert first[:2] == b"\x00\x00"  # sync step 1
    await ws.close()


async def test_a_user_without_permission_is_closed_4403(syncd: SyncdProcess, node: NodeYjs) -> None:
    note = await create_note(syncd)
    stranger = await node.connect(
        "s", url=syncd.ws_url, room=note["id"], token=make_token("stranger"), reconnect=False
    )
    assert (await stranger.wait_closed())[0] == 4403


async def test_an_unknown_note_is_closed_4404(syncd: SyncdProcess, node: NodeYjs) -> None:
    client = await node.connect(
        "c", url=syncd.ws_url, room="no-such-note", token=make_token("owner"), reconnect=False
    )
    assert (await client.wait_closed())[0] == 4404


async def test_an_admin_may_open_any_note(syncd: SyncdProcess, node: NodeYjs) -> None:
    note = await create_note(syncd)
    admin = await node.connect(
        "adm",
        url=syncd.ws_url,
        room=note["id"],
        token=make_token("root", roles=["admin"]),
        reconnect=False,
    )
    await admin.wait_synced()


async def test_a_viewer_sees_content_keeps_presence_but_its_edits_reach_no_one(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd, permissions={"canView": ["viewer"]})
    editor = await node.connect(
        "e", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    await editor.insert("from the editor")
    viewer = await node.connect(
        "v", url=syncd.ws_url, room=note["id"], token=make_token("viewer"), wait_synced=True
    )
    await viewer.wait_text(equals="from the editor")

    await viewer.awareness_set({"user": {"name": "Viv"}})
    await editor.wait_awareness(client_id=viewer.client_id)

    await viewer.insert(" VIEWER-EDIT")
    assert await viewer.wait_permission_denied() == "permission denied"
    # The editor's next edit travels the same path as the viewer's would have: once it has
    # arrived, the viewer's (sent earlier) would have too.
    await editor.insert("!")
    await viewer.wait_text(contains="!")
    assert "VIEWER-EDIT" not in await editor.text()
    late = await node.connect(
        "late", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    assert "VIEWER-EDIT" not in await late.text()

    await viewer.insert(" again")
    await editor.insert("?")
    await viewer.wait_text(contains="?")
    info = await viewer.info()
    assert info["permission_denied"] and len(info["permission_denied"]) == 1  # told once


async def test_revoking_view_over_rest_closes_the_open_connection_4403(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd, permissions={"canEdit": ["bob"]})
    bob = await node.connect(
        "b",
        url=syncd.ws_url,
        room=note["id"],
        token=make_token("bob"),
        reconnect=False,
        wait_synced=True,
    )
    async with syncd.client(make_token("owner")) as api:
        response = await api.put(
            f"/api/collaborative-notes/{note['id']}", json={"permissions": {"canEdit": []}}
        )
        assert response.status_code == 200, response.text
    assert (await bob.wait_closed())[0] == 4403


async def test_revoking_edit_makes_the_open_connection_read_only(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd, permissions={"canEdit": ["bob"]})
    owner = await node.connect(
        "o", url=syncd.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    bob = await node.connect(
        "b", url=syncd.ws_url, room=note["id"], token=make_token("bob"), wait_synced=True
    )
    await bob.insert("allowed.")
    await owner.wait_text(equals="allowed.")
    async with syncd.client(make_token("owner")) as api:
        response = await api.put(
            f"/api/collaborative-notes/{note['id']}",
            json={"permissions": {"canView": ["bob"], "canEdit": []}},
        )
        assert response.status_code == 200, response.text
    await bob.insert(" denied")
    assert await bob.wait_permission_denied() == "permission denied"
    await owner.insert(" owner")
    await bob.wait_text(contains="owner")
    assert "denied" not in await owner.text()


async def test_a_token_that_expires_while_connected_is_closed_4401(
    syncd: SyncdProcess, node: NodeYjs
) -> None:
    note = await create_note(syncd)
    client = await node.connect(
        "c",
        url=syncd.ws_url,
        room=note["id"],
        token=make_token("owner", ttl=2),
        reconnect=False,
        wait_synced=True,
    )
    assert (await client.wait_closed(timeout=15))[0] == 4401
