"""Adaptive batches: a busy consumer lingers for more records before it applies a batch,
and a record that finds the consumer idle is applied at once, within its fetch.

The idle case runs with a linger of a minute: a consumer that lingered on it would
apply the record a minute late, far past the wait below, so the test fails on the
behaviour, not on a measured time."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic

from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.infra.kafka.admin import admin_client
from awooop.infra.kafka.producer import create_producer
from awooop.infra.settings import Settings
from support.infra import StackUrls, unique
from support.pipeline import (
    CODEC,
    ApplyEveryRecord,
    RunningConsumer,
    create_applied_table,
    envelope,
    running_consumer,
)
from support.pipeline import wait_for as poll_until
from support.schemas import service_schema

pytestmark = pytest.mark.integration


def _lingering(urls: StackUrls, linger_ms: int) -> Settings:
    settings = urls.settings()
    return dataclasses.replace(
        settings, kafka_config=dataclasses.replace(settings.kafka, linger_ms=linger_ms)
    )


async def _applied(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM applied"))


async def _idle(running: RunningConsumer) -> None:
    """Wait until the consumer holds its partitions, has read everything in them, and a
    fetch since then brought nothing."""
    consumer = running.consumer

    async def caught_up() -> bool:
        assigned = consumer.assignment()
        behind = await consumer.lag() if assigned else {}
        return bool(assigned) and set(behind) == assigned and not any(behind.values())

    await poll_until(caught_up, message="the consumer assigned and caught up")
    fetched = consumer.stats.batches
    await asyncio.sleep(0.2)  # several empty fetches of the services' 25 ms fetch wait
    assert consumer.stats.batches == fetched, "records arrived while waiting to be idle"


@dataclasses.dataclass
class _Lingering:
    pool: asyncpg.Pool
    running: RunningConsumer
    producer: AIOKafkaProducer
    project: str
    stream: str
    topic: str

    async def send(self, seq: int, *, wait: bool = True) -> None:
        env = envelope(self.project, self.stream, seq)
        send = self.producer.send_and_wait if wait else self.producer.send
        await send(
            self.topic,
            CODEC.encode(env),
            key=self.stream.encode(),
            headers=record_headers(env, make_traceparent(env.trace_id)),
        )


async def _fresh_topic(settings: Settings) -> str:
    """A topic of this test alone: the shared one holds every other test's records, and
    a consumer catching up with them is busy (and lingers)."""
    name = f"awooop.test.{unique('linger')}.v1"
    admin = admin_client(settings.kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 3, replication_factor=1)])
    finally:
        await admin.close()
    return name


@contextlib.asynccontextmanager
async def _lingering_consumer(urls: StackUrls, linger_ms: int) -> AsyncIterator[_Lingering]:
    """A consumer of a fresh topic applying one project's records with `linger_ms`,
    assigned and idle."""
    settings = _lingering(urls, linger_ms)
    project = unique("linger")
    topic = await _fresh_topic(settings)
    pool = await service_schema(urls.database, unique("linger_"))
    producer = create_producer(settings.kafka, client_id=f"{project}-producer")
    await producer.start()
    try:
        await create_applied_table(pool)
        processor = ApplyEveryRecord(project)
        async with running_consumer(
            settings,
            pool,
            unique("g-"),
            processor,  # type: ignore[arg-type]
            topics=(topic,),
        ) as running:
            await _idle(running)
            yield _Lingering(pool, running, producer, project, unique("s-"), topic)
    finally:
        await producer.stop()
        await pool.close()


async def test_a_record_that_finds_the_consumer_idle_is_applied_without_lingering(
    kafka_ready: StackUrls,
) -> None:
    async with _lingering_consumer(kafka_ready, linger_ms=60_000) as lingering:
        await lingering.send(1)
        # A minute's linger would be far past this wait.
        await poll_until(lambda: _applied(lingering.pool), within=15, message="the lone record")
        assert lingering.running.consumer.stats.lingers == 0


async def test_a_busy_consumer_lingers_and_applies_larger_batches(
    kafka_ready: StackUrls,
) -> None:
    sent = 120
    async with _lingering_consumer(kafka_ready, linger_ms=50) as lingering:
        stats = lingering.running.consumer.stats
        # Catching up with the shared topic took batches and lingers of its own.
        batches, lingers, records = stats.batches, stats.lingers, stats.records
        # A steady stream: one record every 5 ms, so fetch after fetch brings records.
        for seq in range(1, sent + 1):
            await lingering.send(seq, wait=False)
            await asyncio.sleep(0.005)
        await lingering.producer.flush()

        async def all_applied() -> bool:
            return await _applied(lingering.pool) == sent

        await poll_until(all_applied, within=30, message="every record applied")
        assert stats.lingers > lingers
        assert stats.records - records == sent
        taken = stats.batches - batches
        assert taken < sent / 2, f"{taken} batches for {sent} records"
        # Applied once each, in order per stream.
        seqs = [
            row["stream_seq"]
            for row in await lingering.pool.fetch(
                "SELECT stream_seq FROM applied ORDER BY position"
            )
        ]
        assert seqs == list(range(1, sent + 1))
