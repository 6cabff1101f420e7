"""The bridges' producer: a faststream Kafka broker with one publisher, to the inbound topic.

The same broker and publisher definitions generate the AsyncAPI document
(:mod:`awooop.ingress.bridges.asyncapi`). A publish returns once the broker acknowledged
the record (``acks="all"``); the app bounds that wait with its deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher

from awooop.contracts.records.inbound import InboundRecord
from awooop.contracts.registries.service_names import BRIDGES
from awooop.contracts.registries.topics import MAX_MESSAGE_BYTES, Topics
from awooop.infra.kafka.producer import BATCH_BYTES
from awooop.infra.settings import KafkaSettings

Publish = Callable[[bytes, bytes], Awaitable[None]]
"""``publish(key, value)``: returns once the broker acknowledged the record, raises if it
refused it."""

PUBLISHER_TITLE = "inbound"
PUBLISHER_DESCRIPTION = (
    "One inbound record per verified Telegram update, Slack event callback or Slack "
    "block_actions interaction; key `project_id:provider_event_id`."
)


def create_broker(kafka: KafkaSettings) -> KafkaBroker:
    """A producer-only broker (not connected). The embedded broker has no idempotent
    producer, so a produce retry can duplicate a record: ingress de-duplicates."""
    return KafkaBroker(
        kafka.bootstrap,
        client_id=f"awooop-{BRIDGES}",
        acks="all",
        enable_idempotence=False,
        max_batch_size=BATCH_BYTES,
        max_request_size=MAX_MESSAGE_BYTES,
        request_timeout_ms=kafka.request_timeout_ms,
        logger=None,
        description="The Kafka cluster of AwoooP (`AWOOOP_KAFKA_BOOTSTRAP`).",
    )


def inbound_publisher(broker: KafkaBroker) -> DefaultPublisher:
    """The broker's publisher to ``awooop.channel.inbound.v1``, documented with the
    :class:`InboundRecord` model."""
    return broker.publisher(
        Topics.CHANNEL_INBOUND.name,
        title=PUBLISHER_TITLE,
        description=PUBLISHER_DESCRIPTION,
        schema=InboundRecord,
        headers={"content-type": "application/json"},
    )


def publish_with(publisher: DefaultPublisher) -> Publish:
    """The :data:`Publish` function of a started broker's ``publisher``."""

    async def publish(key: bytes, value: bytes) -> None:
        await publisher.publish(value, key=key)

    return publish


@asynccontextmanager
async def kafka_publish(kafka: KafkaSettings) -> AsyncIterator[Publish]:
    """A started broker's :data:`Publish`; the broker stops (flushing what is in flight)
    when the block ends."""
    broker = create_broker(kafka)
    publisher = inbound_publisher(broker)
    await broker.start()
    try:
        yield publish_with(publisher)
    finally:
        await broker.stop()
