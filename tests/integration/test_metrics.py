"""`/metrics` after a scripted session: the counters equal what the test clients did."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import pycrdt
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection

from syncd.protocol import (
    Awareness,
    AwarenessEntry,
    SyncUpdate,
    encode_awareness,
    encode_awareness_update,
    encode_sync_step1,
    encode_update,
    parse_awareness_update,
)
from tests.support.fixtures import create_note
from tests.support.raw_ws import open_raw, recv_message
from tests.support.server import SyncdProcess, make_token

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(server: SyncdProcess) -> Samples:
    async with server.client() as api:
        response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def until_scraped(
    server: SyncdProcess, name: str, labels: Mapping[str, str], expected: float
) -> Samples:
    """Scrape until a gauge shows `expected` (connections close asynchronously)."""
    deadline = time.monotonic() + 10
    while True:
        samples = await scrape(server)
        if value(samples, name, **labels) == expected:
            return samples
        assert time.monotonic() < deadline, f"{name} stayed {value(samples, name, **labels)}"
        await asyncio.sleep(0.05)


async def read_until_awareness_clock(ws: ClientConnection, client_id: int, clock: int) -> list:
    """Read frames until the awareness state `client_id`@`clock` arrives; return them."""
    seen = []
    while True:
        message = await recv_message(ws)
        seen.append(message)
        if isinstance(message, Awareness):
            entries = parse_awareness_update(message.payload)
            if any(e.client_id == client_id and e.clock == clock for e in entries):
                return seen


async def test_counters_after_a_scripted_session(syncd: SyncdProcess) -> None:
    note = await create_note(syncd)
    url = f"{syncd.ws_url}/{note['id']}"
    before = await scrape(syncd)
    a = await open_raw(url, token=make_token("owner"))
    b = await open_raw(url, token=make_token("owner"))
    during = await until_scraped(syncd, "syncd_ws_connections_open", {}, 2)
    assert value(during, "syncd_rooms_open") == 1

    doc = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for word in ("one ", "two ", "three"):
        text.insert(len(text), word)
    sent = [encode_sync_step1(b"\x00")]  # a's own step 1
    sent += [encode_update(update) for update in updates]
    sent += [
        encode_awareness(encode_awareness_update([AwarenessEntry(4242, clock, '{"u":1}')]))
        for clock in (1, 2)
    ]
    await b.send(encode_sync_step1(b"\x00"))
    for frame in sent:
        await a.send(frame)
    received = await read_until_awareness_clock(b, 4242, 2)
    relayed = pycrdt.Doc()
    for message in received:
        if isinstance(message, SyncUpdate):
            relayed.apply_update(message.update)
    assert str(relayed.get("t", type=pycrdt.Text)) == "one two three"
    await a.close()
    await b.close()
    after = await until_scraped(syncd, "syncd_ws_connections_open", {}, 0)

    def messages_in(kind: str) -> float:
        return delta(after, before, "syncd_ws_messages_total", direction="in", type=kind)

    assert messages_in("sync_step1") == 2
    assert messages_in("update") == 3
    assert messages_in("awareness") == 2
    update_bytes = sum(len(frame) for frame in sent[1:4])
    assert delta(after, before, "syncd_ws_bytes_total", direction="in", type="update") == (
        update_bytes
    )
    assert delta(after, before, "syncd_updates_applied_total", origin="local") == 3
    # b got the updates (merged into fewer frames), the awareness relays and its step 2
    assert delta(after, before, "syncd_ws_messages_total", direction="out", type="update") >= 1
    assert delta(after, before, "syncd_ws_messages_total", direction="out", type="awareness") >= 2
    assert delta(after, before, "syncd_ws_messages_total", direction="out", type="sync_step2") == 2
    assert delta(after, before, "syncd_storage_seconds_count", operation="append") >= 1
    # both connections checked the owner's rights: one miss, then a hit
    assert delta(after, before, "syncd_cache_requests_total", cache="access", result="hit") >= 1
    assert (
        value(
            after,
            "syncd_http_requests_total",
            method="POST",
            route="/api/collaborative-notes",
            status="201",
        )
        >= 1
    )


async def test_http_requests_are_counted_by_route_template(syncd: SyncdProcess) -> None:
    note = await create_note(syncd)
    before = await scrape(syncd)
    async with syncd.client(make_token("owner")) as api:
        for _ in range(3):
            assert (await api.get(f"/api/collaborative-notes/{note['id']}")).status_code == 200
        assert (await api.get("/api/collaborative-notes/missing")).status_code == 404
        assert (await api.get("/no/such/path")).status_code == 404
    after = await scrape(syncd)
    route = "/api/collaborative-notes/{note_id}"
    assert (
        delta(after, before, "syncd_http_requests_total", method="GET", route=route, status="200")
        == 3
    )
    assert (
        delta(after, before, "syncd_http_requests_total", method="GET", route=route, status="404")
        == 1
    )
    assert (
        delta(
            after,
            before,
            "syncd_http_requests_total",
            method="GET",
            route="unmatched",
            status="404",
        )
        == 1
    )
    assert delta(after, before, "syncd_http_request_seconds_count", method="GET", route=route) == 4


async def test_multiprocess_mode_merges_the_files_of_worker_processes(
    start_syncd, tmp_path
) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    server = await start_syncd(env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    note = await create_note(server)
    ws = await open_raw(f"{server.ws_url}/{note['id']}", token=make_token("owner"))
    await ws.send(encode_sync_step1(b"\x00"))
    await recv_message(ws)
    samples = await until_scraped(server, "syncd_ws_connections_open", {}, 1)
    assert value(samples, "syncd_ws_messages_total", direction="in", type="sync_step1") >= 1
    assert any(path.suffix == ".db" for path in metrics_dir.iterdir())
    await ws.close()
    await until_scraped(server, "syncd_ws_connections_open", {}, 0)
