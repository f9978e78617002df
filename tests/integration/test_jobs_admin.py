"""The jobs admin over REST, on a real server (embedded and scaled) with a real SMTP server
that is down, then up: the job id a REST call returns, the failed job found in the list,
retried, and a job waiting for its retry cancelled. Times are ISO 8601."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.integration.collab_helpers import FAST, introduce
from tests.support.fixtures import StartServer, start_scaled  # noqa: F401
from tests.support.polling import eventually
from tests.support.server import SyncdProcess, free_port, make_token
from tests.support.smtp import SmtpServer
from tests.support.yjs_node import NodeYjs

OPS = make_token("ops", roles=("admin",))
ISO_FIELDS = ("enqueuedAt", "startedAt", "finishedAt", "nextAttemptAt")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())  # not started: the mail server is down
    yield server
    server.stop()


@pytest.fixture(params=["embedded", "scaled"])
def start(
    request: pytest.FixtureRequest,
    start_syncd: StartServer,
    start_scaled: StartServer,  # noqa: F811
) -> StartServer:
    return start_syncd if request.param == "embedded" else start_scaled


def assert_iso_times(job: dict[str, Any]) -> None:
    for field in ISO_FIELDS:
        if job[field] is not None:
            assert datetime.fromisoformat(job[field]).utcoffset() is not None, (field, job)
    assert job["enqueuedAt"] is not None


async def job(server: SyncdProcess, job_id: str) -> dict[str, Any]:
    async with server.client(OPS) as api:
        response = await api.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_iso_times(body)
    return body


async def notify_one(server: SyncdProcess, user: str, title: str) -> tuple[str, str]:
    """A notification for `user` over REST: (notification id, delivery job id)."""
    async with server.client(make_token("crm", roles=("service",))) as api:
        response = await api.post("/api/notifications", json={"userId": user, "title": title})
    assert response.status_code == 201, response.text
    body = response.json()
    [created] = body["notifications"]
    assert body["jobIds"] == [f"critical.deliver-{created['id']}"]
    return created["id"], body["jobIds"][0]


async def test_a_failed_email_job_is_listed_retried_and_delivered(
    start: StartServer, node: NodeYjs, smtp: SmtpServer
) -> None:
    env = {
        **FAST,
        "SMTP_URL": smtp.url,
        "SYNCD_JOB_RETRY_BASE": "0.05",
        "SYNCD_JOB_RETRY_MAX": "0.1",
    }
    server = await start(env=env)
    await introduce(server, node, "ivy", "ivy@example.com")
    notification_id, delivery = await notify_one(server, "ivy", "Quote ready")

    async def delivered() -> dict[str, Any] | None:
        body = await job(server, delivery)
        return body if body["status"] == "complete" else None

    done = await eventually(delivered, what="the delivery job")
    assert done["result"] == {"delivered": True, "emailQueued": True}
    email = f"default.email-{notification_id}"

    async with server.client(OPS) as api:

        async def failed() -> list[dict[str, Any]] | None:
            response = await api.get("/api/jobs", params={"status": "failed", "queue": "default"})
            assert response.status_code == 200, response.text
            jobs: list[dict[str, Any]] = response.json()["jobs"]
            return jobs if any(j["id"] == email for j in jobs) else None

        [listed] = await eventually(failed, timeout=20, what="the e-mail job failed")
        assert (listed["function"], listed["attempts"], listed["maxAttempts"]) == (
            "send_email",
            8,
            8,
        )
        assert listed["error"] is not None and listed["finishedAt"] is not None
        assert_iso_times(listed)

        # one page at a time, newest first, until nextCursor is null
        whole = (await api.get("/api/jobs", params={"limit": 200})).json()
        assert whole["nextCursor"] is None
        ids = [j["id"] for j in whole["jobs"]]
        assert {delivery, email} <= set(ids)
        walked: list[str] = []
        params: dict[str, Any] = {"limit": 1}
        while True:
            page = (await api.get("/api/jobs", params=params)).json()
            walked += [j["id"] for j in page["jobs"]]
            if page["nextCursor"] is None:
                break
            params["cursor"] = page["nextCursor"]
        # periodic jobs may be added meanwhile: the walk holds every job listed before
        assert [i for i in walked if i in ids] == ids

        smtp.start()
        retried = await api.post(f"/api/jobs/{email}/retry")
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] != "failed"

        async def sent() -> bool:
            return (await job(server, email))["status"] == "complete"

        await eventually(sent, timeout=20, what="the retried e-mail job")
        [message] = await smtp.wait_for(1)
        assert message["To"] == "ivy@example.com" and message["Subject"] == "Quote ready"

        again = await api.post(f"/api/jobs/{email}/retry")
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
        assert (await api.post(f"/api/jobs/{email}/cancel")).status_code == 409
        for path in ("critical.unknown/retry", "critical.unknown/cancel", "not-a-job/retry"):
            assert (await api.post(f"/api/jobs/{path}")).status_code == 404, path
        for bad in ({"status": "lost"}, {"queue": "urgent"}, {"cursor": "bm90LWEtY3Vyc29y"}):
            assert (await api.get("/api/jobs", params=bad)).status_code == 422, bad

    async with server.client(make_token("ivy")) as user:
        assert (await user.get("/api/jobs")).status_code == 403
        assert (await user.post(f"/api/jobs/{email}/retry")).status_code == 403
        assert (await user.post(f"/api/jobs/{email}/cancel")).status_code == 403


async def test_a_job_waiting_for_its_retry_is_cancelled_then_retried(
    start_syncd: StartServer, node: NodeYjs, smtp: SmtpServer
) -> None:
    env = {**FAST, "SMTP_URL": smtp.url, "SYNCD_JOB_RETRY_BASE": "60", "SYNCD_JOB_RETRY_MAX": "60"}
    server = await start_syncd(env=env)
    await introduce(server, node, "jon", "jon@example.com")
    notification_id, _ = await notify_one(server, "jon", "Call back")
    email = f"default.email-{notification_id}"

    async def waiting() -> dict[str, Any] | None:
        async with server.client(OPS) as api:
            response = await api.get(f"/api/jobs/{email}")
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body["status"] == "scheduled" else None

    scheduled = await eventually(waiting, what="the e-mail job waiting for its retry")
    assert scheduled["attempts"] == 1 and scheduled["nextAttemptAt"] is not None
    async with server.client(OPS) as api:
        cancelled = await api.post(f"/api/jobs/{email}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        body = cancelled.json()
        assert (body["status"], body["error"], body["nextAttemptAt"]) == (
            "aborted",
            "cancelled by ops",
            None,
        )
        aborted = (await api.get("/api/jobs", params={"status": "aborted"})).json()["jobs"]
        assert [j["id"] for j in aborted] == [email]

        smtp.start()
        assert (await api.post(f"/api/jobs/{email}/retry")).status_code == 200

    async def sent() -> bool:
        return (await job(server, email))["status"] == "complete"

    await eventually(sent, timeout=20, what="the retried e-mail job")
    [message] = await smtp.wait_for(1)
    assert message["Subject"] == "Call back"
