"""Rate limits against a real server: REST floods get 429 with Retry-After, a WebSocket
flood is closed with 4429 while other clients keep syncing."""

from __future__ import annotations

import asyncio

import pycrdt

from syncd.protocol import encode_update
from tests.support.fixtures import StartServer, create_note
from tests.support.raw_ws import expect_close, open_raw
from tests.support.server import make_token
from tests.support.yjs_node import NodeYjs

NOTES = "/api/collaborative-notes"


async def test_a_rest_flood_gets_429_with_retry_after(start_syncd: StartServer) -> None:
    server = await start_syncd(
        env={"SYNCD_RATE_LIMIT_REST_USER": "5/minute", "SYNCD_RATE_LIMIT_REST_IP": "off"}
    )
    async with server.client(make_token("flooder")) as flooder:
        statuses = [(await flooder.get(NOTES)).status_code for _ in range(8)]
        limited = await flooder.get(NOTES)
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429] * 3
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json() == {
        "error": {"code": "rate_limited", "message": "rate limit exceeded; retry later"}
    }
    assert limited.headers["x-content-type-options"] == "nosniff"
    async with server.client(make_token("someone-else")) as other:
        assert (await other.get(NOTES)).status_code == 200
    async with server.client(make_token("crm", roles=["service"])) as backend:
        # the CRM back end acts for many users from one address: not limited
        assert {(await backend.get(NOTES)).status_code for _ in range(8)} == {200}
        exposition = (await backend.get("/metrics")).text
    assert 'syncd_rate_limited_total{limit="rest_user"} 4.0' in exposition
    assert (
        'syncd_http_requests_total{method="GET",route="/api/collaborative-notes",status="429"} 4.0'
        in exposition
    )


async def test_a_flood_from_one_address_is_limited_per_ip(start_syncd: StartServer) -> None:
    server = await start_syncd(
        env={"SYNCD_RATE_LIMIT_REST_IP": "4/minute", "SYNCD_RATE_LIMIT_REST_USER": "off"}
    )
    statuses = []
    for user in range(6):
        async with server.client(make_token(f"user-{user}")) as api:
            statuses.append((await api.get(NOTES)).status_code)
    async with server.client() as anonymous:
        statuses.append((await anonymous.get(NOTES)).status_code)
    assert statuses == [200] * 4 + [429] * 3
    async with server.client() as api:
        assert (await api.get("/healthz")).status_code == 200  # outside /api: not limited


async def test_a_websocket_flood_is_closed_4429_while_others_keep_syncing(
    start_syncd: StartServer, node: NodeYjs
) -> None:
    server = await start_syncd(env={"SYNCD_RATE_LIMIT_WS_MESSAGES": "40/second"})
    note = await create_note(server, permissions={"canEdit": ["flooder"]})
    a = await node.connect(
        "a", url=server.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    b = await node.connect(
        "b", url=server.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    flooder = await open_raw(f"{server.ws_url}/{note['id']}", token=make_token("flooder"))
    doc = pycrdt.Doc()
    text = doc.get("flood", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(200):
        text.insert(len(text), str(i % 10))
    frames = [encode_update(u) for u in updates]

    async def flood() -> None:
        for frame in frames:
            await flooder.send(frame)

    sending = asyncio.create_task(flood())
    code, reason = await expect_close(flooder)
    sending.cancel()
    assert code == 4429, reason
    await a.insert("still here")
    await b.wait_text(equals="still here")
    await b.insert(" and me")
    await a.wait_text(equals="still here and me")
    flood_text = await a.text(field="flood")
    assert len(flood_text) < 200  # the flood was cut off, not relayed whole


async def test_oversized_traffic_and_connection_attempts_are_limited(
    start_syncd: StartServer,
) -> None:
    server = await start_syncd(
        env={
            "SYNCD_RATE_LIMIT_WS_BYTES": "4096/minute",
            "SYNCD_RATE_LIMIT_WS_CONNECTS": "3/minute",
        }
    )
    note = await create_note(server)
    url = f"{server.ws_url}/{note['id']}"
    big = await open_raw(url, token=make_token("owner"))
    doc = pycrdt.Doc()
    doc.get("t", type=pycrdt.Text).insert(0, "x" * 5000)
    update = doc.get_update()
    await big.send(encode_update(update))
    assert (await expect_close(big))[0] == 4429
    second = await open_raw(url, token=make_token("owner"))
    third = await open_raw(url, token=make_token("owner"))
    refused = await open_raw(url, token=make_token("owner"))
    assert (await expect_close(refused))[0] == 4429
    await second.close()
    await third.close()
