"""A real HTTP receiver for webhook tests: a Starlette app served by uvicorn in the test's
event loop, verifying each request with the `standardwebhooks` verifier as a CRM back end
would, and answering 500 to the first `fail_first` requests of each event (or to those
`fail_when` picks), or not answering the first `hang_first` until the receiver closes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.polling import eventually
from tests.support.server import free_port

SECRET = "whsec_" + base64.b64encode(b"syncd-test-webhook-secret-32-byt").decode()


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]
    status: int
    #: indexes into `Receiver.secrets` of the secrets whose signature verified
    verified_with: tuple[int, ...] = ()


@dataclass
class Receiver:
    port: int
    fail_first: int = 0
    #: (body, attempt number of its event) -> answer 500
    fail_when: Callable[[dict[str, Any], int], bool] | None = None
    #: the receiver's copies of the endpoint's secrets (any one verifying is enough)
    secrets: list[str] = field(default_factory=lambda: [SECRET])
    #: every request, in arrival order (a failed attempt too)
    requests: list[Received] = field(default_factory=list)
    #: requests whose signature did not verify (should stay empty)
    forged: list[str] = field(default_factory=list)
    #: the first `hang_first` requests of each event get no answer until the receiver closes
    hang_first: int = 0
    #: webhook ids of the requests left hanging, in arrival order
    hung: list[str] = field(default_factory=list)
    _attempts: Counter[str] = field(default_factory=Counter)
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    @property
    def delivered(self) -> list[Received]:
        """Requests answered 2xx, in arrival order."""
        return [r for r in self.requests if r.status < 300]

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [r.body for r in self.delivered if r.body["type"] == type_]

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        headers = dict(request.headers)
        verified: list[int] = []
        body: Any = None
        errors: list[str] = []
        for index, secret in enumerate(self.secrets):
            try:
                body = Webhook(secret).verify(raw, headers)
                verified.append(index)
            except Exception as exc:
                errors.append(str(exc))
        if not verified:
            self.forged.append(f"{errors}: {raw[:200]!r}")
            return Response(status_code=400)
        webhook_id = request.headers["webhook-id"]
        self._attempts[webhook_id] += 1
        attempt = self._attempts[webhook_id]
        if attempt <= self.hang_first:  # longer than any sender's timeout: until closing
            self.hung.append(webhook_id)
            await self._closing.wait()
            return Response(status_code=503)
        failing = attempt <= self.fail_first or (
            self.fail_when is not None and self.fail_when(body, attempt)
        )
        status = 500 if failing else 204
        self.requests.append(Received(webhook_id, body, status, tuple(verified)))
        return Response(status_code=status)


@contextlib.asynccontextmanager
async def webhook_receiver(
    *,
    fail_first: int = 0,
    fail_when: Callable[[dict[str, Any], int], bool] | None = None,
    hang_first: int = 0,
) -> AsyncIterator[Receiver]:
    receiver = Receiver(free_port(), fail_first, fail_when, hang_first=hang_first)
    app = Starlette(routes=[Route("/hooks", receiver.handle, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=receiver.port, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await eventually(_async(lambda: server.started), timeout=10, what="the receiver")
        yield receiver
    finally:
        receiver._closing.set()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def webhook_env(receiver: Receiver, **extra: str) -> dict[str, str]:
    """The settings of a syncd that sends to `receiver`, retrying fast."""
    return {
        "SYNCD_WEBHOOK_URLS": receiver.url,
        "SYNCD_WEBHOOK_SECRET": SECRET,
        "SYNCD_WEBHOOK_DEBOUNCE": "0.5",
        "SYNCD_JOB_RETRY_BASE": "0.2",
        "SYNCD_JOB_RETRY_MAX": "1",
        **extra,
    }


def _async(check: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    async def wrapped() -> object:
        return check()

    return wrapped
