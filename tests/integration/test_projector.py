"""The projector service against the real broker and Postgres: a run's events become its
`runs` row and `timeline`, exactly once, never backwards, and only for the batch's tenants."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from awooop.contracts.events.payloads.gateway import ToolCallSucceeded
from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.events.payloads.run import (
    RunCompleted,
    RunStarted,
    RunTimedOut,
    ToolCallRequested,
    ToolResultAccepted,
)
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.dead_letter import (
    DLQ_HEADER_CONSUMER_GROUP,
    DLQ_HEADER_ERROR_CODE,
    DLQ_HEADER_ORIGIN_OFFSET,
)
from awooop.contracts.records.envelope import Envelope, new_event_id, new_trace_id
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.producer import create_producer
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.postgres.tenant import set_tenants
from awooop.infra.runner import ServiceRunner
from awooop.infra.settings import asyncpg_dsn
from awooop.projector.app import spec
from awooop.projector.handlers import ReadModelProjector
from support.infra import StackUrls, migrated, unique
from support.pipeline import wait_for
from support.projector_checks import send_in_order

pytestmark = pytest.mark.integration

CODEC = EnvelopeCodec()
GROUP = spec().consumer_group
REVISION = "demo-agent@1:0123456789ab"
SECRET_ARGUMENT = "db-secret-host"


def build_run(project: str, at: datetime) -> list[Envelope[Any]]:
    """A whole run: message, start, tool call, its result, acceptance and the reply."""
    ingress_id, trace = new_event_id(), new_trace_id()
    run_id, subject = str(ingress_id), f"{project}:telegram:42"
    call_id = f"{run_id}:1"

    def event(payload: Any, second: int, stream: tuple[str, str, int], who: str) -> Any:
        return new_envelope(
            payload,
            occurred_at=at + timedelta(seconds=second),
            project_id=project,
            stream_type=stream[0],
            stream_id=stream[1],
            stream_seq=stream[2],
            trace_id=trace,
            correlation_id=run_id,
            causation_id=None if who == "ingress" else run_id,
            actor=f"service:{who}",
            producer=who,
            event_id=ingress_id if who == "ingress" else None,
        )

    run = ("run", run_id)
    return [
        event(
            MessageReceived(
                channel_type="telegram",
                provider_event_id=f"7:{ingress_id.int % 10**6}",
                platform_subject_id=subject,
                chat_id="42",
                text="is the database healthy?",
                display_text="is the database healthy?",
                received_at=at,
                agent_id="demo-agent",
                revisions=(),
            ),
            0,
            ("inbound", f"{project}:telegram:7", 1),
            "ingress",
        ),
        event(
            RunStarted(
                agent_id="demo",
                channel_type="telegram",
                chat_id="42",
                platform_subject_id=subject,
                trigger_event_id=ingress_id,
                mode="shadow",
                revisions=(REVISION,),
                agent_revision=REVISION,
            ),
            1,
            (*run, 1),
            "runtime",
        ),
        event(
            ToolCallRequested(
                call_id=call_id,
                tool="status__demo",
                arguments={"host": SECRET_ARGUMENT},
                execute_before=at + timedelta(minutes=1),
                revisions=(REVISION,),
            ),
            2,
            (*run, 2),
            "runtime",
        ),
        event(
            ToolCallSucceeded(call_id=call_id, result={"status": "green"}, revisions=(REVISION,)),
            3,
            ("tool_call", call_id, 1),
            "mcp_gateway",
        ),
        event(
            ToolResultAccepted(call_id=call_id, outcome="succeeded", result={"status": "green"}),
            4,
            (*run, 3),
            "runtime",
        ),
        event(RunCompleted(reply="all green", suppressed=True), 5, (*run, 4), "runtime"),
    ]


async def projected(pool: asyncpg.Pool, sent: Sequence[Any]) -> None:
    """Wait until the projector's stored offsets are past every sent record."""

    async def past_all() -> bool:
        rows = await pool.fetch(
            "SELECT topic, partition, next_offset FROM projector_offsets WHERE consumer_group = $1",
            GROUP,
        )
        stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        return all(stored.get((m.topic, m.partition), 0) > m.offset for m in sent)

    await wait_for(past_all, within=60, message="the projector to pass the sent records")


