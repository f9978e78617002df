"""Notification e-mail from a real server to a real SMTP server (aiosmtpd): sent when the
user has an address and is not online, retried through an SMTP outage."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.collab_helpers import FAST, introduce, job_stats, notify
from tests.support.fixtures import StartServer, create_note
from tests.support.polling import eventually
from tests.support.server import free_port, make_token
from tests.support.smtp import SmtpServer
from tests.support.yjs_node import NodeYjs


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    yield server
    server.stop()


async def test_an_offline_user_gets_the_notification_by_email(
    start_syncd: StartServer, node: NodeYjs, smtp: SmtpServer
) -> None:
    smtp.start()
    server = await start_syncd(env={**FAST, "SMTP_URL": smtp.url, "SYNCD_MAIL_FROM": "crm@x.io"})
    await introduce(server, node, "gil", "gil@example.com")
    await create_note(server, title="Renewal", permissions={"canView": ["gil"]})
    [message] = await smtp.wait_for(1)
    assert message["To"] == "gil@example.com"
    assert message["Subject"] == "Owner shared “Renewal” with you"
    assert message["From"] == "crm@x.io"
    # Online (a socket open) means no e-mail: the socket gets it instead.
    online = await node.sio_connect("gil-2", server.http_url, token=make_token("gil"))
    [created] = await notify(server, ["gil"], "While you are here")
    await online.wait_sio_event("notification:new", contains={"id": created["id"]})
    async with server.client(make_token("ops", roles=("admin",))) as api:

        async def delivered() -> dict | None:
            body = (await api.get(f"/api/jobs/critical.deliver-{created['id']}")).json()
            return body if body.get("status") == "complete" else None

        job = await eventually(delivered, what="the delivery job")
    assert job["result"] == {"delivered": True, "emailQueued": False}
    assert len(smtp.inbox.messages) == 1


async def test_an_smtp_outage_is_retried_until_the_email_goes_out(
    start_syncd: StartServer, node: NodeYjs, smtp: SmtpServer
) -> None:
    env = {**FAST, "SMTP_URL": smtp.url, "SYNCD_JOB_RETRY_BASE": "0.2", "SYNCD_JOB_RETRY_MAX": "1"}
    server = await start_syncd(env=env)  # the SMTP server is down
    await introduce(server, node, "hal", "hal@example.com")
    await notify(server, ["hal"], "Contract signed")

    async def retried() -> int:
        return (await job_stats(server))["queues"]["default"]["retried"]

    await eventually(retried, what="a failed e-mail attempt being retried")
    smtp.start()
    [message] = await smtp.wait_for(1, timeout=20)
    assert message["To"] == "hal@example.com" and message["Subject"] == "Contract signed"

    async def completed() -> dict | None:
        queue = (await job_stats(server))["queues"]["default"]
        return queue if queue["complete"] == 1 else None

    queue = await eventually(completed, what="the e-mail job completing")
    assert queue["failed"] == 0 and queue["retried"] >= 1
