"""The Postgres offset store (the projector's): offsets in the batch transaction, seek on
assignment, and exactly-once application without any inbox."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest
from aiokafka.structs import TopicPartition

from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.offsets import PostgresOffsetStore
from awooop.infra.kafka.producer import create_producer
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from support.fault_helpers import poll
from support.infra import StackUrls, unique
from support.pipeline import (
    CODEC,
    TOPIC,
    ApplyEveryRecord,
    RunningConsumer,
    create_applied_table,
    envelope,
    running_consumer,
    wait_for,
)
from support.schemas import service_schema

pytestmark = pytest.mark.integration


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


class _Statements:
    """A connection that writes down the statements sent through it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.sent: list[str] = []

    async def execute(self, sql: str, *args: object) -> str:
        self.sent.append(sql)
        return await self._conn.execute(sql, *args)

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        self.sent.append(sql)
        return await self._conn.fetch(sql, *args)


async def test_a_partitions_row_is_made_once_and_again_when_it_is_gone(
    kafka_ready: StackUrls, pool: asyncpg.Pool
) -> None:
    """The row of a partition met before is not inserted again each batch; one that
    disappeared (a swapped-in schema without it) is made again, its batch not lost."""
    store = PostgresOffsetStore(pool, "g-rows")
    tp = TopicPartition(TOPIC, 2)
    records = [RawRecord(TOPIC, 2, offset, None, b"", (), 0) for offset in (0, 1)]

    async def batch(upto: int) -> tuple[list[int], int]:
        async with pool.acquire() as conn, conn.transaction():
            seen = _Statements(conn)
            kept = [r.offset for r in await store.begin(seen, records)]  # type: ignore[arg-type]
            await store.store(conn, {tp: upto})
        made = sum(sql.startswith("INSERT INTO projector_offsets (") for sql in seen.sent)
        return kept, made

    assert await batch(1) == ([0, 1], 1)  # met first: its row is made
    assert await batch(2) == ([1], 0)  # known: only locked
    await pool.execute("DELETE FROM projector_offsets WHERE consumer_group = 'g-rows'")
    assert await batch(2) == ([0, 1], 1)  # gone: made again, the batch kept whole
    assert (
        await pool.fetchval(
            "SELECT next_offset FROM projector_offsets WHERE consumer_group = 'g-rows'"
        )
        == 2
    )


class MemberApplies(ApplyEveryRecord):
    """Like `ApplyEveryRecord`, and writes down which member applied each record and from
    which partition, so the test sees who did the work."""

    def __init__(self, project: str, member: str) -> None:
        super().__init__(project)
        self._member = member

    async def process(self, conn: asyncpg.Connection, records: Sequence[DecodedRecord]) -> None:
        await conn.execute(
            "INSERT INTO applied_by (member, event_id, partition, record_offset) "
            "SELECT $1, * FROM unnest($2::uuid[], $3::int[], $4::bigint[])",
            self._member,
            [r.body.event_id for r in records],
            [r.raw.partition for r in records],
            [r.raw.offset for r in records],
        )

    def committed(self) -> None:
        return None


PARTITIONS = frozenset(TopicPartition(TOPIC, p) for p in range(Topics.RUN_EVENTS.partitions))


async def _produce_to_every_partition(
    urls: StackUrls, project: str, phase: str, per_partition: int
) -> set[uuid.UUID]:
    """`per_partition` records on each partition of the topic (explicit partitions, so no
    member's share can be left without records by the keys' hashing)."""
    producer = create_producer(urls.settings().kafka)
    await producer.start()
    sent: set[uuid.UUID] = set()
    try:
        futures = []
        for tp in sorted(PARTITIONS):
            for n in range(per_partition):
                env = envelope(project, f"{project}-{phase}-{tp.partition}-{n}", 1)
                sent.add(env.event_id)
                futures.append(
                    await producer.send(
                        TOPIC,
                        CODEC.encode(env),
                        key=env.stream_id.encode(),
                        partition=tp.partition,
                        headers=record_headers(env, make_traceparent(env.trace_id)),
                    )
                )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