async def run_row(pool: asyncpg.Pool, project: str, run_id: str) -> dict[str, Any] | None:
    async with pool.acquire() as conn, conn.transaction():
        await set_tenants(conn, [project])
        row = await conn.fetchrow(
            "SELECT xmin::text AS version, * FROM runs WHERE project_id = $1 AND run_id = $2",
            project,
            run_id,
        )
    return dict(row) if row is not None else None


async def timeline(pool: asyncpg.Pool, project: str, run_id: str) -> list[dict[str, Any]]:
    async with pool.acquire() as conn, conn.transaction():
        await set_tenants(conn, [project])
        rows = await conn.fetch(
            "SELECT * FROM timeline WHERE project_id = $1 AND run_id = $2 "
            "ORDER BY occurred_at, event_id",
            project,
            run_id,
        )
    return [dict(r) for r in rows]


@pytest.fixture(scope="module")
async def projector(kafka_ready: StackUrls) -> AsyncIterator[ServiceRunner]:
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    yield runner
    await runner.stop()


@pytest.fixture(scope="module")
async def producer(kafka_ready: StackUrls) -> AsyncIterator[AIOKafkaProducer]:
    producer = create_producer(kafka_ready.settings().kafka, client_id="projector-test")
    await producer.start()
    yield producer
    await producer.stop()


def _pool(runner: ServiceRunner) -> asyncpg.Pool:
    assert runner.pool is not None
    return runner.pool


