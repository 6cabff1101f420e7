"""The runtime in one process: a message starts a run, the scripted agent asks for the demo
tool, the result resumes it, and it completes in shadow mode; a double text is rejected.
One batch locks, decides and writes all the runs it touches."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from awooop.contracts.catalogue import builtin_catalogue
from awooop.contracts.envelope import Envelope, new_trace_id
from awooop.contracts.headers import make_traceparent, record_headers
from awooop.contracts.payloads.gateway import ToolCallSucceeded
from awooop.contracts.payloads.ingress import MessageReceived
from awooop.contracts.topics import Topics
from awooop.contracts.typed_envelopes import new_envelope
from awooop.infra.kafka.producer import create_producer
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.runner import ServiceRunner
from awooop.runtime.adapters.runs import Lease
from awooop.runtime.app import spec, utc_now
from awooop.runtime.handlers import RuntimeProcessor
from awooop.runtime.scheduler import StepPool
from support.infra import StackUrls, unique
from support.topic_reader import TopicReader

pytestmark = pytest.mark.integration

CATALOGUE, REVISION = builtin_catalogue()


def _message(project: str, user: str, text: str) -> Envelope[Any]:
    event_id_source = new_envelope(
        MessageReceived(
            channel_type="telegram",
            provider_event_id=f"7:{unique('')}",
            platform_subject_id=f"{project}:telegram:{user}",
            chat_id=user,
            text=text,
            received_at=dt.datetime.now(dt.UTC),
        ),
        occurred_at=dt.datetime.now(dt.UTC),
        project_id=project,
        stream_type="inbound",
        stream_id=f"{project}:telegram:{unique('u')}",
        stream_seq=1,
        trace_id=new_trace_id(),
        correlation_id="pending",
        actor="service:ingress",
        producer="ingress",
    )
    return event_id_source.model_copy(update={"correlation_id": str(event_id_source.event_id)})


def _tool_result(request: Envelope[Any]) -> Envelope[Any]:
    return new_envelope(
        ToolCallSucceeded(
            call_id=request.payload.call_id,
            result={"service": "checkout", "status": "healthy"},
            revision=request.payload.revision,
        ),
        occurred_at=dt.datetime.now(dt.UTC),
        project_id=request.project_id,
        stream_type="tool_call",
        stream_id=request.payload.call_id,
        stream_seq=1,
        trace_id=request.trace_id,
        correlation_id=request.correlation_id,
        causation_id=str(request.event_id),
        actor="service:mcp_gateway",
        producer="mcp_gateway",
    )


async def _send(urls: StackUrls, topic: str, key: str, env: Envelope[Any]) -> None:
    from awooop.contracts.codec import EnvelopeCodec

    producer = create_producer(urls.settings().kafka)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            EnvelopeCodec().encode(env),
            key=key.encode(),
            headers=record_headers(env, make_traceparent(env.trace_id)),
        )
    finally:
        await producer.stop()


async def test_a_message_becomes_a_completed_shadow_run(kafka_ready: StackUrls) -> None:
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await runner.start()
    project = unique("rt")
    try:
        first = _message(project, "42", "is checkout healthy?")
        key = f"{project}:{first.payload.platform_subject_id}"
        await _send(kafka_ready, Topics.INGRESS_EVENTS.name, key, first)
        run_id = str(first.event_id)
        async with TopicReader(kafka_ready.kafka, Topics.RUN_EVENTS.name) as reader:

            def of_run(seen: list[Envelope[Any]]) -> list[Envelope[Any]]:
                return [e for e in seen if e.correlation_id == run_id]

            seen = await reader.until(
                lambda s: any(e.event_type == "run.tool_call_requested" for e in of_run(s))
            )
            request = next(e for e in of_run(seen) if e.event_type == "run.tool_call_requested")
            assert request.payload.tool == "status__demo"
            assert request.payload.revision.startswith("builtin:")

            # A double text while the run waits for its tool: rejected on the run.
            second = _message(project, "42", "hello??")
            await _send(kafka_ready, Topics.INGRESS_EVENTS.name, key, second)
            await _send(kafka_ready, Topics.GATEWAY_EVENTS.name, run_id, _tool_result(request))
            seen = await reader.until(
                lambda s: any(e.event_type == "run.completed" for e in of_run(s))
            )
        events = of_run(seen)
        types = [e.event_type for e in events]
        assert types[0] == "run.started"
        assert types[-1] == "run.completed"
        assert "run.message_rejected" in types
        assert "run.tool_result_accepted" in types
        assert [e.stream_seq for e in events] == list(range(1, len(events) + 1))
        completed = events[-1]
        assert completed.payload.suppressed is True
        assert "healthy" in completed.payload.reply
        assert all(e.trace_id == first.trace_id for e in events)
        assert not any(e.correlation_id == str(second.event_id) for e in seen)  # no 2nd run
        assert runner.pool is not None
        state = await runner.pool.fetchval(
            "SELECT state FROM runs WHERE run_id = $1", first.event_id
        )
        assert state == "completed"
    finally:
        await runner.stop()


class _Submitted(StepPool):
    """A step pool that only records what the processor hands it."""

    def __init__(self, pool: Any) -> None:
        super().__init__(
            pool, "batch-owner", lambda: None, catalogue=CATALOGUE, clock=utc_now, service="runtime"
        )
        self.leases: list[Lease] = []

    def submit(self, lease: Lease) -> None:
        self.leases.append(lease)


def _record(env: Envelope[Any], offset: int) -> DecodedRecord:
    return DecodedRecord(RawRecord("t", 0, offset, None, b"", (), 0), env)


async def test_one_batch_locks_decides_and_writes_its_runs_at_once(
    kafka_ready: StackUrls,
) -> None:
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await runner.start()
    project = unique("rtb")
    try:
        assert runner.pool is not None
        steps = _Submitted(runner.pool)
        processor = RuntimeProcessor(
            steps, catalogue=CATALOGUE, revision=REVISION, clock=utc_now, service="runtime"
        )
        first, second = _message(project, "1", "hi"), _message(project, "1", "again")
        other = _message(project, "2", "hello")
        batch = [_record(first, 0), _record(second, 1), _record(other, 2), _record(first, 3)]
        async with runner.pool.acquire() as conn, conn.transaction():
            await processor.process(conn, batch)
        processor.committed()
        assert sorted((x.run_id, x.epoch, x.attempt) for x in steps.leases) == sorted(
            [(first.event_id, 1, 1), (other.event_id, 1, 1)]
        )
        rows = {
            r["run_id"]: r
            for r in await runner.pool.fetch(
                "SELECT run_id, state, version, lease_owner, lease_epoch, attempt, "
                " wake_at IS NOT NULL AS due, lease_until > now() AS held, "
                " timeout_at > now() AS timer FROM runs WHERE project_id = $1",
                project,
            )
        }
        assert set(rows) == {first.event_id, other.event_id}
        started = rows[first.event_id]
        assert (started["state"], started["version"], started["lease_owner"]) == (
            "pending",
            2,
            "batch-owner",
        )
        assert started["due"]
        assert started["held"]
        assert started["timer"]

        # The run waits for its tool; its answer and a double text arrive in one batch.
        call_id = f"{first.event_id}:0"
        await runner.pool.execute(
            "UPDATE runs SET state = 'waiting_tool', step = 1, pending_call_id = $2, "
            " lease_owner = NULL, lease_until = NULL, wake_at = NULL, attempt = 0 "
            "WHERE run_id = $1",
            first.event_id,
            call_id,
        )
        answer = new_envelope(
            ToolCallSucceeded(call_id=call_id, result={"status": "healthy"}, revision=REVISION),
            occurred_at=dt.datetime.now(dt.UTC),
            project_id=project,
            stream_type="tool_call",
            stream_id=call_id,
            stream_seq=1,
            trace_id=first.trace_id,
            correlation_id=str(first.event_id),
            actor="service:mcp_gateway",
            producer="mcp_gateway",
        )
        third = _message(project, "1", "and?")
        steps.leases.clear()
        async with runner.pool.acquire() as conn, conn.transaction():
            await processor.process(conn, [_record(answer, 4), _record(third, 5)])
        processor.committed()
        assert [(x.run_id, x.epoch) for x in steps.leases] == [(first.event_id, 2)]
        row = await runner.pool.fetchrow(
            "SELECT state, version, pending_call_id, last_result->>'status' AS status, "
            " lease_owner, lease_epoch, attempt FROM runs WHERE run_id = $1",
            first.event_id,
        )
        assert dict(row) == {
            "state": "running",
            "version": 4,
            "pending_call_id": None,
            "status": "healthy",
            "lease_owner": "batch-owner",
            "lease_epoch": 2,
            "attempt": 1,
        }
        seqs = await runner.pool.fetch(
            "SELECT stream_seq FROM events WHERE stream_id = $1 ORDER BY stream_seq",
            str(first.event_id),
        )
        assert [r["stream_seq"] for r in seqs] == [1, 2, 3, 4]
    finally:
        await runner.stop()
