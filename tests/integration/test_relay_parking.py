"""The relay never wedges: unpublishable rows are parked, the rest reach the broker, the
operator re-queues them; append and relay agree on the record size; batches are bounded."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)
from aiokafka.structs import TopicPartition

from awooop.cli.main import main as awooop
from awooop.contracts.registries.topics import MAX_RECORD_BYTES, topic
from awooop.infra.kafka.producer import create_producer, partition_for
from awooop.infra.kafka.record_size import record_size
from awooop.infra.postgres import event_store
from awooop.infra.postgres.errors import EventTooLarge
from awooop.infra.postgres.event_store import NewEvent, encode_headers
from awooop.infra.relay import OutboxRelay, is_record_refusal
from support.infra import StackUrls, unique
from support.pipeline import TOPIC, new_event, wait_for
from support.schemas import service_schema

pytestmark = pytest.mark.integration

PARTITIONS = topic(TOPIC).partitions


@pytest.fixture
async def source(kafka_ready: StackUrls) -> tuple[asyncpg.Pool, str]:
    schema = unique("park_")
    pool = await service_schema(kafka_ready.database, schema)
    yield pool, schema
    await pool.close()


def _relay(urls: StackUrls, pool: asyncpg.Pool, **kwargs: Any) -> OutboxRelay:
    settings = urls.settings()
    return OutboxRelay(pool, "unused", lambda: create_producer(settings.kafka), **kwargs)


async def _append(pool: asyncpg.Pool, events: Iterable[NewEvent]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await event_store.append(conn, list(events))


async def _insert_unchecked(pool: asyncpg.Pool, event: NewEvent) -> int:
    """Store an event as a buggy writer could, past the append checks."""
    async with pool.acquire() as conn, conn.transaction():
        position: int = await conn.fetchval(
            "INSERT INTO events (event_id, stream_type, stream_id, stream_seq, topic, key, "
            "headers, data) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) RETURNING position",
            event.event_id,
            event.stream_type,
            event.stream_id,
            event.stream_seq,
            event.topic,
            event.key,
            encode_headers(event.headers),
            event.data,
        )
        await conn.execute("INSERT INTO outbox (position) VALUES ($1)", position)
    return position


def _padded(project: str, stream_id: str, seq: int, size: int) -> NewEvent:
    """An event whose record (as `record_size` counts it) is exactly `size` bytes."""
    base = new_event(project, stream_id, seq)
    pad = size - record_size(base.key, base.data, base.headers)
    assert pad > 0
    # Trailing JSON whitespace keeps the envelope valid and the bytes exact.
    return dataclasses.replace(base, data=base.data + b" " * pad)


async def _published(bootstrap: str, topic_name: str) -> dict[uuid.UUID, tuple[int, int, int]]:
    """event_id -> (partition, offset, value bytes) of every record of the topic, read to the
    high watermarks. Ids come from the `event_id` header: shared topics also hold poison."""
    spec = topic(topic_name)
    tps = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * MAX_RECORD_BYTES,
        fetch_max_bytes=16 * MAX_RECORD_BYTES,
    )
    await consumer.start()
    seen: dict[uuid.UUID, tuple[int, int, int]] = {}
    try:
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            for tp, records in (await consumer.getmany(timeout_ms=200, max_records=5000)).items():
                for r in records:
                    ids = [v for k, v in r.headers if k == "event_id"]
                    if ids:
                        seen[uuid.UUID(ids[0].decode())] = (tp.partition, r.offset, len(r.value))
            highwaters = {tp: consumer.highwater(tp) for tp in tps}
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(hw is not None and positions[tp] >= hw for tp, hw in highwaters.items()):
                return seen
            assert loop.time() < deadline, "topic not read to its end"
    finally:
        await consumer.stop()


async def _parked(pool: asyncpg.Pool) -> dict[int, str]:
    rows = await pool.fetch("SELECT position, error_code FROM outbox_parked ORDER BY position")
    return {r["position"]: r["error_code"] for r in rows}


async def _positions(pool: asyncpg.Pool, events: Iterable[NewEvent]) -> list[int]:
    rows = await pool.fetch(
        "SELECT position FROM events WHERE event_id = ANY($1::uuid[]) ORDER BY position",
        [e.event_id for e in events],
    )
    return [r["position"] for r in rows]


def _same_partition_stream(project: str, key_of: str) -> str:
    wanted = partition_for(key_of.encode(), PARTITIONS)
    for n in range(10_000):
        candidate = f"{project}-mate-{n}"
        if partition_for(candidate.encode(), PARTITIONS) == wanted:
            return candidate
    raise AssertionError("no stream id on the same partition")


async def test_unpublishable_rows_are_parked_and_every_other_row_reaches_the_broker(
    kafka_ready: StackUrls,
    source: tuple[asyncpg.Pool, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Breaks caught: an over-size or unknown-topic row that stops the relay (every batch
    rolls back and nothing after it is published), a parked row whose later rows of the
    same key are published out of order, and a retry that does not re-queue."""
    pool, schema = source
    project = unique("p")
    big_stream = f"{project}-big"
    mate = _same_partition_stream(project, big_stream)  # shares the over-size row's partition
    before = [new_event(project, f"{project}-run-{s}", 1) for s in range(5)]
    await _append(pool, before)
    oversize = _padded(project, big_stream, 1, MAX_RECORD_BYTES + 1)
    oversize_at = await _insert_unchecked(pool, oversize)
    behind = new_event(project, big_stream, 2)
    await _append(pool, [behind])
    stray = dataclasses.replace(new_event(project, f"{project}-stray", 1), topic="nope.v1")
    stray_at = await _insert_unchecked(pool, stray)
    after = [new_event(project, f"{project}-run-{s}", 2) for s in range(5)]
    after += [new_event(project, mate, 1), new_event(project, mate, 2)]
    await _append(pool, after)

    relay = _relay(kafka_ready, pool, batch_size=4)
    while await relay.relay_once():
        pass
    await relay.close()

    (behind_at,) = await _positions(pool, [behind])
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert await _parked(pool) == {
        oversize_at: "E-RELAY-OVERSIZE",
        behind_at: "E-RELAY-BEHIND",
        stray_at: "E-RELAY-TOPIC-UNKNOWN",
    }
    assert relay.parked == 3
    assert relay.published == len(before) + len(after)
    published = await _published(kafka_ready.kafka, TOPIC)
    for event in before + after:
        assert event.event_id in published, f"{event.stream_id}/{event.stream_seq} not published"
    assert oversize.event_id not in published
    assert behind.event_id not in published

    # The operator's view and retry, through the command as a person runs it.
    monkeypatch.setenv("AWOOOP_DATABASE_URL", kafka_ready.database)
    monkeypatch.setenv("AWOOOP_KAFKA_BOOTSTRAP", kafka_ready.kafka)
    monkeypatch.setenv("AWOOOP_REDIS_URL", kafka_ready.redis)
    assert await asyncio.to_thread(awooop, ["outbox", "parked", "--service", schema]) == 0
    out = capsys.readouterr().out.splitlines()
    listed = [line for line in out if line.startswith(f"{schema}\t")]
    assert [line.split("\t")[1:4:2] for line in listed] == [
        [str(oversize_at), "E-RELAY-OVERSIZE"],
        [str(behind_at), "E-RELAY-BEHIND"],
        [str(stray_at), "E-RELAY-TOPIC-UNKNOWN"],
    ]
    refused = ["outbox", "retry", "--service", schema, "--position", str(behind_at), "999999999"]
    assert await asyncio.to_thread(awooop, refused) == 2  # not all parked: nothing moves
    assert capsys.readouterr().err == (
        f"awooop: error: not parked in {schema}: 999999999 (nothing re-queued)\n"
    )
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    retry_behind = ["outbox", "retry", "--service", schema, "--position", str(behind_at)]
    assert await asyncio.to_thread(awooop, retry_behind) == 0
    assert await pool.fetchval("SELECT array_agg(position) FROM outbox") == [behind_at]
    relay = _relay(kafka_ready, pool)
    assert await relay.relay_once() == 1
    await relay.close()
    # Its key's earlier row is still parked, so it waits behind it again, unpublished.
    assert (await _parked(pool))[behind_at] == "E-RELAY-BEHIND"
    assert behind.event_id not in await _published(kafka_ready.kafka, TOPIC)


