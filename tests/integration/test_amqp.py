"""RabbitMQ end to end on the embedded server: a real broker, a consumer with its own
queue, stock Yjs clients. Every event arrives once with the properties a consumer
expects and the webhooks' body; the outbox drains; a full outbox drops loudly; a broker
that cannot be used refuses the start in one line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from syncd.services.events.payloads import EventMessage
from tests.integration.collab_helpers import FAST, mention
from tests.support.amqp import (
    ALL_EVENTS,
    Consumer,
    amqp_env,
    amqp_url,
    consumer,
    fresh_exchange,
    metric,
    require_broker,
    tcp_proxy,
)
from tests.support.fixtures import StartServer, create_note, paragraphs
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, free_port, make_token
from tests.support.yjs_node import NodeYjs

NOTES = "/api/collaborative-notes"


async def _readyz(server: SyncdProcess) -> dict[str, Any]:
    async with server.client() as api:
        return (await api.get("/readyz")).json()


async def _outbox_empty(server: SyncdProcess) -> bool:
    amqp = (await _readyz(server))["amqp"]
    return amqp["outboxDepth"] == 0


async def _types(got: Consumer, *wanted: str) -> bool:
    have = {m.body["type"] for m in got.messages}
    return set(wanted) <= have


async def test_a_scripted_session_arrives_once_with_its_properties(
    start_syncd: StartServer, node: NodeYjs
) -> None:
    url = amqp_url()
    async with (
        fresh_exchange(url) as exchange,
        consumer(url, exchange, *ALL_EVENTS) as everything,
        consumer(url, exchange, "note.#") as notes_only,
    ):
        env = amqp_env(url, exchange, SYNCD_WEBHOOK_DEBOUNCE="0.3", **FAST)
        server = await start_syncd(env=env)
        note = await create_note(server, title="Deal", permissions={"canEdit": ["bob", "dave"]})
        token = make_token("owner")
        alice = await node.connect(
            "alice", url=server.ws_url, room=note["id"], token=token, wait_synced=True
        )
        await alice.pm_set(paragraphs("hello"))
        await eventually(lambda: _types(everything, "note.updated"), what="note.updated")
        async with server.client(token) as api:
            put = await api.put(f"{NOTES}/{note['id']}", json={"contentJson": mention("dave")})
            assert put.status_code == 200, put.text
            await eventually(lambda: _types(everything, "mention.created"), what="mention")
            version = await api.post(f"{NOTES}/{note['id']}/versions", json={"label": "v1"})
            assert version.status_code == 201, version.text
            await alice.disconnect()
            await eventually(lambda: _types(everything, "session.ended"), what="session.ended")
            assert (await api.delete(f"{NOTES}/{note['id']}")).status_code in (200, 204)
            restored = await api.post(f"{NOTES}/{note['id']}/restore")
            assert restored.status_code == 200, restored.text
        wanted = {
            "note.created",
            "note.shared",
            "notification.created",
            "session.started",
            "note.updated",
            "mention.created",
            "version.created",
            "session.ended",
            "note.deleted",
            "note.restored",
        }
        await eventually(lambda: _types(everything, *wanted), timeout=30, what=str(wanted))
        await eventually(lambda: _outbox_empty(server), what="the outbox drained")

        ids = [m.message_id for m in everything.messages]
        assert len(ids) == len(set(ids)), "embedded: each message published once"
        for m in everything.messages:
            parsed = EventMessage.parse(json.dumps(m.body))  # the webhooks' schema
            assert m.message_id == parsed.id
            assert m.type == parsed.type == m.routing_key
            assert m.content_type == "application/json"
            assert m.delivery_mode == 2  # persistent
            assert m.timestamp is not None
        # in order for the note: created first, the trash round trip last
        kinds = [m.body["type"] for m in everything.messages if m.body["noteId"] == note["id"]]
        assert kinds[0] == "note.created"
        assert kinds.index("note.deleted") < kinds.index("note.restored")
        assert kinds.index("session.started") < kinds.index("session.ended")
        # a queue bound to note.# gets exactly the note.* ones
        await eventually(
            lambda: _types(notes_only, "note.restored"), what="note.restored on note.#"
        )
        assert {m.body["type"] for m in notes_only.messages} == {
            t for t in wanted if t.startswith("note.")
        }
        notified = [
            m.body["data"]["userId"]
            for m in everything.messages
            if m.body["type"] == "notification.created"
        ]
        assert set(notified) >= {"bob", "dave"}
        confirmed = await metric(server.http_url, "syncd_amqp_confirmed_total")
        assert confirmed == len(everything.messages)
        assert await metric(server.http_url, "syncd_amqp_connected") == 1


async def test_a_full_outbox_drops_loudly_and_the_rest_drains_after_an_outage(
    start_syncd: StartServer,
) -> None:
    url = amqp_url()
    async with (
        fresh_exchange(url) as exchange,
        consumer(url, exchange, *ALL_EVENTS) as got,
        tcp_proxy(url) as proxy,
    ):
        env = amqp_env(proxy.url_for(url), exchange, SYNCD_AMQP_OUTBOX_MAX="3")
        server = await start_syncd(env=env)
        await eventually(lambda: _connected(server), what="connected through the proxy")
        proxy.cut()
        await eventually(lambda: _disconnected(server), what="the broker seen gone")
        for n in range(5):
            await create_note(server, title=f"n{n}")  # note.created each: 2 over the bound
        await eventually(lambda: _dropped(server, 2), what="two messages dropped and counted")
        assert (await _readyz(server))["amqp"]["outboxDepth"] == 3
        assert "AMQP outbox full (SYNCD_AMQP_OUTBOX_MAX=3)" in server.log_tail(400)
        assert (await _readyz(server))["status"] == "ready"  # degraded, still serving
        proxy.restore()
        await eventually(lambda: _outbox_empty(server), timeout=30, what="drained")
        await eventually(lambda: _count(got, 3), what="the three kept messages")
        titles = [m.body["data"]["note"]["title"] for m in got.messages]
        assert titles == ["n0", "n1", "n2"]  # in order, the first ones kept
        assert await metric(server.http_url, "syncd_amqp_reconnects_total") >= 1


async def _count(got: Consumer, n: int) -> bool:
    return len(got.messages) >= n


async def _connected(server: SyncdProcess) -> bool:
    return bool((await _readyz(server))["amqp"]["connected"])


async def _disconnected(server: SyncdProcess) -> bool:
    return not (await _readyz(server))["amqp"]["connected"]


async def _dropped(server: SyncdProcess, n: int) -> bool:
    return await metric(server.http_url, "syncd_amqp_dropped_total") >= n


async def _serve_once(tmp_path: Path, rabbitmq_url: str) -> tuple[int, list[str]]:
    """Run `syncd serve` with `rabbitmq_url` until it exits (bounded): its code and
    output lines."""
    proc = SyncdProcess(tmp_path / "refused", env={"RABBITMQ_URL": rabbitmq_url})
    proc.data_dir.mkdir(parents=True, exist_ok=True)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd",
        "serve",
        env=proc.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(child.communicate(), timeout=30)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise AssertionError("syncd did not exit on a broker it cannot use") from None
    assert child.returncode is not None
    lines = out.decode(errors="replace").splitlines()
    # INFO lines of libraries loaded on the way (Alembic's plugins) are not complaints
    return child.returncode, [line for line in lines if " INFO " not in line]


async def test_a_wrong_password_refuses_the_start_in_one_line(tmp_path: Path) -> None:
    base = amqp_url()
    await require_broker(base)  # a refusal needs a broker that refuses
    wrong = base.replace("guest:guest@", "guest:not-the-password@")
    assert wrong != base, f"{base} has no guest:guest credentials to spoil"
    code, lines = await _serve_once(tmp_path, wrong)
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert "RABBITMQ_URL" in lines[0] and "credentials" in lines[0], lines
    assert "not-the-password" not in lines[0]  # the password is never printed


async def test_an_unreachable_broker_refuses_the_start_in_one_line(tmp_path: Path) -> None:
    nobody = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    code, lines = await _serve_once(tmp_path, nobody)
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert "RABBITMQ_URL" in lines[0] and "cannot connect" in lines[0], lines


async def test_an_unknown_virtual_host_refuses_the_start_in_one_line(tmp_path: Path) -> None:
    await require_broker(amqp_url())
    base = amqp_url().rstrip("/")
    code, lines = await _serve_once(tmp_path, f"{base}/no-such-vhost-{os.getpid()}")
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert "RABBITMQ_URL" in lines[0] and "virtual host" in lines[0], lines


async def test_an_unparsable_url_refuses_the_start_in_one_line(tmp_path: Path) -> None:
    code, lines = await _serve_once(tmp_path, "http://127.0.0.1:5672/")
    assert code == 2, lines
    assert lines == [
        "syncd: RABBITMQ_URL must start with amqp:// or amqps://, got 'http://127.0.0.1:5672/'"
    ]


def test_the_test_broker_url_is_configurable() -> None:
    assert amqp_url() == (
        os.environ.get("SYNCD_TEST_AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/"
    )
    assert httpx  # imported for the metric helper's client
