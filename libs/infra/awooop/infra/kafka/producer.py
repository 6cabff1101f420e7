"""Producers and the partitioner every keyed send agrees with."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from awooop.contracts.registries.topics import MAX_MESSAGE_BYTES, MAX_RECORD_BYTES
from awooop.infra.settings import KafkaSettings

# A batch must hold at least one record of the maximum size plus its overhead (the
# default 16 KiB would hold only ~22 envelopes of 700 B), and never outgrow the topics'
# `max.message.bytes`, which a broker applies to a whole batch.
BATCH_BYTES = MAX_MESSAGE_BYTES

DLQ_REQUEST_BYTES = MAX_MESSAGE_BYTES
"""The largest DLQ record sent: a value at the record limit plus its headers. A larger
one is refused by the producer exactly as a broker's `max.message.bytes` would refuse
it (`MessageSizeTooLargeError`), and the DLQ writer sends it again without its value."""


def create_producer(
    settings: KafkaSettings,
    *,
    client_id: str = "awooop",
    max_request_size: int = 4 * MAX_RECORD_BYTES,
) -> AIOKafkaProducer:
    """A producer for explicit per-partition batches (not started)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,  # the embedded broker has no idempotent producer
        max_batch_size=BATCH_BYTES,
        max_request_size=max_request_size,
        linger_ms=0,
        request_timeout_ms=settings.request_timeout_ms,
    )


def partition_for(key: bytes, partitions: int) -> int:
    """aiokafka's default keyed partition: `(murmur2(key) & 0x7fffffff) % partitions`."""
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)
