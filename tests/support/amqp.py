"""RabbitMQ for tests: the broker's URL, a consumer that collects what syncd publishes,
and a TCP proxy that cuts and restores syncd's connection to the broker (outages without
stopping the shared broker).

Each test gets an exchange of its own (`amqp_exchange`), deleted afterwards, so tests never
see each other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

AMQP_ENV = "SYNCD_TEST_AMQP_URL"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
#: bindings for every routing key syncd publishes, by its first word
ALL_EVENTS = ("note.#", "version.#", "session.#", "mention.#", "notification.#")


def amqp_url() -> str:
    return os.environ.get(AMQP_ENV) or DEFAULT_AMQP_URL


async def require_broker(url: str) -> None:
    """Fail (not skip) with a clear message when no broker answers."""
    try:
        connection = await aio_pika.connect(url, timeout=5)
    except Exception as exc:
        pytest.fail(
            f"no RabbitMQ at {url} ({type(exc).__name__}: {exc}); start one "
            f"(`rabbitmq-server -detached`, as .ci/run does) or set {AMQP_ENV}",
            pytrace=False,
        )
    await connection.close()


@dataclass
class Received:
    body: dict[str, Any]
    message_id: str | None
    type: str | None
    routing_key: str | None
    content_type: str | None
    delivery_mode: int | None
    timestamp: Any


@dataclass
class Consumer:
    """Messages of one queue bound to `note.#` (and whatever else was asked)."""

    messages: list[Received] = field(default_factory=list)

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [m.body for m in self.messages if m.body["type"] == type_]

    def unique(self) -> list[Received]:
        """Deduped by `message_id`, as the README tells consumers to, first copy kept."""
        seen: set[str | None] = set()
        out = []
        for m in self.messages:
            if m.message_id not in seen:
                seen.add(m.message_id)
                out.append(m)
        return out


@contextlib.asynccontextmanager
async def consumer(url: str, exchange: str, *bindings: str) -> AsyncIterator[Consumer]:
    """An exclusive queue bound to `exchange` with `bindings` (default `note.#`)."""
    got = Consumer()
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True)
        for key in bindings or ("note.#",):
            await queue.bind(ex, routing_key=key)

        async def on_message(message: AbstractIncomingMessage) -> None:
            async with message.process():
                got.messages.append(
                    Received(
                        body=json.loads(message.body),
                        message_id=message.message_id,
                        type=message.type,
                        routing_key=message.routing_key,
                        content_type=message.content_type,
                        delivery_mode=int(message.delivery_mode or 0),
                        timestamp=message.timestamp,
                    )
                )

        await queue.consume(on_message)
        yield got
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def fresh_exchange(url: str) -> AsyncIterator[str]:
    """A fresh exchange name for one test; the exchange is deleted afterwards."""
    await require_broker(url)
    name = f"syncd.test.{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            connection = await aio_pika.connect(url, timeout=5)
            async with connection:
                channel = await connection.channel()
                await channel.exchange_delete(name)


class TcpProxy:
    """127.0.0.1:<port> forwarding to the broker; `cut()` closes every connection and
    refuses new ones until `restore()`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self._open = True
        self.port = 0

    def url_for(self, url: str) -> str:
        parts = urlsplit(url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self._open = False
        for writer in list(self._pipes):
            writer.transport.abort()
        self._pipes.clear()

    def restore(self) -> None:
        self._open = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._pipes.update((writer, up_writer))
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._pipes.discard(w)
            w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.transport.abort()


@contextlib.asynccontextmanager
async def tcp_proxy(url: str) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


def amqp_env(url: str, exchange: str, **extra: str) -> dict[str, str]:
    return {"RABBITMQ_URL": url, "SYNCD_AMQP_EXCHANGE": exchange, **extra}


async def metric(server_url: str, name: str) -> float:
    """One unlabelled sample of `/metrics` (0 when absent)."""
    import httpx

    async with httpx.AsyncClient(base_url=server_url, timeout=5) as client:
        text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
