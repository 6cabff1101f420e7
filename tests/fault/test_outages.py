"""Outages are not poison: Postgres stopped under traffic, and a broker that comes back
empty (a new epoch). Each test owns its stack, since it kills pieces of it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.structs import TopicPartition

from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.infra.kafka.admin import ensure_topics
from awooop.infra.kafka.consumer import BROKER_EPOCH, OUTAGE
from awooop.infra.kafka.producer import create_producer
from awooop.infra.runner import ServiceRunner, ServiceSpec
from support.infra import migrated, unique
from support.own_stack import own_stack
from support.pipeline import (
    CODEC,
    TOPIC,
    applying_processor,
    create_applied_table,
    envelope,
    running_consumer,
    wait_for,
)
from support.schemas import service_schema

pytestmark = pytest.mark.fault


async def _produce(settings, project: str, count: int, start: int = 0, pause: float = 0.0):  # type: ignore[no-untyped-def]
    producer = create_producer(settings.kafka)
    await producer.start()
    try:
        for i in range(start, start + count):
            env = envelope(project, f"{project}-run-{i % 5}", i + 1)
            headers = record_headers(env, make_traceparent(env.trace_id))
            await producer.send_and_wait(
                TOPIC, CODEC.encode(env), key=env.stream_id.encode(), headers=headers
            )
            if pause:
                await asyncio.sleep(pause)
    finally:
        await producer.stop()


async def test_postgres_stopped_under_traffic_pauses_without_dlq_and_resumes(
    tmp_path: Path,
) -> None:
    with own_stack(tmp_path / "stack") as stack:
        settings = stack.urls.settings()
        await ensure_topics(settings.kafka)
        pool = await service_schema(stack.urls.database, "outage_sink")
        await create_applied_table(pool)
        project, group = unique("p"), unique("g-")
        total = 120
        async with running_consumer(
            settings, pool, group, applying_processor(project, group)
        ) as rc:
            traffic = asyncio.create_task(_produce(settings, project, total, pause=0.03))
            await wait_for(
                lambda: pool.fetchval("SELECT count(*) > 10 FROM applied"),
                message="traffic flowing",
            )
            stack.stop_postgres()
            await wait_for(lambda: not rc.readiness.ready, message="readiness false")
            assert OUTAGE in rc.readiness.reasons
            await asyncio.sleep(3)
            assert not rc.readiness.ready  # still down, still retrying
            stack.start_postgres()
            await traffic
            await wait_for(lambda: rc.readiness.ready, within=30, message="ready again")
            await wait_for(
                lambda: _count_or_none(pool, total),
                within=30,
                message="every record applied after the outage",
            )
            assert rc.dead_letters.sent == 0  # an outage is never poison
        rows = await pool.fetch("SELECT event_id FROM applied")
        assert len(rows) == total
        assert len({r["event_id"] for r in rows}) == total
        await pool.close()


async def _count_or_none(pool, total: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool(await pool.fetchval("SELECT count(*) >= $1 FROM applied", total))
    except Exception:
        return False


async def test_broker_restart_turns_unready_and_never_resets_offsets(tmp_path: Path) -> None:
    with own_stack(tmp_path / "stack") as stack:
        settings = stack.urls.settings()
        project = unique("p")
        group = "awooop.epoch_probe"

        spec = ServiceSpec(
            service="epoch_probe",
            topics=(TOPIC,),
            processor=lambda _runner: applying_processor(project, group),
        )
        runner = ServiceRunner(spec, settings)
        await migrated(stack.urls.database, runner.spec)
        await runner.start()
        try:
            assert runner.pool is not None
            await create_applied_table(runner.pool)
            await _produce(settings, project, 10)
            await wait_for(
                lambda: runner.pool.fetchval("SELECT count(*) = 10 FROM applied"),
                message="first records applied",
            )
            assert runner.readiness.ready
            epoch_before = runner.epoch

            stack.restart_broker()
            await wait_for(
                lambda: BROKER_EPOCH in runner.readiness.reasons,
                within=20,
                message="the broker reset noticed",
            )
            assert not runner.readiness.ready
            assert "E-BROKER-RESET" in runner.readiness.reasons[BROKER_EPOCH]

            # The new broker fills up (its topics auto-created by whichever client
            # asked first); this service must not start over on it.
            await _produce(settings, project, 10, start=100)
            await asyncio.sleep(3)
            assert await runner.pool.fetchval("SELECT count(*) FROM applied") == 10
            assert await runner.pool.fetchval("SELECT epoch FROM broker_epoch") == epoch_before
            assert runner.consumer is not None
            assert runner.consumer.halted
            committed = await _committed_offsets(settings, group)
            assert committed == {}, f"offsets were committed on the new broker: {committed}"
        finally:
            await runner.stop()


async def _committed_offsets(settings, group: str) -> dict[int, int]:  # type: ignore[no-untyped-def]
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        found = {}
        for partition in range(12):
            offset = await consumer.committed(TopicPartition(TOPIC, partition))
            if offset is not None:
                found[partition] = offset
        return found
    finally:
        await consumer.stop()
