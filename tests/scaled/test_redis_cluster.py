"""Scaled mode on a real Redis Cluster (3 masters, 3 replicas, started here): two instances,
stock y-websocket clients, docs whose streams live on different masters, and a failover of
one master while clients type, with no lost update."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from syncd.auth.refresh_redis import RedisRefreshRecords
from syncd.bus.appender import NotReplicated, StreamAppender
from syncd.bus.connect import open_redis
from syncd.bus.keys import Keys
from syncd.services.cache import RedisCache
from syncd.services.presence.redis_state import RedisInstances, RedisOnline, RedisPresence
from syncd.services.ratelimit import RateLimiter
from syncd.services.webhooks import RedisWindow
from syncd.settings import RateLimits
from syncd.storage.tokens import Rotation
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
from tests.support.redis_cluster import RedisCluster, start_redis_cluster
from tests.support.server import SyncdProcess, make_token
from tests.support.services import ServiceUnavailable
from tests.support.yjs_node import NodeYjs, YClient


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    try:
        cluster = start_redis_cluster(Path(tmp_path_factory.mktemp("cluster")))
    except ServiceUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    yield cluster
    cluster.close()


@pytest.fixture
async def pair(
    redis_cluster: RedisCluster, redis_server_url: str, start_scaled: StartServer
) -> tuple[SyncdProcess, SyncdProcess]:
    # The job queue (SAQ) needs a single Redis: the suite's own one.
    env = {"SYNCD_JOBS_REDIS_URL": redis_server_url}
    a = await start_scaled(name="a", redis_url=redis_cluster.url, env=env)
    b = await start_scaled(name="b", redis_url=redis_cluster.url, env=env)
    return a, b


@pytest.fixture
async def backing(
    postgres_url: str, redis_cluster: RedisCluster, redis_prefix: str
) -> AsyncIterator[Backing]:
    async with open_backing(postgres_url, redis_cluster.url, redis_prefix, cluster=True) as b:
        yield b


async def _notes_on_two_masters(
    server: SyncdProcess, cluster: RedisCluster, keys: Keys
) -> tuple[str, str]:
    """Two new notes whose streams are served by different masters."""
    first = (await create_note(server))["id"]
    owner = cluster.owner_of(keys.updates(first)).port
    for _ in range(30):
        other = (await create_note(server))["id"]
        if cluster.owner_of(keys.updates(other)).port != owner:
            return first, other
    raise AssertionError("30 notes in a row hashed to one master of three")


async def _clients(
    node: NodeYjs, pair: tuple[SyncdProcess, SyncdProcess], note_id: str, tag: str
) -> list[YClient]:
    token = make_token("owner")
    return [
        await node.connect(
            f"{tag}{i}", url=server.ws_url, room=note_id, token=token, wait_synced=True
        )
        for i, server in enumerate(pair)
    ]


async def test_docs_on_different_masters_cross_instances(
    pair: tuple[SyncdProcess, SyncdProcess],
    redis_cluster: RedisCluster,
    redis_prefix: str,
    node: NodeYjs,
) -> None:
    a, b = pair
    await wait_ready([a.http_url, b.http_url], ready=True)
    keys = Keys(redis_prefix.rstrip(":"))
    first, second = await _notes_on_two_masters(a, redis_cluster, keys)
    for note_id, tag in ((first, "x"), (second, "y")):
        on_a, on_b = await _clients(node, pair, note_id, tag)
        await on_a.insert(f"from A in {tag}. ")
        await on_b.wait_text(contains=f"from A in {tag}.")
        await on_b.insert(f"from B in {tag}.")
        await on_a.wait_text(contains=f"from B in {tag}.")
        assert await converged([on_a, on_b]) == await on_a.text()


async def test_a_master_failover_loses_no_update(
    pair: tuple[SyncdProcess, SyncdProcess],
    redis_cluster: RedisCluster,
    backing: Backing,
    node: NodeYjs,
) -> None:
    a, b = pair
    note_id = (await create_note(a))["id"]
    clients = await _clients(node, pair, note_id, "c")
    typists = [Typist(c, pace=0.03).start() for c in clients]
    for t in typists:
        await t.typed_more(10)

    stream = backing.keys.updates(note_id)
    master = redis_cluster.owner_of(stream)
    new_master = await asyncio.to_thread(redis_cluster.failover, master)
    assert redis_cluster.owner_of(stream).port == new_master.port

    # Typing goes on through the failover; what is typed after it crosses instances too.
    marks = {t.client.name: f"<{t.client.name}:{t.count + 10}>" for t in typists}
    for t in typists:
        await t.typed_more(15)
    for c in clients:
        for mark in marks.values():
            await c.wait_text(contains=mark, timeout=30)
    await stop_all(typists)

    final = await converged(clients)
    typed = {f"<{t.client.name}:{i}>" for t in typists for i in range(t.count)}
    counts = marker_counts(final)
    assert set(counts) == typed, (sorted(typed - set(counts)), sorted(set(counts) - typed))
    assert set(counts.values()) == {1}

    async def stored_holds_all() -> bool:
        return set(marker_counts((await backing.read(note_id)).text)) == typed

    await eventually(stored_holds_all, timeout=30, what="the stored doc holding every marker")
    await wait_ready([a.http_url, b.http_url], ready=True)


async def test_every_other_redis_user_works_on_the_cluster(
    redis_cluster: RedisCluster, redis_prefix: str
) -> None:
    """Refresh tokens, presence, caches, webhook windows and rate limits on the cluster
    client, keys spread over every master (each user keeps its scripts and transactions
    within one hash tag, so none of them may raise CROSSSLOT)."""
    prefix = redis_prefix.rstrip(":")
    redis = open_redis(redis_cluster.url.replace("redis+cluster://", "redis://"), cluster=True)
    try:
        tokens = RedisRefreshRecords(redis, prefix=prefix)
        later = time.time() + 60
        for family in ("f1", "f2", "f3", "f4"):
            await tokens.issue("t1", family, "u", later)
            assert await tokens.rotate("t1", family, "t2", "u", later) is Rotation.OK
            assert await tokens.rotate("t1", family, "t3", "u", later) is not Rotation.OK
            await tokens.revoke(family)
            assert await tokens.rotate("t2", family, "t4", "u", later) is Rotation.REVOKED

        presence = RedisPresence(redis, prefix)
        online = RedisOnline(redis, prefix)
        instances = RedisInstances(redis, prefix)
        for note in ("n1", "n2", "n3", "n4"):
            await presence.put(note, [{"connId": "c1", "userId": "u"}], ttl=30)
            assert [e["connId"] for e in await presence.read(note)] == ["c1"]
            await presence.drop(note, ["c1"])
            assert await presence.read(note) == []
        await online.put("u", "i1", 2, ttl=30)
        assert await online.online("u")
        await instances.put("i1", {"rooms": 1}, ttl=30)
        assert "i1" in await instances.read()

        cache = RedisCache(redis, prefix=prefix)
        window = RedisWindow(redis, prefix)
        for note in ("n1", "n2", "n3", "n4"):
            await cache.put(note, "note", "", "value")
            assert await cache.get(note, "note") == ("", "value")
            await cache.invalidate(note)
            assert (await cache.get(note, "note"))[1] is None
            assert await window.claim(note, 30.0) == 0.0
            assert await window.claim(note, 30.0) > 0.0

        limiter = RateLimiter(
            RateLimits(ws_connects_per_ip="2/minute"),
            redis_url=redis_cluster.url.replace("redis+cluster://", "redis://"),
            redis_cluster=True,
            prefix=prefix,
        )
        assert [await limiter.check_connect("10.0.0.1") for _ in range(3)] == [True, True, False]
    finally:
        await redis.aclose()


async def test_socketio_events_cross_instances_on_the_cluster(
    pair: tuple[SyncdProcess, SyncdProcess], node: NodeYjs
) -> None:
    """Socket.IO's manager rides the cluster's sharded pub/sub: a socket on instance A hears
    of a join and a cursor move made on instance B, and B of a notification A delivers."""
    a, b = pair
    await wait_ready([a.http_url, b.http_url], ready=True)
    note = await create_note(a, permissions={"canView": ["bob", "cara"]})
    ann = await node.sio_connect("ann", a.http_url, token=make_token("owner", name="Ann"))
    assert (await ann.sio_emit("note:join", {"noteId": note["id"]}, ack=True))["ok"] is True
    bob = await node.sio_connect("bob", b.http_url, token=make_token("bob", name="Bob"))
    assert (await bob.sio_emit("note:join", {"noteId": note["id"]}, ack=True))["ok"] is True

    [joined] = await ann.wait_sio_event("note:user-joined")
    assert joined["noteId"] == note["id"] and joined["user"] == {"id": "bob", "name": "Bob"}
    await bob.sio_emit("note:cursor", {"noteId": note["id"], "position": {"line": 2}})
    [moved] = await ann.wait_sio_event("note:cursor-update")
    assert moved["userId"] == "bob" and moved["position"] == {"line": 2}

    # A y-websocket editor on B shows up as joined to the Socket.IO listener on A.
    await node.connect(
        "editor", url=b.ws_url, room=note["id"], token=make_token("cara"), wait_synced=True
    )
    [editor] = await ann.wait_sio_event("note:user-joined", contains={"userId": "cara"})
    assert editor["source"] == "websocket"


async def test_an_append_the_replica_has_not_acknowledged_is_not_durable(
    redis_cluster: RedisCluster, redis_prefix: str
) -> None:
    """With SYNCD_REDIS_WAIT_REPLICAS=1, an append to a master whose replica is attached but
    stalled (SIGSTOP) fails (the room keeps it, unsent, and retries); once the replica
    answers again, appends are durable again."""
    url = redis_cluster.url.replace("redis+cluster://", "redis://")
    keys = Keys(redis_prefix.rstrip(":"))
    redis = open_redis(url, cluster=True)
    appender = StreamAppender(redis, url, keys, b"me", replicas=1, wait_ms=200)
    replica = redis_cluster.replica_of(redis_cluster.owner_of(keys.updates("d1")))
    try:
        assert await appender.append([("d1", [b"\x00\x00"])], 1.0) == {"d1": None}
        replica.pause()
        try:
            outcome = await appender.append([("d1", [b"\x00\x00"])], 1.0)
        finally:
            replica.resume()
        assert isinstance(outcome["d1"], NotReplicated), outcome

        async def durable_again() -> bool:
            return await appender.append([("d1", [b"\x00\x00"])], 1.0) == {"d1": None}

        await eventually(durable_again, timeout=30, what="appends acknowledged again")
    finally:
        replica.resume()
        await appender.aclose()
        await redis.aclose()
