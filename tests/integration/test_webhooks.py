"""Signed webhooks end to end: a real syncd POSTs to a real HTTP receiver that checks every
signature with the `standardwebhooks` verifier; failures are retried after backoff, and
`note.updated` is debounced per note."""

from __future__ import annotations

import json
from typing import Any

from syncd.services.events.payloads import EventMessage
from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.server import make_token
from tests.support.webhook_receiver import webhook_env, webhook_receiver
from tests.support.yjs_node import NodeYjs

NOTES = "/api/collaborative-notes"


async def test_note_events_arrive_signed_with_their_catalogue_payload(
    start_syncd: StartServer,
) -> None:
    async with webhook_receiver() as receiver:
        server = await start_syncd(env=webhook_env(receiver))
        note = await create_note(server, title="Call", permissions={"canView": ["bob"]})
        async with server.client(make_token("owner")) as api:
            version = await api.post(f"{NOTES}/{note['id']}/versions", json={"label": "v"})
            assert version.status_code == 201, version.text
            await eventually(
                lambda: _async(receiver.of_type("version.created")), what="version.created"
            )
            assert (await api.delete(f"{NOTES}/{note['id']}")).status_code in (200, 204)

        wanted = ["note.created", "note.shared", "version.created", "note.deleted"]
        await eventually(
            lambda: _async(all(receiver.of_type(t) for t in wanted)),
            what=f"each of {wanted}",
        )
        assert receiver.forged == []
        for received in receiver.delivered:
            parsed = EventMessage.parse(json.dumps(received.body))
            assert parsed.id == received.webhook_id
            assert parsed.note_id == note["id"]
        created = receiver.of_type("note.created")[0]["data"]["note"]
        assert created["title"] == "Call"
        assert "bob" in created["permissions"]["canView"]
        assert receiver.of_type("note.shared")[0]["data"]["userIds"] == ["bob"]
        assert receiver.of_type("note.deleted")[0]["data"]["title"] == "Call"
        # each event once: ids are unique among the deliveries
        ids = [r.webhook_id for r in receiver.delivered]
        assert len(ids) == len(set(ids))


async def test_a_failing_receiver_gets_the_event_again_after_backoff(
    start_syncd: StartServer,
) -> None:
    async with webhook_receiver(fail_first=3) as receiver:
        server = await start_syncd(env=webhook_env(receiver, SYNCD_WEBHOOK_EVENTS="note.created"))
        note = await create_note(server, title="Retry me")
        delivered = await eventually(
            lambda: _async(receiver.delivered), what="the delivery after three 500s"
        )
        attempts = [r for r in receiver.requests if r.webhook_id == delivered[0].webhook_id]
        assert [r.status for r in attempts] == [500, 500, 500, 204]
        assert delivered[0].body["noteId"] == note["id"]
        # the filter: note.created only
        assert {r.body["type"] for r in receiver.requests} == {"note.created"}
        async with server.client() as api:
            text = (await api.get("/metrics")).text
        assert _metric(text, 'type="note.created"', 'outcome="retried"') == 3
        assert _metric(text, 'type="note.created"', 'outcome="delivered"') == 1


async def test_a_receiver_that_never_answers_2xx_is_given_up_and_logged(
    start_syncd: StartServer,
) -> None:
    async with webhook_receiver(fail_first=100) as receiver:
        server = await start_syncd(
            env=webhook_env(
                receiver, SYNCD_WEBHOOK_EVENTS="note.created", SYNCD_WEBHOOK_ATTEMPTS="2"
            )
        )
        await create_note(server)

        async def failed() -> float:
            async with server.client() as api:
                return _metric((await api.get("/metrics")).text, 'outcome="failed"')

        await eventually(failed, what="the final failure counted")
        assert len(receiver.requests) == 2
        assert "failed for good after 2 attempts" in server.log_tail(200)


