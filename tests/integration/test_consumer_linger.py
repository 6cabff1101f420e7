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

from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.infra.kafka.producer import create_producer
from awooop.infra.settings import Settings
from support.infra import StackUrls, unique
from support.pipeline import (
    CODEC,
    TOPIC,
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
    """Wait until the consumer holds its partitions, has read everything already in them
    (the shared topic holds other tests' records: reading them is being busy), and a
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

    async def send(self, seq: int, *, wait: bool = True) -> None:
        env = envelope(self.project, self.stream, seq)
        send = self.producer.send_and_wait if wait else self.producer.send
        await send(
            TOPIC,
            CODEC.encode(env),
            key=self.stream.encode(),
            headers=record_headers(env, make_traceparent(env.trace_id)),
        )


@contextlib.asynccontextmanager
async def _lingering_consumer(urls: StackUrls, linger_ms: int) -> AsyncIterator[_Lingering]:
    """A consumer applying one project's records with `linger_ms`, assigned and idle."""
    settings = _lingering(urls, linger_ms)
    project = unique("linger")
    pool = await service_schema(urls.database, unique("linger_"))
    producer = create_producer(settings.kafka, client_id=f"{project}-producer")
    await producer.start()
    try:
        await create_applied_table(pool)
        processor = ApplyEveryRecord(project)
        async with running_consumer(settings, pool, unique("g-"), processor) as running:  # type: ignore[arg-type]
            await _idle(running)
            yield _Lingering(pool, running, producer, project, unique("s-"))
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
        # A steady stream: one record every 5 ms, so fetch after fetch brings records.
        for seq in range(1, sent + 1):
            await lingering.send(seq, wait=False)
            await asyncio.sleep(0.005)
        await lingering.producer.flush()

        async def all_applied() -> bool:
            return await _applied(lingering.pool) == sent

        await poll_until(all_applied, within=30, message="every record applied")
        stats = lingering.running.consumer.stats
        assert stats.lingers >= 1
        assert stats.records == sent
        assert stats.batches < sent / 2, f"{stats.batches} batches for {sent} records"
        # Applied once each, in order per stream.
        seqs = [
            row["stream_seq"]
            for row in await lingering.pool.fetch(
                "SELECT stream_seq FROM applied ORDER BY position"
            )
        ]
        assert seqs == list(range(1, sent + 1))
