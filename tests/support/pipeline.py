"""Pieces for Kafka-path tests: test events, an applying processor, a running consumer."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from awooop.contracts.events.payloads.run import RunCompleted
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.handler_table import HandlerContext, HandlerTable
from awooop.infra.kafka.consumer import BatchConsumer
from awooop.infra.kafka.dlq import DeadLetters
from awooop.infra.kafka.offsets import OffsetStore
from awooop.infra.kafka.producer import DLQ_REQUEST_BYTES, create_producer
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.readiness import Readiness
from awooop.infra.settings import Settings

CODEC = EnvelopeCodec()
TOPIC = Topics.RUN_EVENTS.name


def envelope(project: str, stream_id: str, seq: int, reply: str = "ok") -> Envelope[Any]:
    return new_envelope(
        RunCompleted(reply=reply, suppressed=True),
        occurred_at=dt.datetime.now(dt.UTC),
        project_id=project,
        stream_type="run",
        stream_id=stream_id,
        stream_seq=seq,
        trace_id=new_trace_id(),
        # A run id is a UUID; derive one per test stream so projectors sharing
        # the session's topics can fold these events too.
        correlation_id=str(uuid.uuid5(uuid.NAMESPACE_URL, stream_id)),
        actor="service:test",
        producer="runtime",
    )


def new_event(project: str, stream_id: str, seq: int, reply: str = "ok") -> Any:
    from awooop.infra.postgres.event_store import NewEvent

    env = envelope(project, stream_id, seq, reply)
    return NewEvent(
        event_id=env.event_id,
        stream_type="run",
        stream_id=stream_id,
        stream_seq=seq,
        topic=TOPIC,
        key=stream_id.encode(),
        headers=record_headers(env, make_traceparent(env.trace_id)),
        data=CODEC.encode(env),
    )


async def create_applied_table(pool: asyncpg.Pool) -> None:
    # No unique key on purpose: a second application must show up as a second row.
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS applied "
        "(event_id uuid NOT NULL, stream_id text NOT NULL, stream_seq int NOT NULL, "
        " position bigserial)"
    )


def applying_processor(
    project: str, name: str, fail_on: Callable[[Envelope[Any]], bool] | None = None
) -> HandlerTable:
    """Writes one `applied` row per new `run.completed` of `project`."""

    async def on_completed(ctx: HandlerContext, env: Envelope[Any]) -> None:
        if env.project_id != project:
            return
        if fail_on is not None and fail_on(env):
            raise ValueError(f"handler refuses {env.stream_id}")
        await ctx.conn.execute(
            "INSERT INTO applied (event_id, stream_id, stream_seq) VALUES ($1, $2, $3)",
            env.event_id,
            env.stream_id,
            env.stream_seq,
        )

    return HandlerTable(name, {"run.completed": on_completed}, CODEC)


class ApplyEveryRecord:
    """A processor of `project`'s records only (by header), with no inbox: one `applied`
    row per record applied, so only the offset store stands between it and duplicates."""

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


@dataclass
class RunningConsumer:
    consumer: BatchConsumer
    readiness: Readiness
    dead_letters: DeadLetters
    task: asyncio.Task[None]


@asynccontextmanager
async def running_consumer(
    settings: Settings,
    pool: asyncpg.Pool,
    group: str,
    processor: HandlerTable,
    *,
    topics: tuple[str, ...] = (TOPIC,),
    offset_store: OffsetStore | None = None,
    epoch_confirmed: Callable[[], Any] | None = None,
) -> AsyncIterator[RunningConsumer]:
    producer = create_producer(
        settings.kafka, client_id=f"{group}-dlq", max_request_size=DLQ_REQUEST_BYTES
    )
    await producer.start()
    readiness = Readiness()
    readiness.started()
    dead_letters = DeadLetters(producer, group)
    consumer = BatchConsumer(
        settings=settings.kafka,
        group=group,
        topics=topics,
        processor=processor,
        pool=pool,
        dead_letters=dead_letters,
        readiness=readiness,
        offset_store=offset_store,
        epoch_confirmed=epoch_confirmed,
        max_backoff=1.0,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        yield RunningConsumer(consumer, readiness, dead_letters, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await consumer.stop()
        await producer.stop()


async def wait_for(
    condition: Callable[[], Any], *, within: float = 30.0, message: str = "condition"
) -> None:
    """Poll an async or sync condition until it holds, or fail with `message`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {message}")
        await asyncio.sleep(0.05)