async def test_a_receiver_that_hangs_past_the_timeout_is_a_failed_attempt_retried(
    start_syncd: StartServer,
) -> None:
    """`SYNCD_WEBHOOK_TIMEOUT`: a receiver that never answers (it hangs until the test
    ends) costs one attempt each time, logged as a timeout, and the job retries it."""
    async with webhook_receiver(hang_first=100) as receiver:
        server = await start_syncd(
            env=webhook_env(
                receiver,
                SYNCD_WEBHOOK_EVENTS="note.created",
                SYNCD_WEBHOOK_ATTEMPTS="2",
                SYNCD_WEBHOOK_TIMEOUT="0.5",
            )
        )
        note = await create_note(server)
        service = make_token("crm", roles=["service"])

        async def finished() -> dict[str, Any] | None:
            async with server.client(service) as api:
                (endpoint,) = (await api.get("/api/webhooks")).json()["endpoints"]
                log = await api.get(f"/api/webhooks/{endpoint['id']}/deliveries")
            entries = log.json()["deliveries"]
            return entries[0] if entries and entries[0]["status"] != "pending" else None

        entry = await eventually(finished, timeout=30, what="the delivery given up")
        assert entry["noteId"] == note["id"]
        assert (entry["status"], entry["attempts"]) == ("failed", 2)
        assert entry["lastResponseCode"] is None
        assert "Timeout" in entry["error"], entry["error"]
        # both attempts reached the receiver, the same event each time; none was answered
        assert receiver.hung == [entry["eventId"]] * 2
        assert receiver.requests == []
        async with server.client() as api:
            text = (await api.get("/metrics")).text
        assert _metric(text, 'type="note.created"', 'outcome="retried"') == 1
        assert _metric(text, 'type="note.created"', 'outcome="failed"') == 1


async def test_note_updated_is_debounced_per_note(start_syncd: StartServer) -> None:
    async with webhook_receiver() as receiver:
        server = await start_syncd(
            env=webhook_env(
                receiver, SYNCD_WEBHOOK_DEBOUNCE="1", SYNCD_WEBHOOK_EVENTS="note.updated"
            )
        )
        first = await create_note(server, title="One")
        second = await create_note(server, title="Two")
        async with server.client(make_token("owner")) as api:
            for n in range(3):
                for note in (first, second):
                    put = await api.put(f"{NOTES}/{note['id']}", json={"title": f"t{n}"})
                    assert put.status_code == 200, put.text
        await eventually(
            lambda: _async(len(receiver.of_type("note.updated")) >= 2), what="two note.updated"
        )
        updates = receiver.of_type("note.updated")
        # one per note, carrying the latest row
        assert sorted(u["noteId"] for u in updates) == sorted([first["id"], second["id"]])
        assert {u["data"]["note"]["title"] for u in updates} == {"t2"}


async def _async(value: object) -> object:
    return value


def _metric(text: str, *labels: str) -> float:
    """The sum of `syncd_webhook_deliveries_total` over the series with all `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("syncd_webhook_deliveries_total{") and all(
            label in line for label in labels
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_content_typed_by_a_client_is_sent_sanitised_when_it_leaves(
    start_syncd: StartServer, node: NodeYjs
) -> None:
    """A long debounce: the checkpoint of the last client leaving sends the pending
    `note.updated` at once, and its content is the safe content (a client's `javascript:`
    link has no href)."""
    async with webhook_receiver() as receiver:
        server = await start_syncd(
            env=webhook_env(
                receiver,
                SYNCD_WEBHOOK_DEBOUNCE="600",
                SYNCD_WEBHOOK_EVENTS="note.updated,session.started,session.ended",
            )
        )
        note = await create_note(server)
        editor = await node.connect(
            "e", url=server.ws_url, room=note["id"], token=make_token("owner"), wait_synced=True
        )
        link = {"type": "link", "attrs": {"href": "javascript:alert(1)"}}
        await editor.pm_set(
            {
                "type": "doc",
                "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "intro"}]},
                    {
                        "type": "paragraph",
                        "content": [{"type": "text", "text": "click", "marks": [link]}],
                    },
                ],
            }
        )
        await editor.disconnect()

        async def sent() -> list[dict[str, Any]]:
            return receiver.of_type("note.updated")

        updated = (await eventually(sent, what="note.updated when the client left"))[0]["data"]
        assert updated["text"] == "intro\nclick"
        assert updated["content"]["type"] == "doc"
        assert "javascript" not in json.dumps(updated)

        # `session.ended` is its own delivery, which may still be on its way when
        # `note.updated` has arrived: wait for it rather than read the log once.
        async def ended() -> list[dict[str, Any]]:
            return receiver.of_type("session.ended")

        await eventually(ended, what="session.ended when the client left")
        types = [r.body["type"] for r in receiver.delivered]
        assert types[0] == "session.started"
