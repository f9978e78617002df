"""Webhooks of a scaled deployment: two instances on one Redis and Postgres deliver each
event exactly once (the one where it happened sends it; relayed copies do not), and a
delivery waiting for its retry survives the death of the instance that queued it."""

from __future__ import annotations

import itertools
import signal
from collections import Counter
from datetime import datetime
from typing import Any

from tests.support.fixtures import StartServer, create_note, paragraphs
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.webhook_receiver import Receiver, webhook_env, webhook_receiver
from tests.support.yjs_node import NodeYjs

NOTES = "/api/collaborative-notes"


async def test_two_instances_deliver_each_event_once(start_scaled: StartServer) -> None:
    async with webhook_receiver() as receiver:
        env = webhook_env(receiver, SYNCD_WEBHOOK_DEBOUNCE="0.3")
        a = await start_scaled(name="a", env=env)
        b = await start_scaled(name="b", env=env)
        note = await create_note(a, title="Shared")
        url = f"{NOTES}/{note['id']}"
        async with b.client(make_token("owner")) as api:  # rights changed on B, relayed to A
            put = await api.put(url, json={"permissions": {"canView": ["bob"]}})
            assert put.status_code == 200, put.text
        await eventually(
            lambda: _async(receiver.of_type("note.updated")), what="note.updated from B"
        )
        async with a.client(make_token("owner")) as api:  # deleted on A, relayed to B
            assert (await api.delete(url)).status_code in (200, 204)
        wanted = {
            "note.created",
            "note.permissions_changed",
            "note.shared",
            "note.updated",
            "note.deleted",
        }

        await eventually(lambda: _async(not _missing(receiver, wanted)), what=f"{wanted}")
        # a later event on each instance: once both arrived, each instance's queue (and its
        # relayed copies of the deletion, published before these) has been worked through
        later = [(await create_note(server, title="later"))["id"] for server in (a, b)]

        async def later_arrived() -> bool:
            return {
                r.body["noteId"] for r in receiver.delivered if r.body["type"] == "note.created"
            } >= set(later)

        await eventually(later_arrived, what="the later notes' note.created")
        counts = Counter(
            r.body["type"] for r in receiver.delivered if r.body["noteId"] == note["id"]
        )
        assert {t: counts[t] for t in wanted} == dict.fromkeys(wanted, 1), counts
        ids = Counter(r.webhook_id for r in receiver.requests)
        assert max(ids.values()) == 1, ids
        assert receiver.forged == []


async def test_a_delivery_waiting_for_retry_survives_its_instance(
    start_scaled: StartServer,
) -> None:
    async with webhook_receiver(fail_first=1) as receiver:
        env = webhook_env(receiver, SYNCD_WEBHOOK_EVENTS="note.created", SYNCD_JOB_RETRY_BASE="2")
        a = await start_scaled(name="a", env=env)
        b = await start_scaled(name="b", env=env)
        note = await create_note(a, title="Survivor")
        await eventually(lambda: _async(receiver.requests), what="the first (failed) attempt")
        # A has logged the failed attempt (its job is then being put back for its retry)
        await eventually(lambda: _first_attempt_logged(a), what="the attempt in the log")
        await a.kill()
        delivered = await eventually(
            lambda: _async(receiver.delivered), timeout=30, what="the retry by B"
        )
        assert delivered[0].body["noteId"] == note["id"]
        assert [r.status for r in receiver.requests] == [500, 204]
        assert b.proc is not None and b.proc.returncode is None


def _missing(receiver: Receiver, wanted: set[str]) -> set[str]:
    return wanted - {r.body["type"] for r in receiver.delivered}


async def _async(value: object) -> object:
    return value


