"""The broker epoch: one random id at offset 0 of `awooop.broker.epoch.v1`.

The embedded broker keeps everything in memory, and a production cluster
can be replaced too: either way every topic and committed offset is gone,
and nothing in the Kafka protocol says so (the embedded broker never answers
OFFSET_OUT_OF_RANGE). The first service to find the epoch topic empty writes
a new id; every service keeps the id it first saw in its own schema and
stops consuming when the broker's id differs (`E-BROKER-RESET`).
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka import admin as topic_admin
from awooop.infra.settings import KafkaSettings

EPOCH_TOPIC = Topics.BROKER_EPOCH.name
_EPOCH_TP = TopicPartition(EPOCH_TOPIC, 0)


async def _epoch_topic_exists(settings: KafkaSettings) -> bool:
    """One all-topics metadata request: it names topics and, unlike a fetch or a
    produce, never makes one."""
    admin = topic_admin.admin_client(settings)
    await admin.start()
    try:
        return EPOCH_TOPIC in await topic_admin.partition_counts(admin)
    finally:
        await admin.close()


async def _read_offset_zero(settings: KafkaSettings, wait_seconds: float) -> str | None:
    """The epoch id at offset 0, or None when the partition is empty or the topic missing.

    A fetch from a missing topic would auto-create it with the broker's partition
    count, so a new broker is asked first whether the topic exists.
    """
    if not await _epoch_topic_exists(settings):
        return None
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="none",
        request_timeout_ms=settings.request_timeout_ms,
    )
    await consumer.start()
    try:
        consumer.assign([_EPOCH_TP])
        consumer.seek(_EPOCH_TP, 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while loop.time() < deadline:
            batch = await consumer.getmany(_EPOCH_TP, timeout_ms=200, max_records=1)
            for record in batch.get(_EPOCH_TP, []):
                return bytes(record.value).decode()
            # The high watermark from a fetch response is right where
            # end_offsets() is not: 0 means the partition is empty.
            if consumer.highwater(_EPOCH_TP) == 0:
                return None
        raise TimeoutError(f"no answer from {EPOCH_TOPIC} within {wait_seconds}s")
    finally:
        await consumer.stop()


async def read_broker_epoch(
    settings: KafkaSettings, *, create: bool, wait_seconds: float = 10.0
) -> str | None:
    """The broker's epoch; with `create`, write one first when the topic is empty.

    Call with `create=True` only after the epoch topic was created with its
    registry partition count: a produce to a missing topic would auto-create it
    with a count of the broker's choosing, so a missing topic is refused.
    """
    epoch = await _read_offset_zero(settings, wait_seconds)
    if epoch is not None or not create:
        return epoch
    if not await _epoch_topic_exists(settings):
        raise RuntimeError(f"{EPOCH_TOPIC} does not exist: create the registry topics first")
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(EPOCH_TOPIC, uuid.uuid4().hex.encode(), partition=0)
    finally:
        await producer.stop()
    # Two services may race to write; offset 0 wins for everyone.
    return await _read_offset_zero(settings, wait_seconds)


async def stored_epoch(conn: asyncpg.Connection | asyncpg.Pool) -> str | None:
    value = await conn.fetchval("SELECT epoch FROM broker_epoch")
    return str(value) if value is not None else None


async def adopt_epoch(pool: asyncpg.Pool, broker_epoch: str) -> str:
    """Record `broker_epoch` when this schema has none yet; return the recorded one."""
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO broker_epoch (singleton, epoch) VALUES (true, $1) ON CONFLICT DO NOTHING",
            broker_epoch,
        )
        recorded = await stored_epoch(conn)
    assert recorded is not None
    return recorded
