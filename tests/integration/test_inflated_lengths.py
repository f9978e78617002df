"""Property: state vectors and updates with one declared count or length inflated, sent
to a real `syncd serve`, are answered as the protocol layer's walker judges them (4400
when it refuses them), never with a reset, and never cost the server memory.

Hypothesis draws a doc (text edits, map entries), takes its state vector or its update,
and replaces one var-uint in it with a larger value (2**7 .. 2**53 - 1): a client or
struct count, a string length, a clock, a delete range. Each example is one connection.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text
from websockets.exceptions import ConnectionClosed

from syncd.protocol import (
    ProtocolError,
    SyncStep2,
    YLimits,
    check_state_vector,
    check_update,
    encode_sync_step1,
    encode_update,
)
from syncd.protocol._codec import read_var_uint, write_var_uint
from tests.support.fixtures import create_note
from tests.support.procstat import reset_peak, status_kib
from tests.support.raw_ws import expect_close, open_raw, recv_message
from tests.support.server import SyncdProcess, make_token

LIMITS = YLimits.for_message_bytes()
EXAMPLES = 120
MB = 1024 * 1024


@st.composite
def inflated(draw: st.DrawFn) -> tuple[str, bytes]:
    doc = Doc(client_id=draw(st.integers(1, 2**32 - 1)))
    text = doc.get("text", type=Text)
    for piece in draw(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4)):
        text.insert(draw(st.integers(0, len(text))), piece)
    if len(text) > 2 and draw(st.booleans()):
        del text[0:1]
    entries = st.dictionaries(st.text(max_size=8), st.integers(-(2**31), 2**31))
    doc.get("map", type=Map).update(draw(entries))
    kind = draw(st.sampled_from(["state vector", "update"]))
    payload = doc.get_state() if kind == "state vector" else doc.get_update()
    starts = [i for i in range(len(payload)) if i == 0 or payload[i - 1] < 0x80]
    at = draw(st.sampled_from(starts))
    try:
        old, end = read_var_uint(payload, at)
    except ProtocolError:
        old, end = 0, at + 1
    value = draw(st.integers(max(old + 1, 128), 2**53 - 1))
    return kind, payload[:at] + write_var_uint(value) + payload[end:]


def walker_refuses(kind: str, payload: bytes) -> bool:
    try:
        if kind == "state vector":
            check_state_vector(payload, LIMITS)
        else:
            check_update(payload, LIMITS)
    except ProtocolError:
        return True
    return False


async def outcome(server: SyncdProcess, note_id: str, kind: str, payload: bytes) -> int | None:
    """The close code the server answers the payload with; None if it keeps the
    connection (a sync step 1 sent after it is answered)."""
    ws = await open_raw(f"{server.ws_url}/{note_id}", token=make_token("owner"))
    try:
        await recv_message(ws)  # the server's step 1
        frame = encode_sync_step1(payload) if kind == "state vector" else encode_update(payload)
        await ws.send(frame)
        await ws.send(encode_sync_step1(b"\x00"))
        try:
            while not isinstance(await recv_message(ws), SyncStep2):
                pass
            if kind == "state vector":  # its own step 2 came first; the probe's is next
                while not isinstance(await recv_message(ws), SyncStep2):
                    pass
        except ConnectionClosed:
            return (await expect_close(ws))[0]
        return None
    finally:
        await ws.close()


@pytest.mark.timeout(300)
async def test_inflated_lengths_are_refused_4400_and_cost_no_memory(syncd: SyncdProcess) -> None:
    note = await create_note(syncd)
    assert syncd.proc is not None
    pid = syncd.proc.pid
    loop = asyncio.get_running_loop()
    await outcome(syncd, note["id"], "state vector", b"\x00")  # warm-up
    reset_peak(pid)
    rss_before = status_kib(pid, "VmRSS")
    seen: list[tuple[bool, int | None]] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(inflated())
    def check(case: tuple[str, bytes]) -> None:
        kind, payload = case
        refused = walker_refuses(kind, payload)
        code = asyncio.run_coroutine_threadsafe(
            outcome(syncd, note["id"], kind, payload), loop
        ).result(30)
        seen.append((refused, code))
        if refused:
            assert code == 4400, (kind, payload.hex(), code)
        else:
            assert code in (None, 4400), (kind, payload.hex(), code)

    # Hypothesis runs in a thread; every connection still runs on the test's event loop.
    await asyncio.to_thread(check)

    peak = status_kib(pid, "VmHWM")
    closes = sum(code == 4400 for _, code in seen)
    print(f"{len(seen)} examples, {sum(r for r, _ in seen)} refused by the walker, {closes} 4400")
    assert (peak - rss_before) * 1024 < 10 * MB, f"peak grew {(peak - rss_before) / 1024:.1f} MiB"
    assert sum(refused for refused, _ in seen) >= len(seen) // 2, "too few inflated counts"
    assert "Traceback" not in syncd.log_path.read_text(errors="replace")
