"""Scaled mode over a unix-socket Redis URL (`unix:///path/redis.sock`): a Redis on the same
host spares every round trip the loopback TCP stack. Everything scaled mode connects with
takes the URL (bus appender and reader, pub/sub, job queue, rate limits, python-socketio,
health checks), and the appender keeps its bare connection (`syncd.bus.link`) on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from syncd.bus import link
from syncd.bus.appender import StreamAppender
from syncd.bus.keys import Keys
from syncd.services.ratelimit import RateLimiter
from syncd.settings import RateLimits
from tests.scaled.test_bus_keys import update_of
from tests.support.fixtures import StartServer, create_note
from tests.support.server import make_token
from tests.support.services import RedisServer, start_redis
from tests.support.yjs_node import NodeYjs


@pytest.fixture(scope="module")
def unix_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"), appendonly=False, unix_socket=True)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def over_tcp(unix_redis: RedisServer) -> AsyncIterator[Redis]:
    """A client of the same Redis over TCP: what the tests read back with."""
    client = Redis.from_url(unix_redis.url)
    try:
        yield client
    finally:
        await client.aclose()


def test_the_bare_link_takes_unix_urls_redis_py_reads_alike() -> None:
    assert link.usable("unix:///run/redis/redis.sock")
    assert link.usable("unix:///run/redis/redis.sock?db=3")
    assert link.usable("unix://:secret@/run/redis/redis.sock")
    # options only redis-py reads stay on its connection
    assert not link.usable("unix:///run/redis/redis.sock?db=3&health_check_interval=2")
    assert not link.usable("unix:///run/redis/redis.sock?password=secret")
    assert not link.usable("unix://")


async def test_appends_over_a_unix_socket_go_on_the_bare_link_to_the_urls_database(
    unix_redis: RedisServer, over_tcp: Redis
) -> None:
    assert unix_redis.unix_url is not None
    keys = Keys("unix-link")
    url = f"{unix_redis.unix_url}?db=3"
    appender = StreamAppender(over_tcp, url, keys, b"me")
    try:
        first = await appender.append([("d1", [update_of("a")])], 1.0)
        second = await appender.append([("d1", [update_of("b")])], 2.0)
        assert first == second == {"d1": None}
        # one bare connection, kept for the next turn, on the socket
        (bare,) = appender._idle
        assert bare.alive
        peer = bare._transport.get_extra_info("peername")
        assert peer == str(unix_redis.socket)
    finally:
        await appender.aclose()
    assert await over_tcp.xlen(keys.updates("d1")) == 0
    in_3 = Redis.from_url(unix_redis.url.rsplit("/", 1)[0] + "/3")
    try:
        assert await in_3.xlen(keys.updates("d1")) == 2
        await in_3.delete(keys.updates("d1"), keys.doc_index)
    finally:
        await in_3.aclose()


async def test_the_rate_limiter_shares_its_counters_over_a_unix_socket(
    unix_redis: RedisServer, over_tcp: Redis
) -> None:
    """`limits` names redis-py's `unix://` `redis+unix://`: given it as is, startup failed."""
    assert unix_redis.unix_url is not None
    settings = RateLimits(enabled=True, rest_per_ip="2/minute")
    limiter = RateLimiter(settings, redis_url=unix_redis.unix_url, prefix="unix-limits")
    assert await limiter.check_rest(None, "10.0.0.9") is None
    assert await limiter.check_rest(None, "10.0.0.9") is None
    assert await limiter.check_rest(None, "10.0.0.9") is not None
    keys = [key async for key in over_tcp.scan_iter(match="*unix-limits*")]
    assert keys  # the counter is in Redis, not in process
    await over_tcp.delete(*keys)


async def test_two_instances_over_a_unix_socket_converge(
    unix_redis: RedisServer, start_scaled: StartServer, node: NodeYjs
) -> None:
    url = unix_redis.unix_url
    a = await start_scaled(name="a", redis_url=url, env={"SYNCD_RATE_LIMITS": "1"})
    b = await start_scaled(name="b", redis_url=url)
    async with httpx.AsyncClient(base_url=a.http_url) as client:
        ready = (await client.get("/readyz")).json()
    assert ready["checks"]["redis"] == "ok" and ready["checks"]["stream_reader"] == "ok"
    note = await create_note(a)
    on_a = await node.connect(
        "on-a", url=a.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    on_b = await node.connect(
        "on-b", url=b.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
    )
    await on_a.insert("from A. ")
    await on_b.wait_text(contains="from A.")
    await on_b.insert("from B.")
    await on_a.wait_text(contains="from B.")
    assert await on_a.text() == await on_b.text()
    await on_a.awareness_set({"user": {"name": "Ada"}})
    states = await on_b.wait_awareness(client_id=on_a.client_id)
    assert states[on_a.client_id]["user"]["name"] == "Ada"
