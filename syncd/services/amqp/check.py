"""The start-up check of `RABBITMQ_URL`: a server that could never publish refuses to
start (exit 2, one line) rather than fill its outbox quietly. A broker that goes away
later is a degraded state instead (`relay.py`)."""

from __future__ import annotations

import asyncio
import logging

import aio_pika

from syncd.settings import AmqpSettings

#: connecting (TCP, TLS, AMQP handshake and login) may take this long
CHECK_TIMEOUT = 10.0


class BrokerUnusable(Exception):
    """The broker refused or could not be reached; the message is the one line to print."""


async def check_broker(settings: AmqpSettings) -> None:
    """Connect once, declare the exchange (durable topic) and close, or raise
    `BrokerUnusable` saying why in one line."""
    assert settings.url is not None
    timeout = CHECK_TIMEOUT
    where = settings.safe_url
    # aiormq logs its own ERROR line (with the exception) before raising: the one line
    # the operator needs is ours
    quiet = logging.getLogger("aiormq")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        async with asyncio.timeout(timeout):
            connection = await aio_pika.connect(settings.url, timeout=timeout)
            try:
                channel = await connection.channel()
                await channel.declare_exchange(
                    settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True
                )
            finally:
                await connection.close()
    except TimeoutError:
        raise BrokerUnusable(f"RABBITMQ_URL {where}: no answer within {timeout:.0f} s") from None
    except Exception as exc:
        raise BrokerUnusable(f"RABBITMQ_URL {where}: {_reason(exc)}") from None
    finally:
        quiet.setLevel(level)


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc).strip() or repr(exc)
    if "ACCESS_REFUSED" in text or "Authentication" in name or "AuthenticationError" in text:
        return f"the broker refused the credentials ({name}: {text})"[:400]
    closed = [a for a in getattr(exc, "args", ()) if hasattr(a, "reply_text")]
    if closed:  # the broker closed the handshake and said why (e.g. an unknown vhost)
        text = f"{closed[0].reply_code} {closed[0].reply_text}"
    if "NOT_ALLOWED" in text or "vhost" in text.lower() or "Connection.OpenOk" in text:
        return f"the broker refused the virtual host ({name}: {text})"[:400]
    if isinstance(exc, ConnectionError | OSError):
        return f"cannot connect ({name}: {text})"[:400]
    return f"{name}: {text}"[:400]
