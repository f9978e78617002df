"""`POST .../yjs-update` gives pycrdt nothing it would keep pending (pycrdt 0.14.13 can
crash the process integrating pending structs): such an update is refused with 422, the
server lives, and the same edits sent whole are applied."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from pycrdt import Doc, Text

from tests.support.fixtures import create_note
from tests.support.procstat import reset_peak, status_kib
from tests.support.server import SyncdProcess, make_token

NOTES = "/api/collaborative-notes"
FIXTURE = Path(__file__).parent.parent / "unit/fixtures/pycrdt_pending_segfault.json"


def body(update: bytes) -> dict[str, str]:
    return {"update": base64.b64encode(update).decode()}


async def test_posted_updates_that_would_wait_for_missing_structs_are_refused(
    syncd: SyncdProcess,
) -> None:
    doc = Doc(client_id=5)
    text = doc.get("text", type=Text)
    text += "first"
    before = doc.get_state()
    text += " second"
    gap = doc.get_update(before)  # starts at clock 5: the note has none of client 5
    pending = [bytes.fromhex(u) for u in json.loads(FIXTURE.read_text())["updates"][2:]]
    note = await create_note(syncd)
    url = f"{NOTES}/{note['id']}/yjs-update"
    async with syncd.client(make_token("owner")) as api:
        for update in [gap, *pending]:
            response = await api.post(url, json=body(update))
            assert response.status_code == 422, response.text
            assert "the server" in response.json()["error"]["message"]
        response = await api.post(url, json=body(doc.get_update()))
        assert response.status_code == 200, response.text
        assert (await api.get("/healthz")).status_code == 200
    assert syncd.proc is not None and syncd.proc.returncode is None


async def test_a_posted_update_declaring_inflated_lengths_costs_no_memory(
    syncd: SyncdProcess,
) -> None:
    """The 16-byte update of issue 10 (300 million clients declared) is walked before any
    pycrdt doc sees it, the content guard's scratch doc included: 422, no 500 MB."""
    inflated = bytes.fromhex("80c6868f01") + bytes(11)
    note = await create_note(syncd)
    assert syncd.proc is not None
    pid = syncd.proc.pid
    reset_peak(pid)
    rss_before = status_kib(pid, "VmRSS")
    async with syncd.client(make_token("owner")) as api:
        response = await api.post(f"{NOTES}/{note['id']}/yjs-update", json=body(inflated))
        assert response.status_code == 422, response.text
        assert (await api.get("/healthz")).status_code == 200
    peak = status_kib(pid, "VmHWM")
    assert (peak - rss_before) < 10 * 1024, f"peak grew {(peak - rss_before) / 1024:.1f} MiB"
