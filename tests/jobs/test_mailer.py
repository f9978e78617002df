"""The mailer against a real SMTP server (aiosmtpd), and the e-mail job riding out an
SMTP outage with retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.jobs.backend import JobStatus
from syncd.jobs.memory import MemoryBackend
from syncd.jobs.policy import JobSpec, RetryPolicy
from syncd.jobs.worker import JobRegistry, Jobs, Worker
from syncd.services.mailer import Mailer, parse_smtp_url
from tests.support.server import free_port
from tests.support.smtp import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


async def test_the_mailer_delivers_to_a_real_smtp_server(smtp: SmtpServer) -> None:
    mailer = Mailer(smtp.url, "syncd <no-reply@example.com>")
    await mailer.send("ann@example.com", "You were mentioned", "in “Launch”")
    [message] = await smtp.wait_for(1)
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "You were mentioned"
    assert message["From"] == "syncd <no-reply@example.com>"
    assert "in “Launch”" in message.get_payload(decode=True).decode()
    assert smtp.inbox.envelopes == [("no-reply@example.com", ["ann@example.com"])]


async def test_an_html_alternative_and_a_folded_subject(smtp: SmtpServer) -> None:
    mailer = Mailer(smtp.url, "syncd@example.com")
    await mailer.send("ann@example.com", "Two\r\nBcc: x@example.com", "plain", "<p>rich</p>")
    [message] = await smtp.wait_for(1)
    assert message["Subject"] == "Two Bcc: x@example.com" and message["Bcc"] is None
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert message.get_body(("html",)).get_content().strip() == "<p>rich</p>"
    assert smtp.inbox.envelopes == [("syncd@example.com", ["ann@example.com"])]


def test_smtp_urls() -> None:
    plain = parse_smtp_url("smtp://mail.example.com")
    assert (plain.port, plain.use_tls, plain.start_tls) == (25, False, None)
    secure = parse_smtp_url("smtps://u%40x:p%3Aw@mail.example.com")
    assert (secure.port, secure.use_tls, secure.username, secure.password) == (
        465,
        True,
        "u@x",
        "p:w",
    )
    assert parse_smtp_url("smtp+starttls://h:2525").start_tls is True
    with pytest.raises(ValueError):
        parse_smtp_url("http://h")


async def test_an_smtp_outage_is_retried_and_recovered() -> None:
    smtp = SmtpServer(free_port())  # not listening yet: the outage
    mailer = Mailer(smtp.url, "syncd@example.com", timeout=2)
    attempts: list[int] = []

    async def send_email(to: str, subject: str) -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 2:
            smtp.start()  # the server comes back while the job waits for its retry
        await mailer.send(to, subject, "body")

    registry = JobRegistry()
    policy = RetryPolicy(attempts=5, base_delay=0.1, max_delay=1.0)
    registry.add(JobSpec("send_email", send_email, retry=policy))
    jobs = Jobs(MemoryBackend(), registry, mode="embedded")
    try:
        job_id = await jobs.enqueue("send_email", to="bob@example.com", subject="Shared with you")
        async with Worker(jobs, poll_interval=0.02) as worker:
            await worker.drain(within=20)
        [message] = await smtp.wait_for(1)
    finally:
        smtp.stop()
    assert message["To"] == "bob@example.com" and message["Subject"] == "Shared with you"
    info = await jobs.info(job_id)
    assert info is not None and info.status is JobStatus.COMPLETE
    assert info.attempts == len(attempts) >= 2
    assert (await jobs.stats())["default"].retried == info.attempts - 1
