"""Poison isolation: undecodable, handler-refused and over-size records go to the DLQ with
their origin in headers, and the records after them on the same partition are processed."""

from __future__ import annotations

import asyncio
import hashlib

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from awooop.contracts.records.dead_letter import (
    DLQ_HEADER_CONSUMER_GROUP,
    DLQ_HEADER_ERROR,
    DLQ_HEADER_ERROR_CODE,
    DLQ_HEADER_ORIGIN_OFFSET,
    DLQ_HEADER_ORIGIN_PARTITION,
    DLQ_HEADER_ORIGIN_TOPIC,
    DLQ_HEADER_VALUE_HEAD,
    DLQ_HEADER_VALUE_SHA256,
    DLQ_HEADER_VALUE_SIZE,
    value_head,
)
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.registries.topics import MAX_RECORD_BYTES, Topics
from awooop.infra.kafka.producer import create_producer
from support.infra import StackUrls, unique
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


async def _dlq_entries(urls: StackUrls, group: str, expected: int) -> list[dict[str, str]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=urls.kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(Topics.DLQ.name, p) for p in range(Topics.DLQ.partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        found: list[dict[str, str]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while len(found) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}  # all UTF-8 text
                    if headers.get(DLQ_HEADER_CONSUMER_GROUP) == group:
                        found.append({**headers, "value_size": str(len(record.value or b""))})
        return found
    finally:
        await consumer.stop()


async def test_poison_and_oversize_go_to_the_dlq_and_the_partition_flows(
    kafka_ready: StackUrls,
) -> None:
    """Breaks caught: a poison record stopping its partition; an over-size value sent on
    to the DLQ (a broker with `max.message.bytes` at the record limit refuses it, and a
    consumer that takes the refusal for an outage retries forever); a record the broker
    refuses for its size retried instead of dead-lettered without its value."""
    pool: asyncpg.Pool = await service_schema(kafka_ready.database, unique("poison_"))
    await create_applied_table(pool)
    project = unique("p")
    stream = f"{project}-run"  # one key: every record lands on one partition, in order
    good_first = envelope(project, stream, 1)
    refused = envelope(project, stream, 2, reply="refuse me")
    good_last = envelope(project, stream, 3)

    def headers_of(env: object) -> list[tuple[str, bytes]]:
        return record_headers(env, make_traceparent(env.trace_id))  # type: ignore[attr-defined]

    oversize = b"x" * (MAX_RECORD_BYTES + 10)
    # Within the record limit, but with its headers past what the DLQ accepts
    # (DLQ_REQUEST_BYTES): refused as a broker refuses, MessageSizeTooLargeError.
    refused_by_broker = b"\xfe" + b"y" * (MAX_RECORD_BYTES - 100)
    settings = kafka_ready.settings()
    producer = create_producer(settings.kafka)
    await producer.start()
    try:
        sent = []
        for value, headers in [
            (CODEC.encode(good_first), headers_of(good_first)),
            (b"\xff not json at all", headers_of(good_first)),
            (CODEC.encode(refused), headers_of(refused)),
            (oversize, headers_of(good_first)),
            (refused_by_broker, [*headers_of(good_first), ("padding", b"h" * 80_000)]),
            (CODEC.encode(good_last), headers_of(good_last)),
        ]:
            sent.append(
                await producer.send_and_wait(TOPIC, value, key=stream.encode(), headers=headers)
            )
    finally:
        await producer.stop()
    partition = sent[0].partition
    assert {s.partition for s in sent} == {partition}
    offsets = [s.offset for s in sent]

    group = unique("g-")
    processor = applying_processor(project, group, fail_on=lambda e: e.payload.reply == "refuse me")
    async with running_consumer(settings, pool, group, processor) as rc:
        await wait_for(
            lambda: pool.fetchval("SELECT count(*) = 2 FROM applied"),
            message="both good records applied",
        )
        assert rc.readiness.ready
    applied = await pool.fetch("SELECT event_id FROM applied ORDER BY position")
    assert [r["event_id"] for r in applied] == [good_first.event_id, good_last.event_id]

    entries = await _dlq_entries(kafka_ready, group, expected=4)
    by_offset = {int(e[DLQ_HEADER_ORIGIN_OFFSET]): e for e in entries}
    assert len(entries) == 4
    assert sorted(by_offset) == offsets[1:5]
    codes = {off: by_offset[off][DLQ_HEADER_ERROR_CODE] for off in offsets[1:5]}
    assert codes == {
        offsets[1]: "E-DLQ-DECODE",
        offsets[2]: "E-DLQ-HANDLER",
        offsets[3]: "E-DLQ-OVERSIZE",
        offsets[4]: "E-DLQ-DECODE",
    }
    for entry in entries:
        assert entry[DLQ_HEADER_ORIGIN_TOPIC] == TOPIC
        assert entry[DLQ_HEADER_ORIGIN_PARTITION] == str(partition)
        assert entry[DLQ_HEADER_ERROR]
    for kept in offsets[1:4]:
        assert by_offset[kept]["event_type"] == "run.completed"  # the original headers
    assert "handler refuses" in by_offset[offsets[2]][DLQ_HEADER_ERROR]
    assert int(by_offset[offsets[1]]["value_size"]) == len(b"\xff not json at all")
    for dropped, value in ((offsets[3], oversize), (offsets[4], refused_by_broker)):
        entry = by_offset[dropped]
        assert entry["value_size"] == "0"  # the value does not travel ...
        assert entry[DLQ_HEADER_VALUE_SIZE] == str(len(value))  # ... its digest does
        assert entry[DLQ_HEADER_VALUE_SHA256] == hashlib.sha256(value).hexdigest()
        assert entry[DLQ_HEADER_VALUE_HEAD] == value_head(value)
    assert by_offset[offsets[4]][DLQ_HEADER_VALUE_HEAD].startswith("\\xfey")
    assert "padding" not in by_offset[offsets[4]]
    await pool.close()
