"""Room churn against a real `syncd serve`: thousands of rooms opened and closed, each by a
connection to a note of its own (a raw WebSocket client: handshake, one edit, close).

Afterwards the server is back at rest: its memory within 20% of what it held after the
first cycles, no presence or session bookkeeping pending (`syncd_presence_backlog` 0),
its CPU idle; and a graceful restart in the middle of the churn loses no session record.

`SYNCD_SOAK_CYCLES` sets the number of cycles (default 2,000; the long mode is 10,000).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncd.storage import SessionRecord, SessionStore, open_store
from tests.support.churn import Churn, numbered
from tests.support.fixtures import StartServer
from tests.support.polling import eventually
from tests.support.procstat import cpu_seconds, rss_bytes
from tests.support.server import SyncdProcess, make_token

CYCLES = int(os.environ.get("SYNCD_SOAK_CYCLES", "2000"))
#: memory is compared with what the server holds after these many cycles (caches, pools,
#: compiled statements and the allocator's arenas have grown to their working size)
BASELINE_CYCLES = 200
WORKERS = 8
USERS = 50
CHURN_ENV = {
    "SYNCD_AUTO_CREATE_NOTES": "1",
    "SYNCD_RATE_LIMITS": "0",  # one client IP opening thousands of connections
    "SYNCD_LOG_LEVEL": "warning",
    "SYNCD_PRESENCE_REFRESH": "2",
}


def user_of(n: int) -> str:
    return f"u{n % USERS}"


def churn_for(server: SyncdProcess) -> Churn:
    return Churn(
        server.ws_url,
        lambda n: make_token(user_of(n)),
        prefix=f"churn-{uuid.uuid4().hex[:8]}",
    )


async def backlog(server: SyncdProcess) -> float:
    """`syncd_presence_backlog` from /metrics."""
    async with server.client() as api:
        response = await api.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "syncd_presence_backlog":
                return sample.value
    raise AssertionError("no syncd_presence_backlog in /metrics")


async def settled(server: SyncdProcess) -> None:
    """Wait until the server has no presence or session bookkeeping pending."""

    async def empty() -> bool:
        return await backlog(server) == 0

    await eventually(empty, timeout=30, what="the presence backlog emptying")


async def idle_cpu(pid: int, *, window: float = 0.5, below: float = 0.1) -> float:
    """Sample the process's CPU over short windows until one shows it idle (a fraction
    of one core under `below`); returns that fraction."""
    fractions: list[float] = []
    deadline = time.monotonic() + 5.0
    while True:
        cpu, wall = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(window)  # the measurement window itself
        fraction = (cpu_seconds(pid) - cpu) / (time.monotonic() - wall)
        fractions.append(fraction)
        if fraction < below:
            return fraction
        if time.monotonic() > deadline:
            raise AssertionError(f"the server kept working after the clients left: {fractions}")


async def sessions_of(database_url: str, note_ids: list[str]) -> dict[str, list[SessionRecord]]:
    async with open_store(database_url, migrate=False) as store:
        sessions = SessionStore(store.engine)
        return {note_id: await sessions.list(note_id) for note_id in note_ids}


async def restart_amid(
    server: SyncdProcess, churn: Churn, running: asyncio.Task[None], at: int
) -> None:
    """Once `at` cycles are done, SIGTERM the server while cycles are under way (their
    connections are closed by the shutdown), start it again, and let the churn go on."""

    async def reached() -> bool:
        if running.done():
            running.result()  # the churn failed: say why
        return churn.done >= at

    await eventually(reached, timeout=60 + at / 2, what=f"{at} cycles")
    churn.gate.clear()  # no new cycles while it is down; those under way go on
    assert await server.stop() in (0, -15)  # uvicorn re-raises SIGTERM once it has stopped
    log = server.log_path.read_text(errors="replace")
    assert "did not finish in time" not in log and "lost at shutdown" not in log, log[-3000:]
    await server.start()
    churn.gate.set()


async def assert_sessions_recorded(database_url: str, churn: Churn) -> None:
    """Every note that had a connection has one session, ended, with its user."""
    synced = sorted(set(churn.synced))
    found = await sessions_of(database_url, [churn.note_id(n) for n in synced])
    for n in synced:
        records = found[churn.note_id(n)]
        assert len(records) == 1, (n, records)
        [record] = records
        assert not record.active and record.ended_at is not None, record
        assert record.participants == (user_of(n),), record


@pytest.mark.timeout(180 + CYCLES // 4)
async def test_after_room_churn_the_server_is_back_at_rest_and_a_restart_loses_nothing(
    start_scaled: StartServer, postgres_url: str
) -> None:
    server = await start_scaled(env=CHURN_ENV)
    assert server.proc is not None
    pid = server.proc.pid
    churn = churn_for(server)

    await churn.run(numbered(0, BASELINE_CYCLES), WORKERS)
    await settled(server)
    baseline = rss_bytes(pid)
    await churn.run(numbered(BASELINE_CYCLES, CYCLES - BASELINE_CYCLES), WORKERS)
    assert (churn.done, churn.failed) == (CYCLES, 0)

    await settled(server)  # the backlog is worked off ...
    await idle_cpu(pid)  # ... and nothing else keeps the server busy
    final = rss_bytes(pid)
    assert final <= baseline * 1.2, f"RSS {baseline / 2**20:.1f} -> {final / 2**20:.1f} MiB"

    # more churn, and SIGTERM amid it: connections open, bookkeeping pending
    more = CYCLES // 5
    running = asyncio.create_task(churn.run(numbered(CYCLES, more), WORKERS))
    await restart_amid(server, churn, running, at=CYCLES + more // 2)
    await asyncio.wait_for(running, 60 + more)
    await settled(server)
    assert churn.done + churn.failed == CYCLES + more and churn.done >= CYCLES + more - WORKERS
    await assert_sessions_recorded(postgres_url, churn)


@pytest.mark.timeout(180)
async def test_a_graceful_restart_amid_churn_loses_no_session_record_embedded(
    start_syncd: StartServer,
) -> None:
    server = await start_syncd(env=CHURN_ENV)
    churn = churn_for(server)
    running = asyncio.create_task(churn.run(numbered(0, 600), WORKERS))
    await restart_amid(server, churn, running, at=400)
    await asyncio.wait_for(running, 120)
    await settled(server)
    assert churn.done + churn.failed == 600 and churn.done >= 600 - WORKERS
    await assert_sessions_recorded(f"sqlite:///{server.data_dir / 'syncd.db'}", churn)