async def _projected_run(
    projector: ServiceRunner, producer: AIOKafkaProducer
) -> tuple[str, str, list[Envelope[Any]]]:
    project = unique("pr")
    events = build_run(project, datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    await projected(_pool(projector), await send_in_order(producer, events))
    return project, events[0].correlation_id, events


async def test_a_run_projects_into_its_row_and_its_timeline(
    projector: ServiceRunner, producer: AIOKafkaProducer
) -> None:
    project, run_id, events = await _projected_run(projector, producer)
    pool = _pool(projector)
    row = await run_row(pool, project, run_id)
    assert row is not None
    at = events[0].occurred_at
    assert {k: row[k] for k in ("state", "last_stream_seq", "agent_id", "mode")} == {
        "state": "completed",
        "last_stream_seq": 4,
        "agent_id": "demo",
        "mode": "shadow",
    }
    assert (row["platform_subject_id"], row["chat_id"], row["channel_type"]) == (
        f"{project}:telegram:42",
        "42",
        "telegram",
    )
    assert (row["started_at"], row["completed_at"]) == (
        at + timedelta(seconds=1),
        at + timedelta(seconds=5),
    )
    assert (row["reply"], row["suppressed"], row["error_code"]) == ("all green", True, None)
    assert row["trigger_text"] == "is the database healthy?"
    rows = await timeline(pool, project, run_id)
    assert [r["event_id"] for r in rows] == [e.event_id for e in events]
    assert [r["event_type"] for r in rows] == [
        "ingress.message_received",
        "run.started",
        "run.tool_call_requested",
        "gateway.tool_call_succeeded",
        "run.tool_result_accepted",
        "run.completed",
    ]
    assert [r["stream_type"] for r in rows] == ["inbound", "run", "run", "tool_call", "run", "run"]
    assert all(SECRET_ARGUMENT not in r["summary"] for r in rows)
    assert '"argument_names":["host"]' in rows[2]["summary"].replace(" ", "")


async def test_a_run_that_timed_out_reads_timeout(
    projector: ServiceRunner, producer: AIOKafkaProducer
) -> None:
    project = unique("pt")
    at = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    message, started, requested = build_run(project, at)[:3]
    timed_out = new_envelope(
        RunTimedOut(code="E-RUN-TIMEOUT", reason="the run passed its timeout"),
        occurred_at=at + timedelta(seconds=300),
        project_id=project,
        stream_type="run",
        stream_id=started.stream_id,
        stream_seq=3,
        trace_id=started.trace_id,
        correlation_id=started.correlation_id,
        causation_id=None,
        actor="service:runtime",
        producer="runtime",
    )
    pool = _pool(projector)
    await projected(pool, await send_in_order(producer, [message, started, requested, timed_out]))
    row = await run_row(pool, project, started.correlation_id)
    assert row is not None
    assert (row["state"], row["error_code"], row["last_stream_seq"], row["completed_at"]) == (
        "timeout",
        "E-RUN-TIMEOUT",
        3,
        at + timedelta(seconds=300),
    )
    rows = await timeline(pool, project, started.correlation_id)
    assert rows[-1]["event_type"] == "run.timed_out"
    assert "E-RUN-TIMEOUT" in rows[-1]["summary"]


async def test_redelivered_records_change_nothing(
    projector: ServiceRunner, producer: AIOKafkaProducer
) -> None:
    project, run_id, events = await _projected_run(projector, producer)
    pool = _pool(projector)
    before_row = await run_row(pool, project, run_id)
    before_timeline = await timeline(pool, project, run_id)
    # The same bytes again, at new offsets: only the merges stand between them and a change.
    await projected(pool, await send_in_order(producer, events))
    await projected(pool, await send_in_order(producer, list(reversed(events))))
    assert await run_row(pool, project, run_id) == before_row  # xmin too: not even rewritten
    assert await timeline(pool, project, run_id) == before_timeline


async def test_an_older_run_event_never_moves_the_state_back(
    projector: ServiceRunner, producer: AIOKafkaProducer
) -> None:
    project, run_id, events = await _projected_run(projector, producer)
    pool = _pool(projector)
    requested, accepted = events[2], events[4]
    late_accepted = accepted.model_copy(update={"event_id": new_event_id()})
    await projected(pool, await send_in_order(producer, [requested, late_accepted]))
    row = await run_row(pool, project, run_id)
    assert row is not None
    assert (row["state"], row["last_stream_seq"]) == ("completed", 4)
    assert len(await timeline(pool, project, run_id)) == 7  # every event keeps its own row

    # A run whose end arrives before its start: the start fills its columns, not the state.
    other = build_run(project, datetime(2026, 3, 2, tzinfo=UTC))
    other_id = other[0].correlation_id
    await projected(pool, await send_in_order(producer, [other[5]]))
    await projected(pool, await send_in_order(producer, [other[1], other[2]]))
    row = await run_row(pool, project, other_id)
    assert row is not None
    assert (row["state"], row["last_stream_seq"], row["agent_id"], row["reply"]) == (
        "completed",
        4,
        "demo",
        "all green",
    )
    assert row["started_at"] == other[1].occurred_at


async def test_the_merge_is_the_same_whatever_the_order_and_batching(
    projector: ServiceRunner,
) -> None:
    """A rebuild folds the log in other batches than the live projector: same rows."""
    pool, processor = _pool(projector), ReadModelProjector()
    live, rebuilt = unique("pl"), unique("pb")
    events = build_run(live, datetime(2026, 3, 3, tzinfo=UTC))
    copies = [e.model_copy(update={"project_id": rebuilt}) for e in events]

    async def apply(batch: Sequence[Envelope[Any]]) -> None:
        raw = RawRecord(Topics.RUN_EVENTS.name, 0, 0, None, b"", (), 0)
        async with pool.acquire() as conn, conn.transaction():
            await processor.process(conn, [DecodedRecord(raw, e) for e in batch])

    await apply(events)
    for env in [*reversed(copies), copies[2], copies[0]]:
        await apply([env])
    run_id = events[0].correlation_id

    def comparable(row: dict[str, Any] | None) -> dict[str, Any]:
        assert row is not None
        return {k: v for k, v in row.items() if k not in ("project_id", "version")}

    assert comparable(await run_row(pool, rebuilt, run_id)) == comparable(
        await run_row(pool, live, run_id)
    )
    assert [comparable(r) for r in await timeline(pool, rebuilt, run_id)] == [
        comparable(r) for r in await timeline(pool, live, run_id)
    ]


async def test_row_level_security_holds_the_projector_to_its_batch_tenants(
    projector: ServiceRunner, producer: AIOKafkaProducer, kafka_ready: StackUrls
) -> None:
    project, run_id, _events = await _projected_run(projector, producer)
    pool = _pool(projector)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM runs WHERE project_id = $1", project) == 0
        assert await conn.fetchval("SELECT count(*) FROM timeline") == 0
        flags = await conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relname IN ('runs', 'timeline') AND relnamespace = 'projector'::regnamespace"
        )
        assert sorted(tuple(f) for f in flags) == [("runs", True, True), ("timeline", True, True)]
        async with conn.transaction():
            await set_tenants(conn, [unique("other")])
            assert await conn.fetchval("SELECT count(*) FROM runs") == 0
            with pytest.raises(asyncpg.InsufficientPrivilegeError):  # WITH CHECK refuses it
                await conn.execute(
                    "INSERT INTO runs (project_id, run_id) VALUES ($1, $2)", project, new_event_id()
                )
        async with conn.transaction():
            await set_tenants(conn, [project, unique("other")])
            assert await conn.fetchval("SELECT count(*) FROM runs") == 1
    api = await asyncpg.connect(
        asyncpg_dsn(kafka_ready.settings().api_database_url()),
        server_settings={"search_path": "projector"},
    )
    try:
        role = await api.fetchrow(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert (role["rolsuper"], role["rolbypassrls"]) == (False, False)
        assert await api.fetchval("SELECT count(*) FROM runs") == 0
        async with api.transaction():
            await api.execute("SELECT set_config('app.project_id', $1, true)", project)
            assert await api.fetchval("SELECT run_id::text FROM runs") == run_id
            assert await api.fetchval("SELECT count(*) FROM timeline") == 6
        async with api.transaction():
            await api.execute("SELECT set_config('app.project_id', $1, true)", project)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):  # SELECT is all it has
                await api.execute("DELETE FROM runs")
    finally:
        await api.close()