def _owned(rc: RunningConsumer) -> frozenset[TopicPartition]:
    assert rc.consumer.consumer is not None
    return frozenset(tp for tp in rc.consumer.consumer.assignment() if tp.topic == TOPIC)


def _numbers(partitions: frozenset[TopicPartition]) -> list[int]:
    return sorted(tp.partition for tp in partitions)


async def test_two_members_and_a_departure_apply_every_record_once(
    kafka_ready: StackUrls, pool: asyncpg.Pool
) -> None:
    """Two members of one group split the topic, each applies the records of its own
    partitions, then the second leaves mid-stream and the first takes its partitions
    over: every record applied exactly once, and by the member that owned it.

    Breaks caught: a second member that joins but gets no partitions (or gets them and
    never applies: then the first does all the work and a departure hands nothing
    over, which a count of applied records alone cannot tell), two members owning one
    partition, and a handover that re-applies (or skips) what the leaver had done."""
    settings = kafka_ready.settings()
    project, group = unique("p"), unique("g-")
    await pool.execute(
        "CREATE TABLE applied_by (member text NOT NULL, event_id uuid NOT NULL, "
        "partition int NOT NULL, record_offset bigint NOT NULL)"
    )

    def member(name: str) -> Any:
        return running_consumer(
            settings,
            pool,
            group,
            MemberApplies(project, name),
            offset_store=PostgresOffsetStore(pool, group),
        )

    async def applied(events: set[uuid.UUID]) -> list[asyncpg.Record]:
        return list(
            await pool.fetch(
                "SELECT member, event_id, partition FROM applied_by "
                "WHERE event_id = ANY($1::uuid[])",
                list(events),
            )
        )

    async def all_applied(events: set[uuid.UUID]) -> list[asyncpg.Record] | None:
        rows = await applied(events)
        return rows if {r["event_id"] for r in rows} == events else None

    produced: set[uuid.UUID] = set()
    async with member("first") as first:
        await poll(
            lambda: _some(_owned(first) == PARTITIONS),
            within=30,
            message=lambda: f"the first member owns {_numbers(_owned(first))}, not every partition",
        )
        async with member("second") as second:

            async def split() -> dict[str, frozenset[TopicPartition]] | None:
                owned = {"first": _owned(first), "second": _owned(second)}
                disjoint = not owned["first"] & owned["second"]
                whole = owned["first"] | owned["second"] == PARTITIONS
                return owned if all(owned.values()) and disjoint and whole else None

            owned = await poll(
                split,
                within=30,
                message=lambda: (
                    f"no split between the members: first owns {_numbers(_owned(first))}, "
                    f"second owns {_numbers(_owned(second))}"
                ),
            )
            both = await _produce_to_every_partition(kafka_ready, project, "both", 4)
            produced |= both
            rows = await poll(
                lambda: all_applied(both),
                within=30,
                message=lambda: "the records produced while both were members were not applied",
            )
            assert await split() == owned, "the group rebalanced while both were members"
            for name, partitions in owned.items():
                mine = [r for r in rows if r["member"] == name]
                assert mine, f"the {name} member applied nothing"
                assert {r["partition"] for r in mine} == {tp.partition for tp in partitions}
            # The second leaves with records of its partitions still arriving.
            produced |= await _produce_to_every_partition(kafka_ready, project, "leaving", 4)
        await poll(
            lambda: _some(_owned(first) == PARTITIONS),
            within=30,
            message=lambda: f"after the departure the first owns only {_numbers(_owned(first))}",
        )
        after = await _produce_to_every_partition(kafka_ready, project, "after", 4)
        produced |= after
        await poll(
            lambda: all_applied(produced),
            within=40,
            message=lambda: "not every record was applied after the departure",
        )
        taken_over = {tp.partition for tp in owned["second"]}
        rows = await applied(after)
        assert {r["partition"] for r in rows if r["member"] == "first"} >= taken_over
    # Both members have left: nothing more can land, so this count is final.
    rows = await pool.fetch("SELECT event_id FROM applied_by")
    assert len(rows) == len(produced), "some record was applied twice"
    assert {r["event_id"] for r in rows} == produced


async def _some(value: bool) -> bool | None:
    return True if value else None
