"""`kill -9` of one instance while several clients type through a plain load balancer: the
clients reconnect to the other instance by themselves, and nothing any client was sent is
lost (DESIGN.md, "Durability invariant")."""

from __future__ import annotations

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
)
from tests.support.balancer import Balancer
from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.server import make_token
from tests.support.yjs_node import NodeYjs

CLIENTS = 6


async def test_kill_9_of_an_instance_while_clients_type_loses_nothing_anyone_was_sent(
    postgres_url: str,
    redis_server_url: str,
    redis_prefix: str,
    start_scaled: StartServer,
    node: NodeYjs,
) -> None:
    a = await start_scaled(name="a")
    b = await start_scaled(name="b")
    note_id = (await create_note(a))["id"]
    token = make_token("owner")
    async with (
        Balancer([a.port, b.port]) as lb,
        open_backing(postgres_url, redis_server_url, redis_prefix) as backing,
    ):
        clients = await connect_many(
            node, lb.ws_url, note_id, count=CLIENTS, prefix="c", max_backoff_ms=1000
        )
        # Round robin, no stickiness: the clients are spread over both instances.
        assert lb.routed == [a.port, b.port] * (CLIENTS // 2)
        on_a = [c for c, port in zip(clients, lb.routed, strict=True) if port == a.port]
        typists = [Typist(c, pace=0.03).start() for c in clients]

        # Every client's inserts reach a client on the other instance before the kill.
        for c in clients:
            await clients[1].wait_text(contains=f"<{c.name}:15>", timeout=20)
            await clients[0].wait_text(contains=f"<{c.name}:15>", timeout=20)

        # No reconnection until what the deployment stores has been read, so no client can
        # resend anything first: every insert a client was sent by syncd (someone else's
        # marker in its text) must be stored already.
        lb.pause()
        await a.kill()
        at_kill = await texts(clients)
        stored = await backing.read(note_id)
        lb.resume()
        assert len(lb.routed) == CLIENTS
        sent = set().union(*(received(name, text) for name, text in at_kill.items()))
        missing = sent - markers(stored.text)
        assert not missing, f"sent to clients but not stored: {sorted(missing)}"

        # The clients of A see their socket close and reconnect, through the balancer, to B.
        for c in on_a:
            code, _ = await c.wait_closed(timeout=20)
            assert code == 1006
        for c in clients:
            await c.wait_synced(timeout=30)

        async def all_on_b() -> bool:
            return lb.active[a.port] == 0 and lb.active[b.port] == CLIENTS

        await eventually(all_on_b, timeout=20, what="every client connected to B")
        for t in typists:
            await t.typed_more(5)
        await stop_all(typists)
        final = await converged(clients)

        fresh = await node.connect(
            "fresh", url=lb.ws_url, room=note_id, token=token, wait_synced=True, timeout=20
        )
        fresh_text = await fresh.wait_text(equals=final, timeout=20)
        seen = set().union(*(markers(text) for text in (*at_kill.values(), final)))
        assert seen <= markers(fresh_text), sorted(seen - markers(fresh_text))
        # Count them: every insert any client made is there exactly once.
        typed = {f"<{t.client.name}:{i}>" for t in typists for i in range(t.count)}
        counts = marker_counts(fresh_text)
        assert set(counts) == typed, (sorted(typed - set(counts)), sorted(set(counts) - typed))
        assert set(counts.values()) == {1}
        assert sum(counts.values()) == sum(t.count for t in typists) > 20 * CLIENTS
        assert (await backing.read(note_id)).text == final
