"""Two instances on one Redis and one Postgres (scaled mode): Socket.IO fan-out, presence
and notifications across instances, each notification created once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.integration.collab_helpers import (
    FAST,
    NOTES,
    job_stats,
    mention,
    notifications_of,
    notify,
    presence_of,
)
from tests.support.fixtures import StartServer, create_note, start_scaled  # noqa: F401
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs


@pytest.fixture
async def pair(start_scaled: StartServer) -> tuple[SyncdProcess, SyncdProcess]:  # noqa: F811
    env = {**FAST, "SYNCD_CLEANUP_INTERVAL": "1"}
    return await start_scaled(name="a", env=env), await start_scaled(name="b", env=env)


async def test_a_notification_reaches_the_users_sockets_on_both_instances(
    pair: tuple[SyncdProcess, SyncdProcess], node: NodeYjs
) -> None:
    a, b = pair
    on_a = await node.sio_connect("ann-a", a.http_url, token=make_token("ann"))
    on_b = await node.sio_connect("ann-b", b.http_url, token=make_token("ann"))
    bob = await node.sio_connect("bob-b", b.http_url, token=make_token("bob"))
    [created] = await notify(a, ["ann"], "Across the cluster")
    for socket in (on_a, on_b):
        [payload] = await socket.wait_sio_event("notification:new", contains={"id": created["id"]})
        assert payload["title"] == "Across the cluster"
    await notify(b, ["bob"], "Only for Bob")
    [first] = await bob.wait_sio_event("notification:new")
    assert first["title"] == "Only for Bob"
    assert len(node.client_events("bob-b", "sio")) == 1
    items, unread = await notifications_of(b, "ann")
    assert [n["id"] for n in items] == [created["id"]] and unread == 1
    stats = await job_stats(a)
    assert stats["mode"] == "redis"


async def test_a_mention_typed_on_two_instances_notifies_once(
    pair: tuple[SyncdProcess, SyncdProcess], node: NodeYjs
) -> None:
    a, b = pair
    ivy = await node.sio_connect("ivy", b.http_url, token=make_token("ivy"))
    note = await create_note(
        a, title="Plan", permissions={"canEdit": ["ivy", "kim"]}, contentJson=mention("ivy")
    )
    await ivy.wait_sio_event("notification:new", contains={"type": "mention"})
    on_a = await node.connect(
        "on-a", url=a.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    on_b = await node.connect(
        "on-b", url=b.ws_url, room=note["id"], token=make_token("kim"), wait_synced=True
    )
    await on_a.pm_type(" @ivy and @kim", interval_ms=10)
    await on_b.wait_pm_text(contains="@kim")
    await on_b.pm_type(" cc @ivy")
    await on_a.wait_pm_text(contains="cc @ivy")
    await on_a.disconnect()
    await on_b.disconnect()  # both instances store the doc and look at its mentions

    async def kim_told() -> list[dict]:
        return (await notifications_of(a, "kim", category="mention"))[0]

    await eventually(kim_told, what="kim's mention")
    # a final edit through either instance runs after both unloads were looked at
    async with a.client(make_token("owner")) as api:
        body = {"content": "@ivy @kim @lee", "permissions": {"canEdit": ["ivy", "kim", "lee"]}}
        assert (await api.put(f"{NOTES}/{note['id']}", json=body)).status_code == 200

    async def lee_told() -> list[dict]:
        return (await notifications_of(b, "lee", category="mention"))[0]

    await eventually(lee_told, what="lee's mention")
    assert len((await notifications_of(b, "ivy", category="mention"))[0]) == 1
    assert len((await notifications_of(b, "kim", category="mention"))[0]) == 1
    assert len((await notifications_of(a, "lee", category="share"))[0]) == 1


async def test_joins_and_presence_cross_instances(
    pair: tuple[SyncdProcess, SyncdProcess], node: NodeYjs
) -> None:
    a, b = pair
    note = await create_note(a, permissions={"canEdit": ["ed", "sam"]})
    watcher = await node.sio_connect("watcher", a.http_url, token=make_token("owner"))
    await watcher.sio_emit("note:join", {"noteId": note["id"]}, ack=True)
    sam = await node.sio_connect("sam", b.http_url, token=make_token("sam", name="Sam"))
    ack = await sam.sio_emit("note:join", {"noteId": note["id"]}, ack=True)
    assert sorted(u["userId"] for u in ack["users"]) == ["owner", "sam"]
    [joined] = await watcher.wait_sio_event("note:user-joined")
    assert joined["user"] == {"id": "sam", "name": "Sam"}

    editor = await node.connect(
        "ed", url=b.ws_url, room=note["id"], token=make_token("ed", name="Ed"), wait_synced=True
    )
    [ws_joined] = await watcher.wait_sio_event("note:user-joined", count=2)
    assert ws_joined["userId"] == "ed" and ws_joined["source"] == "websocket"

    async def everyone_on_a() -> list[str] | None:
        users = sorted(u["userId"] for u in await presence_of(a, note["id"]))
        return users if users == ["ed", "owner", "sam"] else None

    await eventually(everyone_on_a, what="presence on A showing B's connections")
    await editor.disconnect()
    [left] = await watcher.wait_sio_event("note:user-left")
    assert left["userId"] == "ed"

    async def ed_gone() -> bool:
        return "ed" not in {u["userId"] for u in await presence_of(a, note["id"])}

    await eventually(ed_gone, what="ed leaving presence on A")
    await sam.sio_emit("note:cursor", {"noteId": note["id"], "position": 42})
    [moved] = await watcher.wait_sio_event("note:cursor-update")
    assert moved["userId"] == "sam" and moved["position"] == 42


async def test_presence_of_a_dead_instance_expires(
    pair: tuple[SyncdProcess, SyncdProcess], node: NodeYjs
) -> None:
    a, b = pair
    note = await create_note(a, permissions={"canEdit": ["ed"]})
    await node.connect(
        "ed",
        url=b.ws_url,
        room=note["id"],
        token=make_token("ed"),
        wait_synced=True,
        reconnect=False,
    )

    async def ed_on_a() -> bool:
        return "ed" in {u["userId"] for u in await presence_of(a, note["id"])}

    await eventually(ed_on_a, what="ed's presence mirrored to A")
    await b.kill()  # no chance to retract anything

    async def ed_expired() -> bool:
        return not await ed_on_a()

    await eventually(ed_expired, timeout=10, what="B's entries expiring (3 refreshes)")
    stats = await eventually(
        lambda: _one_instance(a), timeout=10, what="socket-stats forgetting the dead instance"
    )
    assert stats["cluster"]["instances"] == 1

    async def session_ended() -> bool:
        async with a.client(make_token("owner")) as api:
            sessions = (await api.get(f"{NOTES}/{note['id']}/sessions")).json()["sessions"]
        return bool(sessions) and not sessions[0]["isActive"]

    # nobody touches the session any more: the periodic cleanup job ends it
    await eventually(session_ended, timeout=15, what="the orphaned session ending")


async def _one_instance(server: SyncdProcess) -> dict | None:
    async with server.client() as api:
        stats = (await api.get("/socket-stats")).json()
    return stats if stats["cluster"]["instances"] == 1 else None


async def test_a_separate_syncd_worker_runs_the_jobs(
    start_scaled: StartServer,  # noqa: F811
    node: NodeYjs,
    tmp_path: Path,
) -> None:
    server = await start_scaled(name="web", env={**FAST, "SYNCD_RUN_WORKER": "0"})
    ann = await node.sio_connect("ann", server.http_url, token=make_token("ann"))
    [created] = await notify(server, ["ann"], "Handled by the worker")

    async def queued() -> bool:
        return (await job_stats(server))["queues"]["critical"]["queued"] == 1

    await eventually(queued, what="the delivery job waiting for a worker")
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "syncd", "worker", env=server.env(), stdout=log, stderr=log
        )
    try:
        [payload] = await ann.wait_sio_event(
            "notification:new", contains={"id": created["id"]}, timeout=20
        )
        assert payload["title"] == "Handled by the worker"
    finally:
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(worker.wait(), 20)
    assert code == 0, log_path.read_text()


async def test_syncd_worker_refuses_the_embedded_mode(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite'}"
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", "worker", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(worker.communicate(), 30)
    assert worker.returncode == 2 and b"needs REDIS_URL" in err
