"""The outbox to the broker: the one task that publishes to RabbitMQ.

It holds one robust aio-pika connection (reconnects with backoff by itself) and a channel
with publisher confirms. While this instance holds the publisher lease, it reads the oldest
messages of the outbox, publishes them one after the other to the durable topic exchange
(routing key = event type, persistent, `mandatory` so an unroutable one comes back and is
counted) and removes each batch only once the broker confirmed it. One message in flight
at a time keeps the order without relying on the client library's pipelining; measured on
the local broker it is far above the rate of note events (README "RabbitMQ").

A broker that is down or goes away is a degraded state: the backlog waits in the outbox
(its depth in `/readyz` and `syncd_amqp_outbox_depth`), and drains in order on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Self

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustConnection

from syncd import metrics
from syncd.services.amqp.lease import LEASE_TTL, Lease
from syncd.services.amqp.outbox import Outbox
from syncd.settings import AmqpSettings
from syncd.storage import OutboxRow

log = logging.getLogger(__name__)

#: messages read from the outbox per round
BATCH = 100
#: a publish (send + confirm) that takes longer is a broker in trouble: retry later
PUBLISH_TIMEOUT = 10.0
#: renew the lease this often while publishing (a third of its TTL)
RENEW_EVERY = LEASE_TTL / 3


def amqp_message(row: OutboxRow) -> aio_pika.Message:
    """The properties a consumer expects: dedupe by `message_id`, route by `type`."""
    return aio_pika.Message(
        row.body.encode(),
        message_id=row.event_id,
        type=row.event_type,
        timestamp=row.created_at,
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        app_id="syncd",
    )


class OutboxRelay:
    """An async context manager: runs the publishing task while entered."""

    def __init__(
        self,
        settings: AmqpSettings,
        outbox: Outbox,
        lease: Lease,
        *,
        name: str = "syncd",
        idle: float = 1.0,
    ) -> None:
        assert settings.url is not None
        self._settings = settings
        self._outbox = outbox
        self._lease = lease
        self._name = name
        #: how long an idle relay waits before it looks at the outbox (and its lease) again
        self._idle = idle
        self._wake = asyncio.Event()
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._task: asyncio.Task[None] | None = None
        self._publishing = False
        self._depth = 0
        self._failing: str | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="amqp:relay")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):  # let another instance take over at once
            await self._lease.release()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        metrics.AMQP_CONNECTED.set(0)

    def wake(self) -> None:
        """A message was added here: publish it now rather than at the next look."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        conn = self._connection
        return conn is not None and not conn.is_closed and conn.connected.is_set()

    async def status(self) -> dict[str, Any]:
        """What `/readyz` and `/api/queue-stats` show."""
        try:
            self._depth = await self._outbox.depth()
            depth: int | None = self._depth
        except Exception:
            log.exception("reading the AMQP outbox depth failed")
            metrics.ERRORS.labels("amqp").inc()
            depth = None
        return {
            "connected": self.connected,
            "publisher": self._publishing,
            "outboxDepth": depth,
            "exchange": self._settings.exchange,
            "error": self._failing,
        }

    # -- the task ------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._round()
                if self._failing is not None:
                    log.warning("AMQP publishing resumed (%s)", self._settings.safe_url)
                    self._failing = None
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}"[:300]
                if self._failing is None:  # once per outage, not once per retry
                    log.warning(
                        "AMQP broker %s unavailable, messages wait in the outbox: %s",
                        self._settings.safe_url,
                        why,
                    )
                self._failing = why
                metrics.ERRORS.labels("amqp").inc()
                # let an instance that reaches the broker publish meanwhile (with the broker
                # down for all, the lease just passes around between retries)
                if self._publishing:
                    self._publishing = False
                    with contextlib.suppress(Exception):
                        await self._lease.release()
                metrics.AMQP_CONNECTED.set(1 if self.connected else 0)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _round(self) -> None:
        # every instance keeps its connection (so `/readyz` tells, and a take-over is
        # quick); only the lease holder publishes
        exchange = await self._ensure_exchange()
        if not await self._lease.hold():
            self._publishing = False
            await self._rest()
            return
        self._publishing = True
        batch = await self._outbox.head(BATCH)
        if not batch:
            self._set_depth(0)
            await self._rest()
            return
        done: list[Any] = []
        renewed = time.monotonic()
        try:
            for key, row in batch:
                if time.monotonic() - renewed > RENEW_EVERY:
                    if not await self._lease.hold():  # taken over: the new holder goes on
                        self._publishing = False
                        return
                    renewed = time.monotonic()
                metrics.AMQP_PUBLISHED.inc()
                await exchange.publish(
                    amqp_message(row),
                    routing_key=row.event_type,
                    mandatory=True,
                    timeout=PUBLISH_TIMEOUT,
                )
                metrics.AMQP_CONFIRMED.inc()
                done.append(key)
        finally:
            if done:
                await self._outbox.remove(done)
                self._set_depth(max(0, self._depth - len(done)))

    async def _rest(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._idle):
                await self._wake.wait()
        self._wake.clear()
        self._set_depth(await self._outbox.depth())

    def _set_depth(self, depth: int) -> None:
        self._depth = depth
        metrics.AMQP_OUTBOX_DEPTH.set(depth)

    async def _ensure_exchange(self) -> AbstractExchange:
        if self._exchange is not None:
            return self._exchange
        if self._connection is None:
            assert self._settings.url is not None
            connection = await aio_pika.connect_robust(
                self._settings.url,
                timeout=10,
                reconnect_interval=1,
                client_properties={"connection_name": self._name},
            )
            connection.reconnect_callbacks.add(self._reconnected)
            connection.close_callbacks.add(self._lost)
            self._connection = connection
            metrics.AMQP_CONNECTED.set(1)
            log.info("AMQP connected to %s", self._settings.safe_url)
        channel = await self._connection.channel(publisher_confirms=True)
        channel.return_callbacks.add(self._returned)
        # a robust channel declares it again after a reconnect
        self._exchange = await channel.declare_exchange(
            self._settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        return self._exchange

    def _reconnected(self, *args: object) -> None:
        metrics.AMQP_RECONNECTS.inc()
        metrics.AMQP_CONNECTED.set(1)
        log.warning("AMQP reconnected to %s", self._settings.safe_url)
        self.wake()

    def _lost(self, *args: object) -> None:
        metrics.AMQP_CONNECTED.set(0)

    def _returned(self, *args: object) -> None:
        # confirmed all the same: no queue is bound for its routing key, which is the
        # consumers' choice, not a failure of syncd's
        metrics.AMQP_RETURNED.inc()
