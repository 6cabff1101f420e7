"""The outbox relay against a real broker: order, crash after acknowledgement, two relays."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import asyncpg
import pytest

from awooop.infra.kafka.producer import create_producer
from awooop.infra.postgres import event_store
from awooop.infra.relay import OutboxRelay
from support.infra import StackUrls, unique
from support.pipeline import (
    applying_processor,
    create_applied_table,
    new_event,
    running_consumer,
    wait_for,
)
from support.schemas import service_schema

pytestmark = pytest.mark.integration


class Crash(Exception):
    """Stands for the process dying at the crash point."""


async def _append_streams(pool: asyncpg.Pool, project: str, streams: int, per: int) -> int:
    async with pool.acquire() as conn, conn.transaction():
        await event_store.append(
            conn,
            [
                new_event(project, f"{project}-run-{s}", seq)
                for seq in range(1, per + 1)
                for s in range(streams)
            ],
        )
    return streams * per


def _relay(pool: asyncpg.Pool, urls: StackUrls, **kwargs: object) -> OutboxRelay:
    settings = urls.settings()
    return OutboxRelay(pool, "unused", lambda: create_producer(settings.kafka), **kwargs)  # type: ignore[arg-type]


async def _applied(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT event_id, stream_id, stream_seq FROM applied ORDER BY position")


def _assert_once_and_in_order(rows: list[asyncpg.Record], expected: int) -> None:
    assert len(rows) == expected, f"{len(rows)} applications for {expected} events"
    assert len({r["event_id"] for r in rows}) == expected
    per_stream: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        per_stream[row["stream_id"]].append(row["stream_seq"])
    for stream, seqs in per_stream.items():
        assert seqs == sorted(seqs), f"{stream} applied out of order: {seqs}"


@pytest.fixture
async def schemas(kafka_ready: StackUrls) -> tuple[asyncpg.Pool, asyncpg.Pool]:
    """A producing service's schema and a consuming service's schema."""
    source = await service_schema(kafka_ready.database, unique("src_"))
    sink = await service_schema(kafka_ready.database, unique("sink_"))
    await create_applied_table(sink)
    yield source, sink
    await source.close()
    await sink.close()


async def test_crash_after_ack_before_commit_republishes_and_the_inbox_applies_once(
    kafka_ready: StackUrls, schemas: tuple[asyncpg.Pool, asyncpg.Pool]
) -> None:
    source, sink = schemas
    project = unique("p")
    total = await _append_streams(source, project, streams=6, per=5)

    async def crash_once(stage: str, positions: list[int]) -> None:
        assert stage == "acknowledged"
        raise Crash(f"killed after the broker acknowledged {len(positions)} records")

    crashing = _relay(source, kafka_ready, crash_point=crash_once)
    with pytest.raises(Crash):
        await crashing.relay_once()
    await crashing.close()
    assert await source.fetchval("SELECT count(*) FROM outbox") == total  # nothing marked sent

    restarted = _relay(source, kafka_ready)
    assert await restarted.relay_once() == total  # republished after the "restart"
    assert await restarted.relay_once() == 0
    await restarted.close()

    settings = kafka_ready.settings()
    group = unique("g-")
    async with running_consumer(settings, sink, group, applying_processor(project, group)) as rc:
        await wait_for(
            lambda: sink.fetchval("SELECT count(*) = $1 FROM applied", total),
            message="every event applied",
        )
        # The duplicates were really on the topic: the consumer decoded them all.
        await wait_for(lambda: rc.consumer.processed >= 2 * total, message="both copies read")
        await asyncio.sleep(0.5)  # a late duplicate would land here
    _assert_once_and_in_order(await _applied(sink), total)


async def test_two_relays_at_once_lose_nothing_and_each_event_applies_once(
    kafka_ready: StackUrls, schemas: tuple[asyncpg.Pool, asyncpg.Pool]
) -> None:
    source, sink = schemas
    project = unique("p")
    total = await _append_streams(source, project, streams=4, per=3)

    # First, deterministically: while one relay holds its batch open (sent, not yet
    # committed), the other is fenced out; once it commits, the other takes the next.
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold_batch_open(_stage: str, _positions: list[int]) -> None:
        inside.set()
        await release.wait()

    holding = _relay(source, kafka_ready, batch_size=5, crash_point=hold_batch_open)
    other = _relay(source, kafka_ready, batch_size=5)
    held = asyncio.create_task(holding.relay_once())
    await inside.wait()
    assert await other.relay_once() == 0  # the advisory lock is taken: nothing sent
    release.set()
    assert await held == 5
    assert await other.relay_once() == 5
    await holding.close()
    await other.close()

    # Then both run loops at once while writers keep appending.
    first = _relay(source, kafka_ready, batch_size=7, poll_interval=0.05)
    second = _relay(source, kafka_ready, batch_size=7, poll_interval=0.05)
    tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    for _round in range(10):
        async with source.acquire() as conn, conn.transaction():
            versions = await event_store.lock_streams(
                conn, [f"{project}-run-{s}" for s in range(4)]
            )
            await event_store.append(
                conn, [new_event(project, sid, v + 1) for sid, v in versions.items()]
            )
        total += 4
        first.wake()
        second.wake()
        await asyncio.sleep(0.02)
    await wait_for(
        lambda: source.fetchval("SELECT count(*) = 0 FROM outbox"), message="outbox drained"
    )
    assert not any(task.done() for task in tasks)  # both ran the whole time
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await first.close()
    await second.close()
    assert 10 + first.published + second.published >= total

    settings = kafka_ready.settings()
    group = unique("g-")
    async with running_consumer(settings, sink, group, applying_processor(project, group)):
        await wait_for(
            lambda: sink.fetchval("SELECT count(*) >= $1 FROM applied", total),
            message="every event applied",
        )
        await asyncio.sleep(0.5)
    _assert_once_and_in_order(await _applied(sink), total)


async def test_relay_keeps_per_partition_order_across_batches(
    kafka_ready: StackUrls, schemas: tuple[asyncpg.Pool, asyncpg.Pool]
) -> None:
    source, sink = schemas
    project = unique("p")
    total = await _append_streams(source, project, streams=3, per=40)
    relay = _relay(source, kafka_ready, batch_size=25)
    sent = 0
    while batch := await relay.relay_once():
        sent += batch
    await relay.close()
    assert sent == total
    settings = kafka_ready.settings()
    group = unique("g-")
    async with running_consumer(settings, sink, group, applying_processor(project, group)):
        await wait_for(
            lambda: sink.fetchval("SELECT count(*) = $1 FROM applied", total),
            message="every event applied",
        )
    _assert_once_and_in_order(await _applied(sink), total)
