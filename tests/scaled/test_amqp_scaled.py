"""RabbitMQ from a scaled deployment: two instances on one Redis and Postgres publish
each event once (the one where it happened appends it to the shared outbox stream, the
lease holder publishes it), in order per note; a 10 s broker outage loses nothing; the
`kill -9` of the publishing instance hands the outbox to the other one.

Outages go through a TCP proxy inside the test (the shared broker keeps running)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

from syncd.services.events.payloads import EventMessage
from tests.integration.collab_helpers import FAST, mention
from tests.support.amqp import (
    ALL_EVENTS,
    Consumer,
    Received,
    amqp_env,
    amqp_url,
    consumer,
    fresh_exchange,
    tcp_proxy,
)
from tests.support.fixtures import StartServer, create_note, paragraphs
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.yjs_node import NodeYjs

NOTES = "/api/collaborative-notes"
ENV = {"SYNCD_WEBHOOK_DEBOUNCE": "0.3", **FAST}


async def _amqp(server: SyncdProcess) -> dict[str, Any]:
    async with server.client() as api:
        return (await api.get("/readyz")).json()["amqp"]


async def _drained(*servers: SyncdProcess) -> bool:
    depths = [(await _amqp(s))["outboxDepth"] for s in servers]
    return depths == [0] * len(servers)


def _of_note(got: Consumer, note_id: str) -> list[Received]:
    return [m for m in got.unique() if m.body["noteId"] == note_id]


async def _has(got: Consumer, note_id: str, *types: str) -> bool:
    return set(types) <= {m.body["type"] for m in _of_note(got, note_id)}


async def test_a_scripted_session_on_two_instances_arrives_once_in_order(
    start_scaled: StartServer, node: NodeYjs
) -> None:
    url = amqp_url()
    async with fresh_exchange(url) as exchange, consumer(url, exchange, *ALL_EVENTS) as got:
        env = amqp_env(url, exchange, **ENV)
        a = await start_scaled(name="a", env=env)
        b = await start_scaled(name="b", env=env)
        note = await create_note(a, title="Deal", permissions={"canEdit": ["bob", "dave"]})
        note_id = note["id"]
        alice = await node.connect(
            "alice", url=a.ws_url, room=note_id, token=make_token("owner"), wait_synced=True
        )
        bob = await node.connect(
            "bob", url=b.ws_url, room=note_id, token=make_token("bob"), wait_synced=True
        )
        await alice.pm_set(paragraphs("from alice"))
        await bob.wait_pm_text(equals="from alice")
        await bob.pm_set(paragraphs("from alice and bob"))
        await alice.wait_pm_text(equals="from alice and bob")
        await eventually(lambda: _has(got, note_id, "note.updated"), what="note.updated")
        async with b.client(make_token("owner")) as api:  # shared on B
            rights = {"canEdit": ["bob", "dave"], "canView": ["carol"]}
            put = await api.put(f"{NOTES}/{note_id}", json={"permissions": rights})
            assert put.status_code == 200, put.text
        async with a.client(make_token("owner")) as api:  # a mention through A
            put = await api.put(f"{NOTES}/{note_id}", json={"contentJson": mention("dave")})
            assert put.status_code == 200, put.text
        await eventually(lambda: _has(got, note_id, "mention.created"), what="mention")
        async with b.client(make_token("owner")) as api:
            version = await api.post(f"{NOTES}/{note_id}/versions", json={"label": "v1"})
            assert version.status_code == 201, version.text
        await alice.disconnect()
        await bob.disconnect()
        await eventually(lambda: _has(got, note_id, "session.ended"), what="session.ended")
        async with a.client(make_token("owner")) as api:
            assert (await api.delete(f"{NOTES}/{note_id}")).status_code in (200, 204)
        async with b.client(make_token("owner")) as api:
            restored = await api.post(f"{NOTES}/{note_id}/restore")
            assert restored.status_code == 200, restored.text
        wanted = {
            "note.created",
            "note.shared",
            "note.permissions_changed",
            "note.updated",
            "mention.created",
            "notification.created",
            "version.created",
            "session.started",
            "session.ended",
            "note.deleted",
            "note.restored",
        }
        await eventually(lambda: _has(got, note_id, *wanted), timeout=30, what=str(wanted))
        await eventually(lambda: _drained(a, b), what="both outboxes report 0")

        mine = _of_note(got, note_id)
        for m in mine:
            parsed = EventMessage.parse(json.dumps(m.body))
            assert m.message_id == parsed.id and m.routing_key == parsed.type
            assert m.content_type == "application/json" and m.delivery_mode == 2
        counts = Counter(m.body["type"] for m in mine)
        # once each, whichever instance it happened on and however the other relayed it
        for once in (
            "note.created",
            "note.permissions_changed",
            "note.deleted",
            "note.restored",
            "mention.created",
            "session.started",
            "session.ended",
        ):
            assert counts[once] == 1, counts
        assert counts["note.shared"] == 2, counts  # bob and dave at creation, carol later
        kinds = [m.body["type"] for m in mine]
        assert kinds[0] == "note.created"
        assert kinds.index("note.shared") < kinds.index("note.permissions_changed")
        assert kinds.index("session.started") < kinds.index("session.ended")
        assert kinds.index("note.deleted") < kinds.index("note.restored")
        # after the restore only its consequences (a debounced note.updated may follow)
        after = set(kinds[kinds.index("note.restored") + 1 :])
        assert after <= {"note.updated", "version.created"}, kinds
        states = [await _amqp(s) for s in (a, b)]
        assert [s["publisher"] for s in states].count(True) == 1, states  # one lease holder
        assert all(s["connected"] for s in states), states


async def _type_and_create(
    clients: list[Any], servers: list[SyncdProcess], seconds: float
) -> list[str]:
    """Keep both clients typing and create a note on each instance in turn for `seconds`
    (bounded by time and count); the ids of the notes created."""
    created: list[str] = []
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline and n < 200:
        client = clients[n % len(clients)]
        await client.pm_set(paragraphs(f"text {n}"))
        note = await create_note(servers[n % len(servers)], title=f"outage {n}")
        created.append(note["id"])
        n += 1
        await asyncio.sleep(0.2)  # pacing of the typists, not a wait for a condition
    return created


async def test_a_ten_second_broker_outage_loses_nothing(
    start_scaled: StartServer, node: NodeYjs
) -> None:
    url = amqp_url()
    async with (
        fresh_exchange(url) as exchange,
        consumer(url, exchange, *ALL_EVENTS) as got,
        tcp_proxy(url) as proxy,
    ):
        env = amqp_env(proxy.url_for(url), exchange, **ENV)
        a = await start_scaled(name="a", env=env)
        b = await start_scaled(name="b", env=env)
        note = await create_note(a, title="Busy", permissions={"canEdit": ["bob"]})
        alice = await node.connect(
            "alice", url=a.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
        )
        bob = await node.connect(
            "bob", url=b.ws_url, room=note["id"], token=make_token("bob"), wait_synced=True
        )
        await eventually(lambda: _has(got, note["id"], "note.created"), what="before the cut")
        proxy.cut()
        during = await _type_and_create([alice, bob], [a, b], seconds=10)
        depth = max([(await _amqp(s))["outboxDepth"] for s in (a, b)])
        assert depth > 0, "the outage left nothing waiting in the outbox"
        assert not any([(await _amqp(s))["connected"] for s in (a, b)])
        proxy.restore()
        await alice.disconnect()
        await bob.disconnect()

        async def all_arrived() -> bool:
            created = {m.body["noteId"] for m in got.unique() if m.body["type"] == "note.created"}
            return set(during) <= created and await _has(got, note["id"], "session.ended")

        await eventually(all_arrived, timeout=60, what="every event after the outage")
        await eventually(lambda: _drained(a, b), timeout=30, what="the outbox back to 0")
        for note_id in during:
            kinds = [m.body["type"] for m in _of_note(got, note_id)]
            assert kinds.count("note.created") == 1 and kinds[0] == "note.created", kinds
        kinds = [m.body["type"] for m in _of_note(got, note["id"])]
        assert kinds[0] == "note.created" and kinds.count("session.ended") == 1, kinds
        assert kinds.index("session.started") < kinds.index("session.ended")
        stamps = [
            m.body["timestamp"]
            for m in _of_note(got, note["id"])
            if m.body["type"] == "note.updated"
        ]
        assert stamps == sorted(stamps), "note.updated out of order"


async def test_kill_9_of_the_publishing_instance_hands_the_outbox_over(
    start_scaled: StartServer,
) -> None:
    url = amqp_url()
    async with fresh_exchange(url) as exchange, consumer(url, exchange, "note.#") as got:
        env = amqp_env(url, exchange, **ENV)
        a = await start_scaled(name="a", env=env)
        b = await start_scaled(name="b", env=env)

        async def holder() -> SyncdProcess | None:
            states = [(s, (await _amqp(s))["publisher"]) for s in (a, b)]
            held = [s for s, publishing in states if publishing]
            return held[0] if len(held) == 1 else None

        publishing = await eventually(holder, what="one instance holding the lease")
        other = b if publishing is a else a
        created: list[str] = []
        for n in range(40):  # a stream of events on the surviving instance
            created.append((await create_note(other, title=f"k{n}"))["id"])
            if n == 10:
                assert await publishing.kill() == -9
        assert other.proc is not None and other.proc.returncode is None

        async def all_created() -> bool:
            seen = {m.body["noteId"] for m in got.unique() if m.body["type"] == "note.created"}
            return set(created) <= seen

        await eventually(all_created, timeout=40, what="every note.created after the kill")
        assert (await _amqp(other))["publisher"] is True
        await eventually(lambda: _drained(other), what="the outbox back to 0")
        order = [m.body["noteId"] for m in got.unique() if m.body["noteId"] in set(created)]
        assert order == created, "published out of creation order"
