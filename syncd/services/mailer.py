"""E-mail over SMTP (aiosmtplib), configured by one URL.

`SMTP_URL`: `smtp://[user:password@]host[:port]` (port 25; STARTTLS when the server offers
it), `smtp+starttls://...` (port 587; STARTTLS required), `smtps://...` (port 465; TLS).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    #: None: upgrade when offered; True: required; False: never
    start_tls: bool | None


def parse_smtp_url(url: str) -> SmtpServer:
    parts = urlsplit(url)
    schemes = {
        "smtp": (25, False, None),
        "smtp+starttls": (587, False, True),
        "smtps": (465, True, False),
    }
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"SMTP_URL must look like smtp://host:port, got {url!r}")
    port, use_tls, start_tls = schemes[parts.scheme]
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=use_tls,
        start_tls=start_tls,
    )


class Mailer:
    """Sends one message per call; raises on any SMTP or connection failure (the job that
    calls it retries with backoff)."""

    def __init__(self, url: str, sender: str, *, timeout: float = 15.0) -> None:
        self.server = parse_smtp_url(url)
        self.sender = sender
        self._timeout = timeout

    async def send(self, to: str, subject: str, body: str, html: str | None = None) -> None:
        """`body`: the plain text; `html`: an HTML alternative of it (the message is then
        multipart/alternative, text first, as mail readers pick the last part they can
        show)."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        # a line break in a header value is refused by `email`: fold it, do not fail the job
        message["Subject"] = " ".join(subject.split())
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
        server = self.server
        await aiosmtplib.send(
            message,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.use_tls,
            start_tls=server.start_tls,
            timeout=self._timeout,
        )
