"""RabbitMQ (`RABBITMQ_URL`): every note event on a durable topic exchange.

`publisher` turns note events into catalogue messages (the webhooks' bodies) and appends
them to the durable `outbox`; `relay` publishes the outbox to the broker with publisher
confirms, from the one instance that holds the `lease`; `check` is the start-up check
that refuses a broker the server could never use.
"""

from syncd.services.amqp.check import BrokerUnusable, check_broker
from syncd.services.amqp.lease import Lease, RedisLease, SoleLease
from syncd.services.amqp.outbox import Outbox, StreamOutbox, TableOutbox
from syncd.services.amqp.publisher import AmqpPublisher
from syncd.services.amqp.relay import OutboxRelay, amqp_message

__all__ = [
    "AmqpPublisher",
    "BrokerUnusable",
    "Lease",
    "Outbox",
    "OutboxRelay",
    "RedisLease",
    "SoleLease",
    "StreamOutbox",
    "TableOutbox",
    "amqp_message",
    "check_broker",
]