async def test_an_event_of_no_run_goes_to_the_dlq_and_its_partition_flows(
    projector: ServiceRunner, producer: AIOKafkaProducer, kafka_ready: StackUrls
) -> None:
    project = unique("pd")
    events = build_run(project, datetime(2026, 3, 4, tzinfo=UTC))
    stray = events[5].model_copy(update={"correlation_id": f"{project}-no-run"})
    run_id = events[0].correlation_id
    topic = Topics.RUN_EVENTS.name
    headers = record_headers(stray, make_traceparent(stray.trace_id))
    # The run's own key: the stray record sits before the run's events on one partition.
    poison = await producer.send_and_wait(
        topic, CODEC.encode(stray), key=run_id.encode(), headers=headers
    )
    pool = _pool(projector)
    await projected(pool, [poison, *await send_in_order(producer, events)])
    row = await run_row(pool, project, run_id)
    assert row is not None
    assert row["state"] == "completed"

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_ready.kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(Topics.DLQ.name, p) for p in range(Topics.DLQ.partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        found: list[dict[str, str]] = []
        deadline = asyncio.get_running_loop().time() + 20
        while not found and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for record in records:
                    h = {k: v.decode() for k, v in record.headers}
                    if h.get(DLQ_HEADER_CONSUMER_GROUP) == GROUP and h.get("event_id") == str(
                        stray.event_id
                    ):
                        found.append(h)
    finally:
        await consumer.stop()
    assert found, "the stray event reached no DLQ entry of the projector's group"
    assert found[0][DLQ_HEADER_ERROR_CODE] == "E-DLQ-INVALID"
    assert found[0][DLQ_HEADER_ORIGIN_OFFSET] == str(poison.offset)
