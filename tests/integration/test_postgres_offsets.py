"""The Postgres offset store (the projector's): offsets in the batch transaction, seek on
assignment, and exactly-once application without any inbox."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest
from aiokafka.structs import TopicPartition

from awooop.contracts.headers import make_traceparent, record_headers
from awooop.infra.kafka.offsets import PostgresOffsetStore
from awooop.infra.kafka.producer import create_producer
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from support.infra import StackUrls, unique
from support.pipeline import (
    CODEC,
    TOPIC,
    create_applied_table,
    envelope,
    running_consumer,
    wait_for,
)
from support.schemas import service_schema

pytestmark = pytest.mark.integration


class ApplyEveryRecord:
    """A processor with no inbox: only the offset store stands between it and duplicates."""

    def __init__(self, project: str) -> None:
        self.name = f"apply-{project}"
        self._project = project

    def handles(self, record: RawRecord) -> bool:
        return record.header("project_id") == self._project

    def decode(self, record: RawRecord) -> DecodedRecord:
        assert record.value is not None
        return DecodedRecord(record, CODEC.decode(record.value))

    async def process(self, conn: asyncpg.Connection, records: Sequence[DecodedRecord]) -> None:
        await conn.execute(
            "INSERT INTO applied (event_id, stream_id, stream_seq) "
            "SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[])",
            [r.body.event_id for r in records],
            [r.body.stream_id for r in records],
            [r.body.stream_seq for r in records],
        )

    def committed(self) -> None:
        return None


async def _produce(urls: StackUrls, project: str, start: int, count: int) -> None:
    producer = create_producer(urls.settings().kafka)
    await producer.start()
    try:
        futures = []
        for i in range(start, start + count):
            env = envelope(project, f"{project}-run-{i % 7}", i + 1)
            headers = record_headers(env, make_traceparent(env.trace_id))
            futures.append(
                await producer.send(
                    TOPIC, CODEC.encode(env), key=env.stream_id.encode(), headers=headers
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@pytest.fixture
async def pool(kafka_ready: StackUrls) -> asyncpg.Pool:
    pool = await service_schema(kafka_ready.database, unique("proj_"), ("offsets",))
    await create_applied_table(pool)
    yield pool
    await pool.close()


async def _assert_exactly_once(pool: asyncpg.Pool, total: int) -> None:
    rows = await pool.fetch("SELECT event_id FROM applied")
    assert len(rows) == total
    assert len({r["event_id"] for r in rows}) == total


async def test_offsets_live_in_postgres_and_a_restart_resumes_from_them(
    kafka_ready: StackUrls, pool: asyncpg.Pool
) -> None:
    settings = kafka_ready.settings()
    project, group = unique("p"), unique("g-")
    await _produce(kafka_ready, project, 0, 60)
    store = PostgresOffsetStore(pool, group)
    async with running_consumer(
        settings, pool, group, ApplyEveryRecord(project), offset_store=store
    ) as rc:
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 60 FROM applied"))

        async def caught_up() -> bool:
            behind = await rc.consumer.lag()
            return bool(behind) and sum(behind.values()) == 0

        await wait_for(caught_up, message="lag from fetch high watermarks reaches zero")
        # Kafka's committed offsets are for lag only: wind them back to zero.
        assert rc.consumer.consumer is not None
        await rc.consumer.consumer.commit({TopicPartition(TOPIC, p): 0 for p in range(12)})
    stored = dict(
        await pool.fetch(
            "SELECT partition, next_offset FROM projector_offsets WHERE consumer_group = $1",
            group,
        )
    )
    assert stored
    assert all(offset > 0 for offset in stored.values())

    await _produce(kafka_ready, project, 60, 25)
    async with running_consumer(
        settings,
        pool,
        group,
        ApplyEveryRecord(project),
        offset_store=PostgresOffsetStore(pool, group),
    ):
        await wait_for(lambda: pool.fetchval("SELECT count(*) >= 85 FROM applied"))
        await asyncio.sleep(0.5)
    await _assert_exactly_once(pool, 85)


async def test_records_below_the_stored_offset_are_dropped_in_the_transaction(
    kafka_ready: StackUrls, pool: asyncpg.Pool
) -> None:
    store = PostgresOffsetStore(pool, "g-drop")
    records = [RawRecord(TOPIC, 3, offset, None, b"", (), 0) for offset in (4, 5, 6, 7)]
    async with pool.acquire() as conn, conn.transaction():
        await store.store(conn, {TopicPartition(TOPIC, 3): 6})
    async with pool.acquire() as conn, conn.transaction():
        kept = await store.begin(conn, records)
    assert [r.offset for r in kept] == [6, 7]
    async with pool.acquire() as conn, conn.transaction():
        await store.store(conn, {TopicPartition(TOPIC, 3): 5})  # never moves backwards
    assert (
        await pool.fetchval(
            "SELECT next_offset FROM projector_offsets WHERE consumer_group = 'g-drop'"
        )
        == 6
    )


async def test_two_members_and_a_departure_apply_every_record_once(
    kafka_ready: StackUrls, pool: asyncpg.Pool
) -> None:
    settings = kafka_ready.settings()
    project, group = unique("p"), unique("g-")
    total = 0
    async with running_consumer(
        settings,
        pool,
        group,
        ApplyEveryRecord(project),
        offset_store=PostgresOffsetStore(pool, group),
    ):
        async with running_consumer(
            settings,
            pool,
            group,
            ApplyEveryRecord(project),
            offset_store=PostgresOffsetStore(pool, group),
        ):
            for _ in range(5):
                await _produce(kafka_ready, project, total, 40)
                total += 40
                await asyncio.sleep(0.3)
        # The second member left mid-stream; the first takes its partitions over.
        for _ in range(3):
            await _produce(kafka_ready, project, total, 40)
            total += 40
        await wait_for(
            lambda: pool.fetchval("SELECT count(*) >= $1 FROM applied", total), within=40
        )
        await asyncio.sleep(0.5)
    await _assert_exactly_once(pool, total)