class _KeyedBatch:
    """A real batch that remembers the keys appended to it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.keys: list[bytes] = []

    def append(self, **record: Any) -> Any:
        meta = self.inner.append(**record)
        if meta is not None:
            self.keys.append(record["key"])
        return meta

    def record_count(self) -> int:
        return int(self.inner.record_count())


class _RefusingProducer:
    """A real producer in front of the broker, except that while `refused` holds a key,
    every batch carrying it is answered as the broker answers a topic without the grant."""

    def __init__(self, real: AIOKafkaProducer, refused: set[bytes]) -> None:
        self._real = real
        self.refused = refused
        self.refusals = 0

    async def start(self) -> None:
        await self._real.start()

    async def stop(self) -> None:
        await self._real.stop()

    def create_batch(self) -> _KeyedBatch:
        return _KeyedBatch(self._real.create_batch())

    async def send_batch(self, batch: _KeyedBatch, topic_name: str, *, partition: int) -> Any:
        if self.refused & set(batch.keys):
            self.refusals += 1
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(TopicAuthorizationFailedError(topic_name))
            return failed
        return await self._real.send_batch(batch.inner, topic_name, partition=partition)


async def test_a_record_the_broker_refuses_is_parked_and_its_partition_keeps_flowing(
    kafka_ready: StackUrls, source: tuple[asyncpg.Pool, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Breaks caught: a broker refusal treated as an outage (the batch retried forever), a
    refused multi-record batch that parks the innocent records batched with the refused
    one, and re-queued rows published out of per-key order."""
    pool, schema = source
    project = unique("p")
    refused_stream = f"{project}-refused"
    mate = _same_partition_stream(project, refused_stream)
    events = []
    for seq in (1, 2, 3):
        events += [new_event(project, refused_stream, seq), new_event(project, mate, seq)]
    events += [new_event(project, f"{project}-other-{s}", 1) for s in range(4)]
    await _append(pool, events)

    refused = {refused_stream.encode()}
    settings = kafka_ready.settings()
    producers: list[_RefusingProducer] = []

    def factory() -> Any:
        producers.append(_RefusingProducer(create_producer(settings.kafka), refused))
        return producers[-1]

    relay = OutboxRelay(pool, "unused", factory)
    assert await relay.relay_once() == len(events)
    refused_rows = await _positions(pool, [e for e in events if e.stream_id == refused_stream])
    assert await _parked(pool) == dict(
        zip(refused_rows, ["E-RELAY-REFUSED", "E-RELAY-BEHIND", "E-RELAY-BEHIND"], strict=True)
    )
    assert producers[0].refusals >= 2  # the shared batch, then the refused record alone
    published = await _published(kafka_ready.kafka, TOPIC)
    for event in events:
        assert (event.event_id in published) == (event.stream_id != refused_stream)

    refused.clear()  # the grant is fixed
    monkeypatch.setenv("AWOOOP_DATABASE_URL", kafka_ready.database)
    monkeypatch.setenv("AWOOOP_KAFKA_BOOTSTRAP", kafka_ready.kafka)
    monkeypatch.setenv("AWOOOP_REDIS_URL", kafka_ready.redis)
    assert await asyncio.to_thread(awooop, ["outbox", "retry", "--service", schema, "--all"]) == 0
    assert await relay.relay_once() == 3
    await relay.close()
    assert await _parked(pool) == {}
    published = await _published(kafka_ready.kafka, TOPIC)
    offsets = [published[e.event_id] for e in events if e.stream_id == refused_stream]
    assert offsets == sorted(offsets), "re-queued rows out of order"