async def test_note_updated_window_is_shared_by_the_instances(
    start_scaled: StartServer, node: NodeYjs
) -> None:
    """Editors on two instances, then both leave: `note.updated` carries the final text,
    and any two of the note's are a window apart (when both instances checkpoint, the
    second waits for the first's window: `tests/services/test_webhook_window.py`)."""
    window = 2.0
    async with webhook_receiver() as receiver:
        env = webhook_env(
            receiver, SYNCD_WEBHOOK_DEBOUNCE=str(window), SYNCD_WEBHOOK_EVENTS="note.updated"
        )
        a = await start_scaled(name="a", env=env)
        b = await start_scaled(name="b", env=env)
        note = await create_note(a)
        token = make_token("owner")
        on_a = await node.connect(
            "on-a", url=a.ws_url, room=note["id"], token=token, wait_synced=True
        )
        on_b = await node.connect(
            "on-b", url=b.ws_url, room=note["id"], token=token, wait_synced=True
        )
        await on_a.pm_set(paragraphs("alpha"))
        await on_b.wait_pm_text(equals="alpha")
        await on_b.pm_set(paragraphs("alpha beta"))
        await on_a.wait_pm_text(equals="alpha beta")
        await on_a.disconnect()
        await on_b.disconnect()

        async def final() -> bool:
            return any(u["data"]["text"] == "alpha beta" for u in receiver.of_type("note.updated"))

        await eventually(final, timeout=30, what="a note.updated with both edits")
        sent = [datetime.fromisoformat(u["timestamp"]) for u in receiver.of_type("note.updated")]
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(sent)]
        assert all(gap >= window * 0.9 for gap in gaps), gaps


async def test_a_pending_note_updated_is_sent_when_its_instance_stops(
    start_scaled: StartServer,
) -> None:
    """A long debounce, then SIGTERM: the instance queues its pending `note.updated` as it
    stops, and the other instance's worker delivers it."""
    async with webhook_receiver() as receiver:
        env = webhook_env(
            receiver, SYNCD_WEBHOOK_DEBOUNCE="600", SYNCD_WEBHOOK_EVENTS="note.updated"
        )
        a = await start_scaled(name="a", env=env)
        await start_scaled(name="b", env=env)
        note = await create_note(a)
        async with a.client(make_token("owner")) as api:
            put = await api.put(f"{NOTES}/{note['id']}", json={"title": "Renamed"})
            assert put.status_code == 200, put.text
        assert await a.stop() in (0, -signal.SIGTERM)
        updated = await eventually(
            lambda: _async(receiver.of_type("note.updated")), what="note.updated via B"
        )
        assert updated[0]["data"]["note"]["title"] == "Renamed"


async def _first_attempt_logged(server: SyncdProcess) -> bool:
    async with server.client(make_token("crm", roles=["service"])) as api:
        (endpoint,) = (await api.get("/api/webhooks")).json()["endpoints"]
        log = await api.get(f"/api/webhooks/{endpoint['id']}/deliveries")
    return [(d["attempts"], d["lastResponseCode"]) for d in log.json()["deliveries"]] == [(1, 500)]


async def test_a_session_on_two_instances_starts_and_ends_once(
    start_scaled: StartServer, node: NodeYjs
) -> None:
    """Editors of one note on both instances: the session is one `session.started` and
    one `session.ended` at the receiver, although both instances join it (each announces
    a session it joins) and either may find it over when its editor leaves."""
    async with webhook_receiver() as receiver:
        a, b, note = await _two_instances_and_a_note(start_scaled, receiver)
        token = make_token("owner")
        on_a = await node.connect("a", url=a.ws_url, room=note["id"], token=token, wait_synced=True)
        on_b = await node.connect("b", url=b.ws_url, room=note["id"], token=token, wait_synced=True)
        await on_a.pm_set(paragraphs("typed on A"))
        await on_b.wait_pm_text(equals="typed on A")
        await on_b.pm_set(paragraphs("typed on B"))
        await on_a.wait_pm_text(equals="typed on B")
        await on_a.disconnect()
        await on_b.disconnect()
        await eventually(lambda: _async(receiver.of_type("session.ended")), what="the end")
        await _queues_worked_through(receiver, a, b)

    (started,) = receiver.of_type("session.started")
    (ended,) = receiver.of_type("session.ended")
    assert started["data"]["sessionId"] == ended["data"]["sessionId"]
    assert ended["data"]["updates"] >= 2 and ended["data"]["participants"] == ["owner"]
    assert Counter(r.webhook_id for r in receiver.requests).most_common(1)[0][1] == 1
    assert receiver.forged == []


