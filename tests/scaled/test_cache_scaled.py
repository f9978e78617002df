"""Caches in scaled mode: a permission or metadata change made on instance A is honoured
by instance B at once (the cache lives in Redis and is invalidated there), never a stale
grant."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fixtures import StartServer, create_note
from tests.support.raw_ws import expect_close, open_raw, recv_message
from tests.support.server import SyncdProcess, make_token

NOTES = "/api/collaborative-notes"


@pytest.fixture
async def pair(start_scaled: StartServer) -> tuple[SyncdProcess, SyncdProcess]:
    return await start_scaled(name="a"), await start_scaled(name="b")


async def cache_hits(server: SyncdProcess) -> float:
    async with server.client() as api:
        text = (await api.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "syncd_cache_requests_total" and sample.labels["result"] == "hit"
    )


async def test_a_permission_change_on_a_is_honoured_by_b_at_once(pair) -> None:
    a, b = pair
    note = await create_note(a, permissions={"canView": ["bob"]})
    url = f"{NOTES}/{note['id']}"
    async with b.client(make_token("bob")) as bob_on_b:
        for _ in range(3):  # warm B's view of bob's grant
            assert (await bob_on_b.get(url)).status_code == 200
        assert await cache_hits(b) >= 2
        async with a.client(make_token("owner")) as owner_on_a:
            revoked = await owner_on_a.put(url, json={"permissions": {"canView": []}})
            assert revoked.status_code == 200, revoked.text
        # no stale grant: the very next request on B is refused
        assert (await bob_on_b.get(url)).status_code == 403
    ws = await open_raw(f"{b.ws_url}/{note['id']}", token=make_token("bob"))
    assert (await expect_close(ws))[0] == 4403


async def test_a_new_grant_and_new_metadata_on_a_are_seen_by_b_at_once(pair) -> None:
    a, b = pair
    note = await create_note(a, title="Before")
    url = f"{NOTES}/{note['id']}"
    async with b.client(make_token("carol")) as carol_on_b:
        assert (await carol_on_b.get(url)).status_code == 403
        async with b.client(make_token("owner")) as owner_on_b:
            assert (await owner_on_b.get(url)).json()["title"] == "Before"  # cached on B
        async with a.client(make_token("owner")) as owner_on_a:
            changed = await owner_on_a.put(
                url, json={"title": "After", "permissions": {"canEdit": ["carol"]}}
            )
            assert changed.status_code == 200, changed.text
        shown = await carol_on_b.get(url)
        assert shown.status_code == 200
        assert shown.json()["title"] == "After"
        edited = await carol_on_b.put(url, json={"content": "carol was here"})
        assert edited.status_code == 200, edited.text
    ws = await open_raw(f"{b.ws_url}/{note['id']}", token=make_token("carol"))
    await recv_message(ws)  # sync step 1: she is in
    await ws.close()