async def test_append_and_relay_agree_on_the_record_size_limit(
    kafka_ready: StackUrls, source: tuple[asyncpg.Pool, str]
) -> None:
    """Break caught: append and relay measuring a record differently (the relay once
    counted the JSON text of the headers, ~50 bytes more), so an event the store accepted
    at the limit could never be published."""
    pool, _schema = source
    project = unique("p")
    at_limit = _padded(project, f"{project}-edge", 1, MAX_RECORD_BYTES)
    await _append(pool, [at_limit])
    one_more = _padded(project, f"{project}-over", 1, MAX_RECORD_BYTES + 1)
    with pytest.raises(EventTooLarge):
        await _append(pool, [one_more])
    over_at = await _insert_unchecked(pool, one_more)

    relay = _relay(kafka_ready, pool)
    assert await relay.relay_once() == 2
    await relay.close()
    assert await _parked(pool) == {over_at: "E-RELAY-OVERSIZE"}
    published = await _published(kafka_ready.kafka, TOPIC)
    assert published[at_limit.event_id][2] == len(at_limit.data)
    assert one_more.event_id not in published


async def test_a_batch_is_bounded_by_bytes_and_the_loop_drains_past_the_bound(
    kafka_ready: StackUrls, source: tuple[asyncpg.Pool, str]
) -> None:
    """Breaks caught: a batch that reads the whole outbox whatever its bytes, and a run
    loop that waits for the next poll after a batch cut short by bytes."""
    pool, _schema = source
    project = unique("p")
    size = 10_000
    events = [_padded(project, f"{project}-run-{n}", 1, size) for n in range(30)]
    await _append(pool, events)
    bound = 5 * size + 1  # the sixth row starts past it
    relay = _relay(kafka_ready, pool, max_batch_bytes=bound, poll_interval=3600)
    assert await relay.relay_once() == 6
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 24
    task = asyncio.create_task(relay.run())
    try:
        # With an hour between polls, only the drain after a full batch can empty it.
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), message="drained")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await relay.close()
    assert relay.published == 30


