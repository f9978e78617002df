"""Webhook endpoints registered over REST, on a scaled syncd (Postgres, Redis, SAQ jobs):
roles and validation, signatures checked by the `standardwebhooks` verifier (also across
a secret rotation), the test event, the delivery log and replay, automatic disabling with
a notification, and delivery in order per note. The receiver is a real HTTP server."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, make_token
from tests.support.webhook_receiver import Receiver, webhook_receiver

HOOKS = "/api/webhooks"
NOTES = "/api/collaborative-notes"
#: retries a fraction of a second apart, debounced note.updated quickly
FAST = {
    "SYNCD_WEBHOOK_DEBOUNCE": "0.3",
    "SYNCD_JOB_RETRY_BASE": "0.2",
    "SYNCD_JOB_RETRY_MAX": "0.5",
}
ADMIN = make_token("crm", roles=["service"])


async def _register(server: SyncdProcess, receiver: Receiver, *events: str) -> dict[str, Any]:
    """Register `receiver` for `events`; it verifies with the secret given back."""
    async with server.client(ADMIN) as api:
        created = await api.post(HOOKS, json={"url": receiver.url, "events": list(events)})
    assert created.status_code == 201, created.text
    endpoint = created.json()
    receiver.secrets[:] = [endpoint["secret"]]
    return endpoint


async def _deliveries(server: SyncdProcess, endpoint_id: str, **query: Any) -> dict[str, Any]:
    async with server.client(ADMIN) as api:
        response = await api.get(f"{HOOKS}/{endpoint_id}/deliveries", params=query)
    assert response.status_code == 200, response.text
    return response.json()


async def _value(value: object) -> object:
    return value


async def _job_completes(server: SyncdProcess, job_id: str, what: str) -> dict[str, Any]:
    """`GET /api/jobs/:id` of a job id an endpoint answered, until the job is complete."""

    async def complete() -> dict[str, Any] | None:
        async with server.client(ADMIN) as api:
            response = await api.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job = response.json()
        return job if job["status"] == "complete" else None

    job = await eventually(complete, what=what)
    assert (job["id"], job["function"]) == (job_id, "deliver_webhook")
    return job


async def test_only_service_or_admin_manage_endpoints_and_bad_input_is_422(
    start_scaled: StartServer,
) -> None:
    server = await start_scaled(env=FAST)
    body = {"url": "https://crm.example/hooks", "events": ["note.created"], "description": "CRM"}
    async with server.client(make_token("alice")) as plain:
        assert (await plain.post(HOOKS, json=body)).status_code == 403
        assert (await plain.get(HOOKS)).status_code == 403
    async with server.client(make_token("root", roles=["admin"])) as api:
        for bad in (
            {**body, "url": "ftp://crm.example/hooks"},
            {**body, "url": "not a url at all"},
            {**body, "url": "https://crm.example/has space"},
            {**body, "events": ["note.exploded"]},
            {**body, "events": []},
        ):
            refused = await api.post(HOOKS, json=bad)
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["error"]["code"] == "invalid"

        created = await api.post(HOOKS, json=body)
        assert created.status_code == 201, created.text
        endpoint = created.json()
        assert endpoint["secret"].startswith("whsec_")
        assert endpoint["createdBy"] == "root"
        assert (endpoint["enabled"], endpoint["source"]) == (True, "api")
        one = f"{HOOKS}/{endpoint['id']}"

        listed = (await api.get(HOOKS)).json()["endpoints"]
        assert [e["id"] for e in listed] == [endpoint["id"]]
        assert "secret" not in listed[0]  # shown once, at creation
        fetched = (await api.get(one)).json()
        assert fetched["url"] == body["url"] and "secret" not in fetched

        changed = await api.patch(
            one, json={"events": ["note.deleted", "note.created"], "description": "audit"}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["events"] == ["note.deleted", "note.created"]
        assert changed.json()["description"] == "audit"
        assert (await api.patch(one, json={"url": "javascript:alert(1)"})).status_code == 422
        assert (await api.patch(one, json={"enabled": False})).json()["enabled"] is False

        async with server.client(make_token("alice")) as plain:
            assert (await plain.get(one)).status_code == 403
            assert (await plain.delete(one)).status_code == 403
            assert (await plain.post(one + "/rotate-secret")).status_code == 403

        assert (await api.delete(one)).status_code == 204
        assert (await api.get(one)).status_code == 404
        assert (await api.delete(one)).status_code == 404


async def test_events_are_signed_and_both_secrets_verify_during_a_rotation(
    start_scaled: StartServer,
) -> None:
    async with webhook_receiver() as receiver:
        server = await start_scaled(env=FAST)
        endpoint = await _register(server, receiver, "note.created")
        first = await create_note(server, title="Before rotation")
        await eventually(lambda: _value(receiver.delivered), what="note.created")
        before = receiver.delivered[0]
        assert before.body["noteId"] == first["id"]
        assert before.verified_with == (0,)

        async with server.client(ADMIN) as api:
            rotated = await api.post(f"{HOOKS}/{endpoint['id']}/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret.startswith("whsec_") and new_secret != endpoint["secret"]
        grace_end = datetime.fromisoformat(rotated.json()["previousSecretExpiresAt"])
        assert grace_end > datetime.fromisoformat(rotated.json()["updatedAt"])
        # the receiver knows both now: each delivery must verify with each of them
        receiver.secrets[:] = [endpoint["secret"], new_secret]

        second = await create_note(server, title="During grace")
        await eventually(lambda: _value(len(receiver.delivered) == 2), what="the next event")
        after = receiver.delivered[1]
        assert after.body["noteId"] == second["id"]
        assert after.verified_with == (0, 1)

        # a receiver that has switched to the new secret only verifies it as well
        receiver.secrets[:] = [new_secret]
        async with server.client(ADMIN) as api:
            sent = await api.post(f"{HOOKS}/{endpoint['id']}/test")
        assert sent.status_code == 201, sent.text
        test = await eventually(
            lambda: _value([r for r in receiver.delivered if r.body["type"] == "webhook.test"]),
            what="webhook.test",
        )
        assert test[0].body["data"]["endpointId"] == endpoint["id"]
        assert test[0].webhook_id == sent.json()["eventId"]
        # the queued job's id comes back, and the jobs API knows it
        await _job_completes(server, sent.json()["jobId"], "the test event's job")
        assert receiver.forged == []


async def test_the_delivery_log_shows_retries_and_a_replay_sends_the_same_event(
    start_scaled: StartServer,
) -> None:
    async with webhook_receiver(fail_first=3) as receiver:
        server = await start_scaled(env=FAST)
        endpoint = await _register(server, receiver, "note.created")
        note = await create_note(server, title="Flaky receiver")
        delivered = await eventually(
            lambda: _value(receiver.delivered), what="the delivery after three 500s"
        )
        event_id = delivered[0].webhook_id
        assert [r.status for r in receiver.requests] == [500, 500, 500, 204]

        async def succeeded() -> list[dict[str, Any]]:
            log = (await _deliveries(server, endpoint["id"]))["deliveries"]
            return log if log and log[0]["status"] == "succeeded" else []

        (entry,) = await eventually(succeeded, what="the log entry succeeded")
        assert entry["eventId"] == event_id
        assert entry["eventType"] == "note.created"
        assert entry["noteId"] == note["id"]
        assert (entry["attempts"], entry["lastResponseCode"]) == (4, 204)
        assert isinstance(entry["latencyMs"], int) and entry["latencyMs"] >= 0
        assert entry["error"] is None and entry["replayOf"] is None
        created_at = datetime.fromisoformat(entry["createdAt"])
        assert created_at <= datetime.fromisoformat(entry["lastAttemptAt"])
        assert entry["finishedAt"] == entry["lastAttemptAt"]

        async with server.client(ADMIN) as api:
            replay = await api.post(f"{HOOKS}/{endpoint['id']}/deliveries/{entry['id']}/replay")
            assert replay.status_code == 201, replay.text
            missing = await api.post(f"{HOOKS}/{endpoint['id']}/deliveries/999999/replay")
            assert missing.status_code == 404
        again = replay.json()
        assert (again["eventId"], again["replayOf"]) == (event_id, entry["id"])
        await _job_completes(server, again["jobId"], "the replay's job")
        await eventually(lambda: _value(len(receiver.delivered) == 2), what="the replayed delivery")
        assert receiver.delivered[1].webhook_id == event_id
        assert receiver.delivered[1].body == receiver.delivered[0].body

        async def replay_done() -> dict[str, Any]:
            log = await _deliveries(server, endpoint["id"])
            return log if log["deliveries"][0]["status"] == "succeeded" else {}

        log = await eventually(replay_done, what="the replay logged")
        # newest first: the replay, then the original
        assert [d["id"] for d in log["deliveries"]] == [again["id"], entry["id"]]
        assert log["deliveries"][0]["attempts"] == 1
        # paging: one per page, the cursor leads to the older one
        page = await _deliveries(server, endpoint["id"], limit=1)
        assert [d["id"] for d in page["deliveries"]] == [again["id"]]
        rest = await _deliveries(server, endpoint["id"], limit=1, cursor=page["nextCursor"])
        assert [d["id"] for d in rest["deliveries"]] == [entry["id"]]
        assert rest["nextCursor"] is None


async def test_a_failure_streak_disables_the_endpoint_and_notifies_its_admins(
    start_scaled: StartServer,
) -> None:
    """Told: the service that registered the endpoint, and every user with the role
    `admin`, here one who only ever used the admin REST API (no socket, no e-mail)."""
    env = {**FAST, "SYNCD_WEBHOOK_ATTEMPTS": "1", "SYNCD_WEBHOOK_DISABLE_AFTER": "3"}
    boss = make_token("boss", roles=["admin"])
    async with webhook_receiver(fail_first=100) as down, webhook_receiver() as up:
        server = await start_scaled(env=env)
        broken = await _register(server, down, "note.created")
        async with server.client(boss) as api:
            assert (await api.get(HOOKS)).status_code == 200
        for n in range(3):
            await create_note(server, title=f"n{n}")
            # one at a time: each failure counts toward the streak in turn
            await eventually(lambda n=n: _value(len(down.requests) == n + 1), what=f"try {n}")

        async def disabled() -> dict[str, Any] | None:
            async with server.client(ADMIN) as api:
                current = (await api.get(f"{HOOKS}/{broken['id']}")).json()
            return current if not current["enabled"] else None

        endpoint = await eventually(disabled, what="the endpoint disabled")
        assert endpoint["failureStreak"] == 3
        assert "3 deliveries in a row failed" in endpoint["disabledReason"]
        assert endpoint["disabledAt"] is not None
        assert "disabled" in server.log_tail(400)

        async def notified() -> list[dict[str, Any]]:
            async with server.client(ADMIN) as api:
                listed = (await api.get("/api/notifications")).json()["notifications"]
            return [n for n in listed if n["type"] == "webhook_disabled"]

        (notice,) = await eventually(notified, what="the admin's notification")
        assert notice["data"]["endpointId"] == broken["id"]
        assert broken["url"] in notice["title"]
        async with server.client(boss) as api:
            listed = (await api.get("/api/notifications")).json()["notifications"]
        assert [(n["type"], n["data"]["endpointId"]) for n in listed] == [
            ("webhook_disabled", broken["id"])
        ]
        async with server.client(make_token("owner")) as api:  # not an admin: not told
            assert (await api.get("/api/notifications")).json()["notifications"] == []

        # a disabled endpoint gets nothing: an event that reaches another endpoint is not
        # even logged for it
        await _register(server, up, "note.created")
        later = await create_note(server, title="after disabling")
        await eventually(lambda: _value(up.delivered), what="the other endpoint's event")
        assert up.delivered[0].body["noteId"] == later["id"]
        log = (await _deliveries(server, broken["id"]))["deliveries"]
        assert len(log) == 3 and all(d["status"] == "failed" for d in log)
        assert later["id"] not in {d["noteId"] for d in log}
        assert len(down.requests) == 3
        async with server.client(ADMIN) as api:
            assert (await api.post(f"{HOOKS}/{broken['id']}/test")).status_code == 409
            enabled = await api.patch(f"{HOOKS}/{broken['id']}", json={"enabled": True})
        assert enabled.json()["enabled"] is True
        assert (enabled.json()["failureStreak"], enabled.json()["disabledReason"]) == (0, None)


async def test_a_notes_events_arrive_in_order_behind_a_failing_one(
    start_scaled: StartServer,
) -> None:
    def first_created_fails(body: dict[str, Any], attempt: int) -> bool:
        return (
            body["type"] == "note.created"
            and body["data"]["note"]["title"] == "slow"
            and (attempt <= 3)
        )

    async with webhook_receiver(fail_when=first_created_fails) as receiver:
        server = await start_scaled(env=FAST)
        await _register(
            server, receiver, "note.created", "version.created", "note.permissions_changed"
        )
        note = await create_note(server, title="slow")
        other = await create_note(server, title="other")
        async with server.client(make_token("owner")) as api:
            for label in ("one", "two"):
                made = await api.post(f"{NOTES}/{note['id']}/versions", json={"label": label})
                assert made.status_code == 201, made.text
            put = await api.put(f"{NOTES}/{note['id']}", json={"permissions": {"canView": ["x"]}})
            assert put.status_code == 200, put.text

        def of_note() -> list[Any]:
            return [r for r in receiver.requests if r.body["noteId"] == note["id"]]

        await eventually(
            lambda: _value(len([r for r in of_note() if r.status < 300]) == 4),
            timeout=30,
            what="the note's four events",
        )
        sent = [(r.body["type"], r.status) for r in of_note()]
        # every later event waited until the note.created had succeeded
        assert sent[:4] == [("note.created", 500)] * 3 + [("note.created", 204)], sent
        later = [r.body for r in of_note()[4:]]
        assert [b["type"] for b in later] == [
            "version.created",
            "version.created",
            "note.permissions_changed",
        ]
        assert [b["data"]["version"] for b in later[:2]] == sorted(
            b["data"]["version"] for b in later[:2]
        )
        # another note's event was not held up by it
        order = [(r.body["noteId"], r.status) for r in receiver.requests]
        assert order.index((other["id"], 204)) < order.index((note["id"], 204))
        assert receiver.forged == []


async def test_configured_urls_are_read_only_endpoints(start_syncd: StartServer) -> None:
    """SYNCD_WEBHOOK_URLS (embedded, SQLite): listed as `env` endpoints with a delivery
    log; only `enabled` changes over REST."""
    async with webhook_receiver() as receiver:
        server = await start_syncd(
            env={
                **FAST,
                "SYNCD_WEBHOOK_URLS": receiver.url,
                "SYNCD_WEBHOOK_SECRET": receiver.secrets[0],
                "SYNCD_WEBHOOK_EVENTS": "note.created",
            }
        )
        async with server.client(ADMIN) as api:
            (endpoint,) = (await api.get(HOOKS)).json()["endpoints"]
            assert (endpoint["source"], endpoint["url"]) == ("env", receiver.url)
            assert endpoint["events"] == ["note.created"]
            one = f"{HOOKS}/{endpoint['id']}"
            assert (await api.patch(one, json={"description": "x"})).status_code == 409
            assert (await api.delete(one)).status_code == 409
            assert (await api.post(one + "/rotate-secret")).status_code == 409
        note = await create_note(server)
        await eventually(lambda: _value(receiver.delivered), what="note.created")

        async def logged() -> list[dict[str, Any]]:
            log = (await _deliveries(server, endpoint["id"]))["deliveries"]
            return [d for d in log if d["status"] == "succeeded"]

        (entry,) = await eventually(logged, what="the env endpoint's log")
        assert entry["noteId"] == note["id"]
