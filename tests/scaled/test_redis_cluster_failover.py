"""An unplanned failover on a real Redis Cluster (3 masters + 3 replicas, started here, with a
cluster-node-timeout of 2 s): `kill -9` of the master that serves the docs being edited,
while stock y-websocket clients on two instances type into them. The replica is promoted,
the clients keep working, and every keystroke ends up once in every client, in what the
deployment stores, and in the doc a restarted instance loads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from syncd.bus.keys import Keys
from tests.scaled.helpers import (
    Backing,
    Typist,
    converged,
    marker_counts,
    open_backing,
    stop_all,
    wait_ready,
)
from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.redis_cluster import (
    CLUSTER_TIMEOUT,
    ClusterNode,
    RedisCluster,
    start_redis_cluster,
)
from tests.support.server import SyncdProcess, make_token
from tests.support.services import ServiceUnavailable
from tests.support.yjs_node import NodeYjs, YClient


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A cluster of this test's own: the test takes one of its masters down for good."""
    try:
        cluster = start_redis_cluster(tmp_path / "cluster")
    except ServiceUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    yield cluster
    cluster.close()


@pytest.fixture
async def backing(
    postgres_url: str, redis_cluster: RedisCluster, redis_prefix: str
) -> AsyncIterator[Backing]:
    async with open_backing(postgres_url, redis_cluster.url, redis_prefix, cluster=True) as b:
        yield b


async def _notes_on(
    master: ClusterNode, server: SyncdProcess, cluster: RedisCluster, keys: Keys, count: int
) -> list[str]:
    """`count` new notes whose streams `master` serves."""
    notes: list[str] = []
    for _ in range(60):
        note_id = (await create_note(server, permissions={"canView": ["bob"]}))["id"]
        if cluster.owner_of(keys.updates(note_id)).port == master.port:
            notes.append(note_id)
            if len(notes) == count:
                return notes
    raise AssertionError(f"60 notes and not {count} of them on the master of port {master.port}")


async def _cursor_crosses(ann: YClient, bob: YClient, note_id: str, seen: int) -> bool:
    """Bob (on B) moves his cursor; whether Ann (on A) has been told of more moves than
    `seen` (Socket.IO events are at most once: one sent mid-failover may be lost)."""
    await bob.sio_emit("note:cursor", {"noteId": note_id, "position": {"line": seen}})
    return _cursor_moves(ann) > seen


def _cursor_moves(client: YClient) -> int:
    events = client.node.client_events(client.name, "sio")
    return sum(1 for e in events if e.get("name") == "note:cursor-update")


async def test_kill_9_of_a_master_loses_no_keystroke(
    redis_cluster: RedisCluster,
    redis_server_url: str,
    redis_prefix: str,
    start_scaled: StartServer,
    backing: Backing,
    node: NodeYjs,
) -> None:
    # The job queue (SAQ) needs a single Redis: the suite's own one. An append counts as
    # durable once the master's replica has it too (replication is asynchronous).
    env = {"SYNCD_JOBS_REDIS_URL": redis_server_url, "SYNCD_REDIS_WAIT_REPLICAS": "1"}
    a = await start_scaled(name="a", redis_url=redis_cluster.url, env=env)
    b = await start_scaled(name="b", redis_url=redis_cluster.url, env=env)
    await wait_ready([a.http_url, b.http_url], ready=True)
    # The master to kill serves the Socket.IO channel too (sharded pub/sub).
    master = redis_cluster.owner_of(backing.keys.socketio_channel)
    replica = redis_cluster.replica_of(master)
    notes = await _notes_on(master, a, redis_cluster, backing.keys, 2)
    ann = await node.sio_connect("ann", a.http_url, token=make_token("owner", name="Ann"))
    bob = await node.sio_connect("bob", b.http_url, token=make_token("bob", name="Bob"))
    for sio in (ann, bob):
        assert (await sio.sio_emit("note:join", {"noteId": notes[0]}, ack=True))["ok"] is True
    await ann.wait_sio_event("note:user-joined", contains={"userId": "bob"})

    token = make_token("owner")
    clients: dict[str, list[YClient]] = {}
    for n, note_id in enumerate(notes):
        clients[note_id] = [
            await node.connect(
                f"c{2 * n + i}", url=server.ws_url, room=note_id, token=token, wait_synced=True
            )
            for i, server in enumerate((a, b))
        ]
    typists = [Typist(c, pace=0.03).start() for cs in clients.values() for c in cs]
    for t in typists:
        await t.typed_more(10)

    master.kill()  # SIGKILL of the redis-server this test started, nothing else
    await eventually(
        lambda: asyncio.to_thread(lambda: replica.role() == "master"),
        timeout=CLUSTER_TIMEOUT,
        what="the replica promoted after its master was killed",
    )
    await asyncio.to_thread(redis_cluster.wait_ok)
    for note_id in notes:
        assert redis_cluster.owner_of(backing.keys.updates(note_id)).port == replica.port
    seen = _cursor_moves(ann)
    await eventually(
        lambda: _cursor_crosses(ann, bob, notes[0], seen),
        timeout=60,
        every=0.5,
        what="a Socket.IO event from B reaching A after the failover",
    )

    # Typing went on through the outage; what is typed after it crosses instances too.
    marks = [f"<{t.client.name}:{t.count + 10}>" for t in typists]
    for t in typists:
        await t.typed_more(15, timeout=60)
    for cs in clients.values():
        for c in cs:
            for mark in marks:
                if mark.split(":")[0][1:] in {x.name for x in cs}:
                    await c.wait_text(contains=mark, timeout=60)
    await stop_all(typists)

    for note_id, cs in clients.items():
        names = {c.name for c in cs}
        typed = {
            f"<{t.client.name}:{i}>"
            for t in typists
            if t.client.name in names
            for i in range(t.count)
        }
        counts = marker_counts(await converged(cs, timeout=60))
        assert set(counts) == typed, (sorted(typed - set(counts)), sorted(set(counts) - typed))
        assert set(counts.values()) == {1}, {m: k for m, k in counts.items() if k > 1}

        async def stored_holds_all(note_id: str = note_id, typed: set[str] = typed) -> bool:
            return set(marker_counts((await backing.read(note_id)).text)) == typed

        await eventually(stored_holds_all, timeout=60, what="the stored doc holding every mark")
    await wait_ready([a.http_url, b.http_url], ready=True, timeout=60)

    # Only what Redis and Postgres hold counts now: both instances die without storing.
    for c in (c for cs in clients.values() for c in cs):
        await c.destroy()
    await a.kill()
    await b.kill()
    await a.start()
    for n, note_id in enumerate(notes):
        names = {c.name for c in clients[note_id]}
        typed = {
            f"<{t.client.name}:{i}>"
            for t in typists
            if t.client.name in names
            for i in range(t.count)
        }
        fresh = await node.connect(
            f"fresh{n}", url=a.ws_url, room=note_id, token=token, wait_synced=True
        )
        counts = marker_counts(await fresh.text())
        assert set(counts) == typed, (sorted(typed - set(counts)), sorted(set(counts) - typed))
        assert set(counts.values()) == {1}