class _StalledProducer(_RefusingProducer):
    """Accepts batches and never hears back from the broker."""

    async def send_batch(self, batch: _KeyedBatch, topic_name: str, *, partition: int) -> Any:
        return asyncio.get_running_loop().create_future()


async def test_a_batch_whose_sends_stall_ends_at_its_deadline_and_is_retried_whole(
    kafka_ready: StackUrls, source: tuple[asyncpg.Pool, str]
) -> None:
    """Break caught: a relay transaction held open for as long as the broker stalls (past
    the role's idle-in-transaction timeout, which kills the connection mid-batch)."""
    pool, _schema = source
    project = unique("p")
    events = [new_event(project, f"{project}-run-{n}", 1) for n in range(5)]
    await _append(pool, events)
    settings = kafka_ready.settings()
    stalled = OutboxRelay(
        pool,
        "unused",
        lambda: _StalledProducer(create_producer(settings.kafka), set()),  # type: ignore[arg-type, return-value]
        send_timeout=0.5,
    )
    with pytest.raises(TimeoutError):
        await stalled.relay_once()
    await stalled.close()
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 5  # rolled back
    relay = _relay(kafka_ready, pool)
    assert await relay.relay_once() == 5  # the lock was released with the transaction
    await relay.close()
    assert {e.event_id for e in events} <= set(await _published(kafka_ready.kafka, TOPIC))


@pytest.mark.parametrize(
    ("error", "refusal"),
    [
        (MessageSizeTooLargeError(), True),
        (TopicAuthorizationFailedError("t"), True),
        (KafkaConnectionError(), False),
        (KafkaTimeoutError(), False),
        (NotLeaderForPartitionError(), False),
        (TimeoutError(), False),
    ],
)
def test_only_refusals_of_the_record_are_parked_outages_are_not(
    error: Exception, refusal: bool
) -> None:
    assert is_record_refusal(error) is refusal
