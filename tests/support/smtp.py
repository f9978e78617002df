"""A real SMTP server for tests (aiosmtpd), started and stopped on demand on one port."""

from __future__ import annotations

import asyncio
import threading
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._arrived:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait(self, count: int, timeout: float) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.messages) >= count, timeout)


class SmtpServer:
    """aiosmtpd on 127.0.0.1:`port`; `start()` / `stop()` can repeat (outage tests)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = _Inbox()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def wait_for(self, count: int = 1, timeout: float = 15.0) -> list[Message]:
        """The messages received, once there are at least `count` (bounded by `timeout`)."""
        if not await asyncio.to_thread(self.inbox.wait, count, timeout):
            raise AssertionError(
                f"{len(self.inbox.messages)} e-mails arrived within {timeout}s, wanted {count}"
            )
        return list(self.inbox.messages)
