"""Scenarios of the run's pure decisions: given a run, when this arrives, then these events.

The fold and the recording take the clock's reading and the service name from their
caller; encoding for the event store happens only at the edge (`adapters.run_events`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from awooop.contracts.events.payloads.gateway import ToolCallBlocked, ToolCallFailed
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.errors import E_RUN_ATTEMPTS, E_RUN_TIMEOUT
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.reader import ContractSource
from awooop.infra.kafka.records import RawRecord
from awooop.runtime.adapters.run_events import stored
from awooop.runtime.domain.batch import fold_batch
from awooop.runtime.domain.recording import record
from awooop.runtime.domain.run import Run, give_up, take_step
from awooop.runtime.handlers import STEPS, RuntimeProcessor
from support.contracts import agent_body, view_of

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 5, 4, 8, 30, tzinfo=dt.UTC)
PROJECT = "acme"
VIEW = view_of((PROJECT, {"demo-agent": agent_body()}))
AGENT = VIEW.agent(PROJECT, "demo-agent")
assert AGENT is not None
REVISION = AGENT.ref
SUBJECT = "acme:telegram:7"


def waiting_run(version: int = 2) -> Run:
    run_id = uuid.uuid4()
    return Run(
        run_id=run_id,
        project_id=PROJECT,
        platform_subject_id=SUBJECT,
        agent_id="demo-agent",
        channel_type="telegram",
        chat_id="7",
        mode="shadow",
        revision=REVISION,
        trace_id=new_trace_id(),
        state="waiting_tool",
        version=version,
        step=1,
        pending_call_id=f"{run_id}:0",
    )


def blocked(run: Run) -> Envelope[Any]:
    return new_envelope(
        ToolCallBlocked(
            call_id=run.pending_call_id or "",
            gate=1,
            code="E-MCP-GATE-001",
            revisions=(REVISION,),
        ),
        occurred_at=NOW,
        project_id=PROJECT,
        stream_type="tool_call",
        stream_id=run.pending_call_id or "",
        stream_seq=1,
        trace_id=run.trace_id,
        correlation_id=str(run.run_id),
        actor="service:mcp_gateway",
        producer="mcp_gateway",
    )


def failed(run: Run) -> Envelope[Any]:
    return new_envelope(
        ToolCallFailed(
            call_id=run.pending_call_id or "",
            code="E-MCP-CALL-FAILED",
            reason="boom",
        ),
        occurred_at=NOW,
        project_id=PROJECT,
        stream_type="tool_call",
        stream_id=run.pending_call_id or "",
        stream_seq=1,
        trace_id=run.trace_id,
        correlation_id=str(run.run_id),
        actor="service:mcp_gateway",
        producer="mcp_gateway",
    )


def fold(run: Run, env: Envelope[Any], service: str = "runtime_a") -> list[Envelope[Any]]:
    writes = fold_batch([run], [env], STEPS, contracts=VIEW, now=NOW, service=service)
    return writes.events


@pytest.mark.parametrize(("make", "outcome"), [(blocked, "blocked"), (failed, "failed")])
def test_given_a_waiting_run_when_a_refusal_arrives_then_it_resumes_with_that_outcome(
    make: Any, outcome: str
) -> None:
    run = waiting_run()
    cause = make(run)
    events = fold(run, cause)
    assert [(e.event_type, e.stream_seq) for e in events] == [("run.tool_result_accepted", 3)]
    accepted = events[0]
    assert accepted.payload.outcome == outcome
    assert accepted.causation_id == str(cause.event_id)
    assert (accepted.producer, accepted.actor) == ("runtime_a", "service:runtime_a")
    assert accepted.occurred_at == NOW


def test_given_a_run_past_its_timeout_when_it_gives_up_then_it_timed_out() -> None:
    run = waiting_run(version=5)
    moved, events = record(
        give_up(run, timed_out=True), run.version, causation_id=None, now=NOW, service="runtime"
    )
    assert [(e.event_type, e.stream_seq) for e in events] == [("run.timed_out", 6)]
    assert events[0].payload.code == E_RUN_TIMEOUT.code
    assert (moved.state, moved.version) == ("timeout", 6)


def test_given_a_run_whose_steps_kept_dying_when_it_gives_up_then_it_failed() -> None:
    run = waiting_run()
    moved, events = record(
        give_up(run, timed_out=False), run.version, causation_id=None, now=NOW, service="runtime"
    )
    assert [e.event_type for e in events] == ["run.failed"]
    assert events[0].payload.code == E_RUN_ATTEMPTS.code
    assert moved.state == "failed"


def test_a_step_uses_the_clock_it_is_given() -> None:
    run = Run(**{**waiting_run().__dict__, "state": "pending", "step": 0, "pending_call_id": None})
    decision = take_step(run, AGENT.document, NOW)
    _moved, events = record(decision, run.version, causation_id=None, now=NOW, service="rt")
    request = events[0]
    assert request.event_type == "run.tool_call_requested"
    step_timeout = dt.timedelta(seconds=AGENT.document.step_timeout_seconds)
    assert request.payload.execute_before == NOW + step_timeout
    assert request.occurred_at == NOW


def test_envelopes_are_encoded_at_the_edge_keyed_by_run() -> None:
    run = waiting_run()
    events = fold(run, blocked(run))
    rows = stored(events)
    assert [(r.topic, r.key, r.stream_seq) for r in rows] == [
        (Topics.RUN_EVENTS.name, str(run.run_id).encode(), 3)
    ]
    assert EnvelopeCodec().decode(rows[0].data) == events[0]


def test_the_handler_table_names_every_type_the_processor_handles() -> None:
    processor = RuntimeProcessor(
        None,  # type: ignore[arg-type]  # handles() never touches the step pool
        contracts=ContractSource(VIEW),
        clock=lambda: NOW,
        service="runtime",
    )

    def record_of(event_type: str) -> RawRecord:
        return RawRecord("t", 0, 0, None, b"", (("event_type", event_type.encode()),), 0)

    assert all(processor.handles(record_of(t)) for t in STEPS)
    assert not processor.handles(record_of("run.started"))
    assert not processor.handles(record_of("gateway.tool_call_requested"))


def test_a_step_plays_the_pinned_revision_and_names_it() -> None:
    run = Run(**{**waiting_run().__dict__, "state": "pending", "step": 0, "pending_call_id": None})
    _moved, events = record(
        take_step(run, AGENT.document, NOW), run.version, causation_id=None, now=NOW, service="rt"
    )
    assert events[0].payload.revisions == (REVISION,)
    assert events[0].payload.tool == "status__demo"


def test_a_step_of_an_unknown_revision_fails_the_run_with_its_code() -> None:
    run = Run(**{**waiting_run().__dict__, "state": "pending", "step": 0, "pending_call_id": None})
    moved, events = record(
        take_step(run, None, NOW), run.version, causation_id=None, now=NOW, service="rt"
    )
    assert [e.event_type for e in events] == ["run.failed"]
    assert events[0].payload.code == "E-AGENT-UNKNOWN"
    assert moved.state == "failed"
