"""Adaptive batches: a busy consumer lingers for more records before it applies a batch,
and a record that finds the consumer idle is applied at once, within its fetch.

The idle case runs with a linger of a minute: a consumer that lingered on it would
apply the record a minute late, far past the wait below, so the test fails on the
behaviour, not on a measured time."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg
import pytest

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
    """Wait for the group's assignment and for a fetch that brought nothing."""
    consumer = running.consumer

    async def assigned_and_quiet() -> bool:
        await asyncio.sleep(0.1)  # a few empty fetches of the services' fetch wait
        return bool(consumer.assignment())

    await poll_until(assigned_and_quiet, message="the consumer assigned and idle")


async def test_a_record_that_finds_the_consumer_idle_is_applied_without_lingering(
    kafka_ready: StackUrls,
) -> None:
    project, stream = unique("idle"), unique("s-")
    settings = _lingering(kafka_ready, linger_ms=60_000)
    pool = await service_schema(kafka_ready.database, unique("linger_idle_"))
    producer = create_producer(settings.kafka, client_id="linger-idle")
    await producer.start()
    try:
        await create_applied_table(pool)
        async with running_consumer(
            settings,
            pool,
            unique("g-"),
            ApplyEveryRecord(project),  # type: ignore[arg-type]
        ) as running:
            await _idle(running)
            env = envelope(project, stream, 1)
            await producer.send_and_wait(
                TOPIC,
                CODEC.encode(env),
                key=stream.encode(),
                headers=record_headers(env, make_traceparent(env.trace_id)),
            )
            # A minute's linger would be far past this wait.
            await poll_until(lambda: _applied(pool), within=15, message="the lone record")
            assert running.consumer.stats.lingers == 0
    finally:
        await producer.stop()
        await pool.close()


async def test_a_busy_consumer_lingers_and_applies_larger_batches(
    kafka_ready: StackUrls,
) -> None:
    project, stream = unique("busy"), unique("s-")
    settings = _lingering(kafka_ready, linger_ms=50)
    pool = await service_schema(kafka_ready.database, unique("linger_busy_"))
    producer = create_producer(settings.kafka, client_id="linger-busy")
    await producer.start()
    sent = 120
    try:
        await create_applied_table(pool)
        async with running_consumer(
            settings,
            pool,
            unique("g-"),
            ApplyEveryRecord(project),  # type: ignore[arg-type]
        ) as running:
            await _idle(running)
            # A steady stream: one record every 5 ms, so fetch after fetch brings records.
            for seq in range(1, sent + 1):
                env = envelope(project, stream, seq)
                await producer.send(
                    TOPIC,
                    CODEC.encode(env),
                    key=stream.encode(),
                    headers=record_headers(env, make_traceparent(env.trace_id)),
                )
                await asyncio.sleep(0.005)
            await producer.flush()

            async def all_applied() -> bool:
                return await _applied(pool) == sent

            await poll_until(all_applied, within=30, message="every record applied")
            stats = running.consumer.stats
            assert stats.lingers >= 1
            assert stats.records == sent
            assert stats.batches < sent / 2, f"{stats.batches} batches for {sent} records"
            # Applied once each, in order per stream.
            seqs = [
                row["stream_seq"]
                for row in await pool.fetch("SELECT stream_seq FROM applied ORDER BY position")
            ]
            assert seqs == list(range(1, sent + 1))
    finally:
        await producer.stop()
        await pool.close()
