"""The frames of issue 10 against a real `syncd serve`: each closes its connection with
4400 at the cost of a normal frame (resident memory, peak included, grows under 10 MB;
under 5 ms of server CPU a frame), with one log line each and no traceback.

Before the frame walker, the 12-byte sync step 1 drove the server from 79 to 550 MB and
ended in a 1006, and the 16-byte update did the same and cost a quarter second of CPU.
"""

from __future__ import annotations

import statistics

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection

from tests.support.fixtures import create_note
from tests.support.procstat import cpu_ns, reset_peak, status_kib
from tests.support.raw_ws import expect_close, open_raw, recv_message
from tests.support.server import SyncdProcess, make_token

#: (frame, who sends it): step 1 is served to viewers, so a view right is enough for it
FRAMES = {
    "inflated state vector": (bytes.fromhex("0000 09 80c6868f01 00000000"), "viewer"),
    "inflated update": (bytes.fromhex("0002 10 80c6868f01") + bytes(11), "owner"),
    "short state vector": (bytes.fromhex("00000101"), "viewer"),
}
REPEAT = 20
MB = 1024 * 1024


async def protocol_errors(server: SyncdProcess) -> dict[tuple[str, str], float]:
    async with server.client() as api:
        text = (await api.get("/metrics")).text
    return {
        (s.labels["type"], s.labels["kind"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "syncd_protocol_errors_total"
    }


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", sorted(FRAMES))
async def test_a_hostile_frame_costs_a_normal_frame_and_closes_4400(
    syncd: SyncdProcess, case: str
) -> None:
    frame, sender = FRAMES[case]
    note = await create_note(syncd, permissions={"canView": ["viewer"]})
    assert syncd.proc is not None
    pid = syncd.proc.pid
    url = f"{syncd.ws_url}/{note['id']}"

    async def connected() -> ClientConnection:
        ws = await open_raw(url, token=make_token(sender))
        await recv_message(ws)  # the server's sync step 1: the room is loaded and joined
        return ws

    warm_up = await connected()  # the first refusal imports and caches what it needs
    await warm_up.send(frame)
    await expect_close(warm_up)
    reset_peak(pid)
    rss_before = status_kib(pid, "VmRSS")
    costs_ms: list[float] = []
    for _ in range(REPEAT):
        ws = await connected()
        before = cpu_ns(pid)
        await ws.send(frame)
        code, reason = await expect_close(ws)
        costs_ms.append((cpu_ns(pid) - before) / 1e6)
        assert code == 4400, (code, reason)
    peak = status_kib(pid, "VmHWM")
    rss_after = status_kib(pid, "VmRSS")

    print(
        f"{case}: CPU per frame median {statistics.median(costs_ms):.2f} ms, "
        f"max {max(costs_ms):.2f} ms; RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} "
        f"MiB, peak {peak / 1024:.1f} MiB"
    )
    assert (peak - rss_before) * 1024 < 10 * MB, f"peak grew {(peak - rss_before) / 1024:.1f} MiB"
    assert statistics.median(costs_ms) < 5.0, costs_ms
    assert sum(costs_ms) < 5.0 * REPEAT, costs_ms

    log = syncd.log_path.read_text(errors="replace")
    assert "Traceback" not in log
    refused = [line for line in log.splitlines() if "frame refused" in line]
    assert len(refused) == REPEAT + 1, refused[-3:]
    errors = await protocol_errors(syncd)
    assert sum(errors.values()) == REPEAT + 1, errors
