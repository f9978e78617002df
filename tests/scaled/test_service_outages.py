"""Postgres or Redis goes away for a while mid-run while clients type through a plain load
balancer: the instances keep their clients connected, say not-ready on `/readyz`, and
recover without losing any update (DESIGN.md, "Durability invariant").

Each case runs its own throwaway server, never the shared one:
- Postgres restarted (fast shutdown, then start);
- Redis (appendonly, default `appendfsync everysec`) restarted with SIGTERM: a clean
  shutdown flushes the AOF, so nothing may be lost;
- Redis (appendonly, `appendfsync always`) killed with SIGKILL: every acknowledged append
  was fsynced, so nothing may be lost either. (With `everysec` a kill can lose about a
  second of appends; README, "What the guarantees mean", tells operators so.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.scaled.helpers import (
    Typist,
    connect_many,
    converged,
    marker_counts,
    markers,
    open_backing,
    received,
    stop_all,
    texts,
    wait_ready,
)
from tests.support.balancer import Balancer
from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.server import make_token
from tests.support.services import start_postgres, start_redis
from tests.support.yjs_node import NodeYjs, YClient

CLIENTS = 4


@dataclass(frozen=True, slots=True)
class Outage:
    """The deployment's URLs and how to take one of its services down and up again."""

    database_url: str
    redis_url: str
    down: Callable[[], None]
    up: Callable[[], None]
    #: the `/readyz` check that must fail meanwhile
    check: str


@pytest.fixture(params=["postgres-restart", "redis-restart", "redis-kill"])
async def outage(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str, redis_server_url: str
) -> AsyncIterator[Outage]:
    # Service control blocks (it waits for the server): keep it off the event loop, which
    # runs the balancer and the Node clients' driver meanwhile.
    if request.param == "postgres-restart":
        pg = await asyncio.to_thread(start_postgres, tmp_path)
        try:
            yield Outage(pg.url, redis_server_url, pg.stop, pg.start, "database")
        finally:
            await asyncio.to_thread(pg.close)
        return
    kill = request.param == "redis-kill"
    redis = await asyncio.to_thread(
        start_redis, tmp_path, appendonly=True, appendfsync="always" if kill else None
    )
    down = redis.kill if kill else redis.stop
    try:
        yield Outage(postgres_url, redis.url, down, redis.start, "redis")
    finally:
        await asyncio.to_thread(redis.close)


async def test_instances_ride_out_an_outage_and_lose_no_update(
    outage: Outage, redis_prefix: str, start_scaled: StartServer, node: NodeYjs
) -> None:
    # Checkpoints every second: compaction runs before, during (and fails) and after.
    urls = {"database_url": outage.database_url, "redis_url": outage.redis_url}
    env = {"SYNCD_COMPACT_INTERVAL": "1"}
    a = await start_scaled(name="a", env=env, **urls)
    b = await start_scaled(name="b", env=env, **urls)
    instances = [a.http_url, b.http_url]
    note_id = (await create_note(a))["id"]
    token = make_token("owner")
    async with (
        Balancer([a.port, b.port]) as lb,
        open_backing(outage.database_url, outage.redis_url, redis_prefix) as backing,
    ):
        clients = await connect_many(node, lb.ws_url, note_id, count=CLIENTS, prefix="c")
        assert sorted(lb.active.values()) == [CLIENTS // 2, CLIENTS // 2]
        typists = [Typist(c, pace=0.03).start() for c in clients]
        for c in clients:
            await clients[0].wait_text(contains=f"<{c.name}:5>", timeout=20)
            await clients[1].wait_text(contains=f"<{c.name}:5>", timeout=20)

        before = await texts(clients)
        await asyncio.to_thread(outage.down)
        for body in await wait_ready(instances, ready=False, timeout=20):
            checks = body["checks"]
            assert isinstance(checks, dict) and checks[outage.check] != "ok", body
        for url in instances:
            async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
                assert (await client.get("/healthz")).status_code == 200
        if outage.check == "database":
            # Without Postgres, updates still cross instances (they go through Redis).
            for t in typists:
                mark = f"<{t.client.name}:{t.count + 3}>"
                for c in clients:
                    await c.wait_text(contains=mark, timeout=20)
        else:
            # Without Redis, fan-out pauses (nothing is sent before it is stored); the
            # clients stay connected and go on typing.
            for t in typists:
                await t.typed_more(5)
        assert await _closes(node, clients) == 0, "a client was disconnected by the outage"

        await asyncio.to_thread(outage.up)
        await wait_ready(instances, ready=True)
        # Nothing a client was sent before the outage is lost.
        stored = await backing.read(note_id)
        sent = set().union(*(received(name, text) for name, text in before.items()))
        assert sent <= markers(stored.text), sorted(sent - markers(stored.text))

        for t in typists:
            await t.typed_more(5)
        await stop_all(typists)
        final = await converged(clients)
        assert await _closes(node, clients) == 0, "a client was disconnected by the outage"

        fresh = await node.connect(
            "fresh", url=lb.ws_url, room=note_id, token=token, wait_synced=True, timeout=20
        )
        fresh_text = await fresh.wait_text(equals=final, timeout=20)
        typed = {f"<{t.client.name}:{i}>" for t in typists for i in range(t.count)}
        counts = marker_counts(fresh_text)
        assert set(counts) == typed, (sorted(typed - set(counts)), sorted(set(counts) - typed))
        assert set(counts.values()) == {1}

        # Compaction works again: the snapshot alone catches up with the doc.
        async def snapshot_holds_all() -> bool:
            return (await backing.read(note_id)).snapshot_text == final

        await eventually(snapshot_holds_all, timeout=30, what="the snapshot catching up")


async def _closes(node: NodeYjs, clients: Sequence[YClient]) -> int:
    """Connections the server side closed, over all clients (events are read in order)."""
    await node.call("ping")
    return sum(len(node.client_events(c.name, "close")) for c in clients)
