"""The runtime's in-memory fold of one batch: the same decisions as one event at a time."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from awooop.contracts.events.payloads.gateway import ApprovalRequired, ToolCallSucceeded
from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.families.runtime_run_state import standard_document
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.processor import first_seen
from awooop.runtime.domain.batch import BatchWrites, Queued, fold_batch, lock_keys
from awooop.runtime.domain.run import Run
from awooop.runtime.handlers import STEPS
from support.contracts import agent_body, view_of

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
PROJECT = "acme"
SUBJECT = "acme:telegram:42"
POLICY = {
    "family": "policy",
    "schema_version": 1,
    "mode": "suggest",
    "approvers": [{"approver_id": "ana", "chat_subjects": [], "api_subject": "operator:ana"}],
    "approvals_required": 1,
    "approval_expiry_seconds": 600,
    "rate_limits": [],
    "approval_required_tools": [],
}
VIEW = view_of((PROJECT, {"demo-agent": agent_body(), "policy": POLICY}))
REVISION = VIEW.refs()[(PROJECT, "demo-agent")]
POLICY_REVISION = VIEW.refs()[(PROJECT, "policy")]


def message(subject: str = SUBJECT, agent_id: str = "demo-agent") -> Envelope[Any]:
    env = new_envelope(
        MessageReceived(
            channel_type="telegram",
            provider_event_id=f"7:{uuid.uuid4().hex[:8]}",
            platform_subject_id=subject,
            chat_id="42",
            text="is checkout healthy?",
            display_text="is checkout healthy?",
            received_at=NOW,
            agent_id=agent_id,
            revisions=(),
        ),
        occurred_at=NOW,
        project_id=PROJECT,
        stream_type="inbound",
        stream_id=f"{subject}:{uuid.uuid4().hex[:8]}",
        stream_seq=1,
        trace_id=new_trace_id(),
        correlation_id="pending",
        actor="service:ingress",
        producer="ingress",
    )
    return env.model_copy(update={"correlation_id": str(env.event_id)})


def outcome(run_id: uuid.UUID, call_id: str) -> Envelope[Any]:
    return new_envelope(
        ToolCallSucceeded(call_id=call_id, result={"status": "healthy"}, revisions=(REVISION,)),
        occurred_at=NOW,
        project_id=PROJECT,
        stream_type="tool_call",
        stream_id=call_id,
        stream_seq=1,
        trace_id=new_trace_id(),
        correlation_id=str(run_id),
        actor="service:mcp_gateway",
        producer="mcp_gateway",
    )


def waiting_run(call_id_step: int = 0, version: int = 2) -> Run:
    run_id = uuid.uuid4()
    return Run(
        run_id=run_id,
        project_id=PROJECT,
        platform_subject_id=SUBJECT,
        agent_id="demo-agent",
        channel_type="telegram",
        chat_id="42",
        mode="shadow",
        revision=REVISION,
        trace_id=new_trace_id(),
        state="waiting_tool",
        version=version,
        step=call_id_step + 1,
        pending_call_id=f"{run_id}:{call_id_step}",
    )


def fold(locked: list[Run], envelopes: list[Envelope[Any]]) -> BatchWrites:
    return fold_batch(locked, envelopes, STEPS, contracts=VIEW, now=NOW, service="rt")


def described(events: list[Envelope[Any]]) -> list[tuple[str, str, int]]:
    return [(e.event_type, e.stream_id, e.stream_seq) for e in events]


def test_two_messages_of_one_subject_start_one_run_and_reject_the_second() -> None:
    first, second = message(), message()
    assert lock_keys([first, second]) == (
        sorted([first.event_id, second.event_id]),
        [(PROJECT, SUBJECT)],
    )
    writes = fold([], [first, second])
    run_id = str(first.event_id)
    # The project is in suggest mode: the person is told the agent is still busy.
    assert described(writes.events) == [
        ("run.started", run_id, 1),
        ("run.message_rejected", run_id, 2),
        ("channel.outbound_requested", f"outbound:{run_id}:2", 1),
    ]
    busy = writes.events[-1].payload
    assert (busy.kind, busy.chat_id, busy.run_id) == ("interim", "42", first.event_id)
    assert list(writes.inserts) == [first.event_id]
    assert writes.updates == {}
    started = writes.inserts[first.event_id]
    assert started.run.version == 2
    assert started.run.state == "pending"
    assert started.last_event_id == writes.events[1].event_id
    assert started.saved
    assert started.due
    assert started.max_attempts == agent_body()["max_attempts"]
    assert started.timeout_seconds == agent_body()["run_timeout_seconds"]


def test_an_outcome_for_a_run_started_in_the_same_batch_is_folded_onto_it() -> None:
    first = message()
    answer = outcome(first.event_id, f"{first.event_id}:0")
    writes = fold([], [first, answer])
    # The new run waits for no call yet: the answer changes nothing.
    assert described(writes.events) == [("run.started", str(first.event_id), 1)]
    assert writes.inserts[first.event_id].run.version == 1
    assert writes.updates == {}


def test_an_outcome_resumes_a_locked_run_and_a_later_message_is_rejected_on_it() -> None:
    run = waiting_run()
    later = message()
    writes = fold([run], [outcome(run.run_id, run.pending_call_id or ""), later])
    assert described(writes.events) == [
        ("run.tool_result_accepted", str(run.run_id), 3),
        ("run.message_rejected", str(run.run_id), 4),
    ]
    assert writes.inserts == {}
    resumed = writes.updates[run.run_id]
    assert resumed.run.state == "running"
    assert resumed.run.pending_call_id is None
    assert resumed.run.last_result == {"status": "healthy"}
    assert resumed.run.version == 4
    assert resumed.saved
    assert resumed.due
    assert resumed.last_event_id == writes.events[-1].event_id


def test_a_rejected_message_keeps_the_run_and_its_lease() -> None:
    run = waiting_run()
    writes = fold([run], [message()])
    assert [t for t, _, _ in described(writes.events)] == ["run.message_rejected"]
    kept = writes.updates[run.run_id]
    assert kept.run.state == "waiting_tool"
    assert kept.run.version == run.version + 1
    assert not kept.saved


def test_an_outcome_nobody_waits_for_is_ignored() -> None:
    run = waiting_run(call_id_step=1)
    stale = outcome(run.run_id, f"{run.run_id}:0")
    unknown = outcome(uuid.uuid4(), "elsewhere:0")
    writes = fold([run], [stale, unknown])
    assert writes.events == []
    assert writes.inserts == {}
    assert writes.updates == {}


def test_a_message_whose_run_already_exists_starts_nothing() -> None:
    first = message()
    finished = Run(
        run_id=first.event_id,
        project_id=PROJECT,
        platform_subject_id=SUBJECT,
        agent_id="demo-agent",
        channel_type="telegram",
        chat_id="42",
        mode="shadow",
        revision=REVISION,
        trace_id=first.trace_id,
        state="completed",
        version=4,
    )
    writes = fold([finished], [first])
    assert writes.events == []
    assert writes.inserts == {}
    assert writes.updates == {}


def _decoded(env: Envelope[Any], offset: int) -> DecodedRecord:
    raw = RawRecord("ingress.events", 0, offset, None, b"", (), 0)
    return DecodedRecord(raw, env)


def test_a_duplicate_event_id_inside_one_batch_applies_once() -> None:
    first, seen_before = message(), message()
    records = [_decoded(first, 0), _decoded(seen_before, 1), _decoded(first, 2)]
    kept = first_seen({first.event_id}, records)
    assert [item.body for item in kept] == [first]
    assert [item.raw.offset for item in kept] == [0]
    writes = fold([], [item.body for item in kept])
    assert described(writes.events) == [("run.started", str(first.event_id), 1)]


def test_a_run_starts_pinned_to_the_agent_revision_in_the_policys_mode() -> None:
    writes = fold([], [message()])
    started = writes.events[0]
    assert started.event_type == "run.started"
    assert started.payload.revisions == (REVISION, POLICY_REVISION)
    assert started.payload.mode == "suggest"
    (written,) = writes.inserts.values()
    assert written.run.revision == REVISION
    assert written.due


def test_a_message_for_an_agent_without_an_active_revision_fails_its_run_at_once() -> None:
    writes = fold([], [message(agent_id="retired-agent")])
    assert [e.event_type for e in writes.events] == [
        "run.started",
        "run.failed",
        "channel.outbound_requested",
    ]
    assert writes.events[1].payload.code == "E-AGENT-UNKNOWN"
    assert writes.events[2].payload.kind == "error"
    assert writes.events[0].payload.revisions == (POLICY_REVISION,)
    (written,) = writes.inserts.values()
    assert written.run.state == "failed"
    assert not written.due


def _with_rule(rule: str) -> Any:
    return view_of((PROJECT, {"demo-agent": agent_body(double_texting=rule), "policy": POLICY}))


def _fold_with(view: Any, envelopes: list[Envelope[Any]], **options: Any) -> BatchWrites:
    return fold_batch([], envelopes, STEPS, contracts=view, now=NOW, service="rt", **options)


def test_an_enqueued_double_text_waits_and_its_subjects_next_message_keeps_the_order() -> None:
    first, second, third = message(), message(), message()
    writes = _fold_with(_with_rule("enqueue"), [first, second, third])
    run_id = str(first.event_id)
    assert [(e.event_type, e.stream_id) for e in writes.events] == [
        ("run.started", run_id),
        ("run.message_queued", run_id),
        ("run.message_queued", run_id),
    ]
    assert [w.envelope.event_id for w in writes.enqueued] == [second.event_id, third.event_id]
    assert list(writes.inserts) == [first.event_id]


def test_a_waiting_message_of_an_idle_subject_starts_before_a_newer_one() -> None:
    waiting, newer = message(), message()
    queued = [Queued(waiting, seq=7)]
    writes = _fold_with(_with_rule("enqueue"), [newer], queued=queued)
    assert list(writes.inserts) == [waiting.event_id]
    assert writes.dequeued == [7]
    assert [w.envelope.event_id for w in writes.enqueued] == [newer.event_id]


def test_an_interrupting_double_text_cancels_the_active_run_and_starts_its_own() -> None:
    first, second = message(), message()
    writes = _fold_with(_with_rule("interrupt"), [first, second])
    types = [(e.event_type, e.stream_id) for e in writes.events]
    assert ("run.cancelled", str(first.event_id)) in types
    assert types[-1] == ("run.started", str(second.event_id))
    cancelled = next(e for e in writes.events if e.event_type == "run.cancelled")
    assert cancelled.payload.code == "E-RUN-INTERRUPTED"
    assert writes.inserts[first.event_id].run.state == "cancelled"
    assert writes.inserts[second.event_id].run.state == "pending"
    assert writes.cancelled == [first.event_id]


def test_a_killed_tenant_starts_no_run() -> None:
    writes = _fold_with(VIEW, [message()], killed=frozenset({PROJECT}))
    assert [e.event_type for e in writes.events] == ["run.started", "run.cancelled"]
    assert writes.events[1].payload.code == "E-BUDGET-KILLED"
    (written,) = writes.inserts.values()
    assert (written.run.state, written.due) == ("cancelled", False)


def _table(*dropped: tuple[str, str]) -> dict[str, Any]:
    document = standard_document()
    document["transitions"] = [
        move for move in document["transitions"] if (move["from"], move["to"]) not in dropped
    ]
    return document


def test_a_move_the_projects_table_lacks_is_refused_recorded_and_never_applied() -> None:
    table = _table(("waiting_tool", "running"))
    view = view_of((PROJECT, {"demo-agent": agent_body(), "policy": POLICY, "run-state": table}))
    run = waiting_run()
    writes = fold_batch(
        [run],
        [outcome(run.run_id, run.pending_call_id or "")],
        STEPS,
        contracts=view,
        now=NOW,
        service="rt",
    )
    (refusal,) = writes.events
    assert refusal.event_type == "run.transition_refused"
    assert refusal.payload.code == "E-RUN-STATE-001"
    assert (refusal.payload.from_state, refusal.payload.to_state) == ("waiting_tool", "running")
    assert refusal.payload.revision == view.refs()[(PROJECT, "run-state")]
    written = writes.updates[run.run_id]
    assert (written.run.state, written.run.version, written.saved) == ("waiting_tool", 3, False)


def test_a_table_that_could_keep_a_run_from_ending_is_not_used() -> None:
    table = _table(("waiting_tool", "timeout"), ("waiting_tool", "running"))
    view = view_of((PROJECT, {"demo-agent": agent_body(), "policy": POLICY, "run-state": table}))
    run = waiting_run()
    writes = fold_batch(
        [run],
        [outcome(run.run_id, run.pending_call_id or "")],
        STEPS,
        contracts=view,
        now=NOW,
        service="rt",
    )
    assert [e.event_type for e in writes.events] == ["run.tool_result_accepted"]


def _approval_required(run: Run) -> Envelope[Any]:
    call_id = run.pending_call_id or ""
    return new_envelope(
        ApprovalRequired(call_id=call_id, tool="status__demo", action_hash="a" * 64, revisions=()),
        occurred_at=NOW,
        project_id=PROJECT,
        stream_type="tool_call",
        stream_id=call_id,
        stream_seq=1,
        trace_id=new_trace_id(),
        correlation_id=str(run.run_id),
        actor="service:mcp_gateway",
        producer="mcp_gateway",
    )


def test_a_call_held_for_approval_makes_its_run_wait_and_its_outcome_resumes_it() -> None:
    run = waiting_run()
    call_id = run.pending_call_id or ""
    held = fold([run], [_approval_required(run)])
    (awaited,) = held.events
    assert (awaited.event_type, awaited.payload.call_id) == ("run.approval_awaited", call_id)
    waiting = held.updates[run.run_id]
    assert (waiting.run.state, waiting.saved, waiting.due) == ("waiting_approval", True, False)
    resumed = fold([waiting.run], [outcome(run.run_id, call_id)])
    assert [e.event_type for e in resumed.events] == ["run.tool_result_accepted"]
    assert resumed.updates[run.run_id].run.state == "running"


def test_a_message_replayed_long_after_its_run_started_changes_nothing() -> None:
    """Past the inbox horizon a message can arrive again: its run is found by its id, and
    no double-texting rule acts on the subject's current run."""
    old, current = message(), waiting_run()
    started = Run(**{**current.__dict__, "run_id": old.event_id, "state": "completed"})
    writes = fold_batch(
        [started, current], [old], STEPS, contracts=_with_rule("interrupt"), now=NOW, service="rt"
    )
    assert writes.events == []
    assert writes.updates == {}
    assert writes.inserts == {}


def test_a_message_replayed_while_it_still_waits_in_its_queue_is_not_queued_twice() -> None:
    waiting, current = message(), waiting_run()
    writes = fold_batch(
        [current],
        [waiting],
        STEPS,
        contracts=_with_rule("enqueue"),
        now=NOW,
        service="rt",
        queued=[Queued(waiting, seq=3)],
    )
    assert writes.events == []
    assert writes.enqueued == []
