"""A batch of records its service does not handle costs no database transaction: with
offsets in Kafka, the consumer commits their offsets and nothing else. (Every service
reads whole topics of which it handles a few types: the approval service reads every
message, run step and tool call for the few held calls and button presses among them.)"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiokafka.structs import TopicPartition

from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.infra.kafka.producer import create_producer
from support.infra import StackUrls, unique
from support.pipeline import (
    CODEC,
    TOPIC,
    ApplyEveryRecord,
    create_applied_table,
    envelope,
    running_consumer,
)
from support.pipeline import wait_for as poll_until
from support.schemas import service_schema

pytestmark = pytest.mark.integration


class CountingPool:
    """The pool, counting the connections the consumer takes from it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.acquired = 0

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        self.acquired += 1
        return self._pool.acquire(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


async def test_records_a_service_does_not_handle_are_passed_without_a_transaction(
    kafka_ready: StackUrls,
) -> None:
    mine, other = unique("mine"), unique("other")
    stream = unique("s-")
    settings = kafka_ready.settings()
    pool = await service_schema(kafka_ready.database, unique("unhandled_"))
    try:
        await create_applied_table(pool)
        counting = CountingPool(pool)
        producer = create_producer(settings.kafka, client_id="unhandled-test")
        await producer.start()
        try:
            async with running_consumer(
                settings,
                counting,
                unique("g-"),
                ApplyEveryRecord(mine),  # type: ignore[arg-type]
            ) as running:
                sent = None
                for seq in range(1, 21):
                    env = envelope(other, stream, seq)
                    sent = await producer.send_and_wait(
                        TOPIC,
                        CODEC.encode(env),
                        key=stream.encode(),
                        headers=record_headers(env, make_traceparent(env.trace_id)),
                    )
                assert sent is not None
                tp = TopicPartition(TOPIC, sent.partition)
                consumer = running.consumer.consumer
                assert consumer is not None

                async def passed() -> bool:
                    committed = await consumer.committed(tp)
                    return committed is not None and committed > sent.offset

                await poll_until(passed, message="the unhandled records' offsets committed")
                assert counting.acquired == 0

                env = envelope(mine, stream, 21)
                await producer.send_and_wait(
                    TOPIC,
                    CODEC.encode(env),
                    key=stream.encode(),
                    headers=record_headers(env, make_traceparent(env.trace_id)),
                )

                async def applied() -> bool:
                    rows = await pool.fetchval("SELECT count(*) FROM applied")
                    return bool(rows)

                await poll_until(applied, message="the handled record applied")
                assert counting.acquired >= 1
        finally:
            await producer.stop()
    finally:
        await pool.close()
