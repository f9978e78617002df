"""Notifications against a real server: cursor paging beyond `limit`, DELETE, and
notifications going with their note."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.collab_helpers import FAST, NOTES, notify
from tests.support.fixtures import StartServer, create_note
from tests.support.server import SyncdProcess, make_token

URL = "/api/notifications"


@pytest.fixture
async def server(start_syncd: StartServer) -> SyncdProcess:
    return await start_syncd(env=FAST)


async def _page(server: SyncdProcess, user: str, **params: str) -> dict[str, Any]:
    async with server.client(make_token(user)) as api:
        response = await api.get(URL, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_cursor_pages_go_past_the_limit_without_gaps_or_repeats(
    server: SyncdProcess,
) -> None:
    created = [(await notify(server, ["ann"], f"n{i}"))[0]["id"] for i in range(7)]
    await notify(server, ["bob"], "not Ann's")
    first = await _page(server, "ann", limit="3")
    assert [n["title"] for n in first["notifications"]] == ["n6", "n5", "n4"]
    assert first["nextCursor"] and first["unreadCount"] == 7
    # a notification that arrives between pages does not shift the next page
    await notify(server, ["ann"], "late")
    second = await _page(server, "ann", limit="3", cursor=first["nextCursor"])
    assert [n["title"] for n in second["notifications"]] == ["n3", "n2", "n1"]
    third = await _page(server, "ann", limit="3", cursor=second["nextCursor"])
    assert [n["title"] for n in third["notifications"]] == ["n0"]
    assert third["nextCursor"] is None
    seen = [n["id"] for page in (first, second, third) for n in page["notifications"]]
    assert seen == list(reversed(created))
    # an exact last page says so too
    exact = await _page(server, "ann", limit="8")
    assert len(exact["notifications"]) == 8 and exact["nextCursor"] is None
    async with server.client(make_token("ann")) as api:
        for bad in ("bm9wZQ", "x"):
            response = await api.get(URL, params={"cursor": bad})
            assert response.status_code == 422, response.text
            assert "cursor" in response.json()["error"]["message"]


async def test_a_user_deletes_their_own_notifications_only(server: SyncdProcess) -> None:
    [mine] = await notify(server, ["ann"], "mine")
    [kept] = await notify(server, ["ann"], "kept")
    [bobs] = await notify(server, ["bob"], "Bob's")
    async with server.client(make_token("ann")) as api:
        assert (await api.delete(f"{URL}/{mine['id']}")).status_code == 204
        assert (await api.delete(f"{URL}/{mine['id']}")).status_code == 404
        assert (await api.delete(f"{URL}/{bobs['id']}")).status_code == 404
    assert [n["id"] for n in (await _page(server, "ann"))["notifications"]] == [kept["id"]]
    assert [n["id"] for n in (await _page(server, "bob"))["notifications"]] == [bobs["id"]]


async def test_notifications_go_with_their_note(server: SyncdProcess) -> None:
    note = await create_note(server, permissions={"canView": ["bob"]})
    other = await create_note(server, permissions={"canView": ["bob"]})
    shares = (await _page(server, "bob"))["notifications"]
    assert {n["noteId"] for n in shares} == {note["id"], other["id"]}
    async with server.client(make_token("owner")) as api:
        assert (await api.delete(f"{NOTES}/{note['id']}")).status_code == 204
    left = (await _page(server, "bob"))["notifications"]
    assert [n["noteId"] for n in left] == [other["id"]]