async def test_back_to_back_sessions_on_two_instances_start_and_end_once_each(
    start_scaled: StartServer, node: NodeYjs
) -> None:
    """Two editing sessions of one note in a row, each with an editor on either instance:
    exactly two sessions, each one `session.started` and one `session.ended`. A pass that
    found the first session over, late, used to end the second one just after another
    instance opened it (the note's active session, whichever it was), and a new one was
    opened that nobody ended while the test waited."""
    async with webhook_receiver() as receiver:
        a, b, note = await _two_instances_and_a_note(start_scaled, receiver)
        token = make_token("owner")
        for round_ in range(2):
            on_a = await node.connect(
                f"a{round_}", url=a.ws_url, room=note["id"], token=token, wait_synced=True
            )
            on_b = await node.connect(
                f"b{round_}", url=b.ws_url, room=note["id"], token=token, wait_synced=True
            )
            # both connections are seen across instances: one period of activity
            await eventually(lambda: _connections(a, note["id"], 2), what="presence on A")
            await on_a.pm_set(paragraphs(f"round {round_}"))
            await on_b.wait_pm_text(equals=f"round {round_}")
            await on_a.disconnect()
            await on_b.disconnect()

            async def all_ended(round_: int = round_) -> bool:
                started = {s["data"]["sessionId"] for s in receiver.of_type("session.started")}
                ended = {s["data"]["sessionId"] for s in receiver.of_type("session.ended")}
                return len(started) > round_ and started == ended

            await eventually(all_ended, timeout=30, what=f"the sessions of round {round_} ended")
        await _queues_worked_through(receiver, a, b)

    started = Counter(s["data"]["sessionId"] for s in receiver.of_type("session.started"))
    finished = Counter(s["data"]["sessionId"] for s in receiver.of_type("session.ended"))
    assert len(started) == 2 and set(started.values()) == {1}, started
    assert finished == started, (started, finished)
    async with a.client(token) as api:
        history = (await api.get(f"{NOTES}/{note['id']}/sessions")).json()["sessions"]
    assert sorted(s["id"] for s in history) == sorted(started)
    assert not any(s["isActive"] for s in history)


async def _two_instances_and_a_note(
    start_scaled: StartServer, receiver: Receiver
) -> tuple[SyncdProcess, SyncdProcess, dict[str, Any]]:
    """Instances A and B sending session events (and note.created, for
    `_queues_worked_through`) to `receiver`, and a note created on A."""
    env = webhook_env(receiver, SYNCD_WEBHOOK_EVENTS="session.started,session.ended,note.created")
    a = await start_scaled(name="a", env=env)
    b = await start_scaled(name="b", env=env)
    return a, b, await create_note(a)


async def _queues_worked_through(receiver: Receiver, *servers: SyncdProcess) -> None:
    """A later event from each instance arrived: their queues (and any second announcement
    of a session, queued before it) have been worked through."""
    later = [(await create_note(server, title="later"))["id"] for server in servers]

    async def later_arrived() -> bool:
        created = {body["noteId"] for body in receiver.of_type("note.created")}
        return created >= set(later)

    await eventually(later_arrived, what="the later notes' note.created")


async def _connections(server: SyncdProcess, note_id: str, count: int) -> bool:
    async with server.client(make_token("owner")) as api:
        users = (await api.get(f"{NOTES}/{note_id}/presence")).json()["users"]
    return sum(u["connections"] for u in users) == count
