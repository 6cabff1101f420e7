"""Raw Kafka on the same broker with no platform in between: the floor under the
skeleton's figures.

The very inbound records of the measured runs are produced to a scratch topic the
way the relay sends (explicit per-partition batches, `acks="all"`), then read back
by one group member with `getmany` and a commit of each batch's next offsets, with a
10 ms fetch wait (`fetch_wakeup` shows what the services' 500 ms costs). Runs
`rounds` times; the median round is reported.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from awooop.infra.kafka.producer import create_producer, partition_for
from awooop.infra.settings import KafkaSettings

SCRATCH_PARTITIONS = 12
_TOPIC_ALREADY_EXISTS = 36
FLOOR_FETCH_WAIT_MS = 10
"""Short, so the consume never sits out a long poll parked while it produced."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KafkaBaseline:
    records: int
    fetch_wait_ms: int
    produce_seconds: float
    consume_seconds: float

    @property
    def produce_rate(self) -> float:
        return self.records / self.produce_seconds

    @property
    def consume_rate(self) -> float:
        return self.records / self.consume_seconds

    @property
    def round_trip_rate(self) -> float:
        """Records per second through produce then consume."""
        return self.records / (self.produce_seconds + self.consume_seconds)


def scratch_topic(purpose: str) -> str:
    return f"awooop.bench.{purpose}.v1"


async def create_topic(kafka: KafkaSettings, topic: str) -> None:
    # Created explicitly: a producer naming an unknown topic would auto-create it
    # with a partition count of the broker's choosing.
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(topic, SCRATCH_PARTITIONS, replication_factor=1)]
        )
        for name, code, *_rest in response.topic_errors:
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"creating topic {name} failed with Kafka error {code}")
    finally:
        await admin.close()


async def joined_consumer(kafka: KafkaSettings, topic: str, fetch_wait_ms: int) -> AIOKafkaConsumer:
    """A group member of `topic` that already holds its partitions."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        group_id=f"awooop.bench.raw.{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_wait_ms,
        session_timeout_ms=2_000,
        heartbeat_interval_ms=300,
    )
    await consumer.start()
    consumer.subscribe([topic])
    # The group join stays out of the timing: wait for the assignment first.
    deadline = time.monotonic() + 30
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise AssertionError(f"no partitions of {topic} assigned within 30 s")
        await consumer.getmany(timeout_ms=100)
    return consumer


async def _produce(
    producer: AIOKafkaProducer, topic: str, by_partition: dict[int, list[tuple[bytes, bytes]]]
) -> None:
    for partition, items in by_partition.items():
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:
                await (await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        await (await producer.send_batch(batch, topic, partition=partition))


async def _consume(consumer: AIOKafkaConsumer, count: int) -> None:
    consumed = 0
    while consumed < count:
        batches = await consumer.getmany(timeout_ms=2_000, max_records=500)
        if not batches:
            raise AssertionError(f"raw consume stalled at {consumed} of {count}")
        await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
        consumed += sum(len(rs) for rs in batches.values())


async def _rounds(
    kafka: KafkaSettings,
    by_partition: dict[int, list[tuple[bytes, bytes]]],
    fetch_wait_ms: int,
    rounds: int,
) -> KafkaBaseline:
    count = sum(len(items) for items in by_partition.values())
    topic = scratch_topic("raw")
    await create_topic(kafka, topic)
    consumer = await joined_consumer(kafka, topic, fetch_wait_ms)
    producer = create_producer(kafka, client_id="bench-raw")
    await producer.start()
    results = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            await _produce(producer, topic, by_partition)
            produced = time.perf_counter()
            await _consume(consumer, count)
            consumed = time.perf_counter()
            results.append(
                KafkaBaseline(count, fetch_wait_ms, produced - started, consumed - produced)
            )
    finally:
        await producer.stop()
        await consumer.stop()
    return median_round(results, key=lambda r: r.produce_seconds + r.consume_seconds)


async def raw_kafka(
    kafka: KafkaSettings, records: Sequence[tuple[bytes, bytes]], rounds: int = 3
) -> KafkaBaseline:
    """Median of `rounds` rounds of producing then consuming `records`."""
    by_partition: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    for key, value in records:
        by_partition[partition_for(key, SCRATCH_PARTITIONS)].append((key, value))
    return await _rounds(kafka, by_partition, FLOOR_FETCH_WAIT_MS, rounds)


def median_round(results: list[T], key: Callable[[T], float]) -> T:
    """The median round (the lower of the two middle ones for an even count)."""
    ordered = sorted(results, key=key)
    return ordered[(len(ordered) - 1) // 2]
