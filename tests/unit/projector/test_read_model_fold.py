"""The projector's fold: one timeline row per event, one run row per run, whatever the
order, duplicates and stale events of a batch."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from projector_events import BASE, MESSAGE, RunEvents, build_run

from awooop.contracts.events.payloads.run import MessageRejected, RunFailed, RunTimedOut
from awooop.contracts.records.envelope import Envelope, new_event_id
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.projector.domain.read_models import NotARunId, fold_batch
from awooop.projector.domain.rows import RUN_COLUMNS, ReadModelRows, RunRow

pytestmark = pytest.mark.unit


def _canonical(rows: ReadModelRows) -> tuple[Any, ...]:
    timeline = sorted((t.event_id, t.run_id, t.event_type, repr(t.summary)) for t in rows.timeline)
    runs = sorted((r.values() for r in rows.runs), key=repr)
    return tuple(timeline), tuple(runs)


def _only_run(rows: ReadModelRows) -> RunRow:
    assert len(rows.runs) == 1
    return rows.runs[0]


def test_a_complete_run_folds_into_one_run_row_and_six_timeline_rows(
    run_events: RunEvents,
) -> None:
    events = run_events()
    rows = fold_batch(events)
    run = _only_run(rows)
    assert run.run_id == events[0].event_id
    assert (run.state, run.last_stream_seq) == ("completed", 4)
    assert (run.agent_id, run.mode, run.channel_type, run.chat_id) == (
        "demo",
        "shadow",
        "telegram",
        "42",
    )
    assert run.platform_subject_id == "acme:telegram:42"
    assert run.started_at == BASE + timedelta(seconds=1)
    assert run.completed_at == BASE + timedelta(seconds=5)
    assert (run.reply, run.suppressed, run.error_code) == ("all green", True, None)
    assert run.trigger_text == MESSAGE
    assert [t.event_type for t in rows.timeline] == [e.event_type for e in events]
    assert {t.run_id for t in rows.timeline} == {run.run_id}
    assert len(run.values()) == len(RUN_COLUMNS)


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(6)), st.lists(st.integers(0, 5), max_size=6))
def test_the_fold_ignores_order_and_duplicates(order: list[int], repeats: list[int]) -> None:
    events = build_run()
    shuffled = [events[i] for i in order] + [events[i] for i in repeats]
    assert _canonical(fold_batch(shuffled)) == _canonical(fold_batch(events))


def test_a_stale_run_event_never_moves_the_state_back(run_events: RunEvents) -> None:
    events = run_events()
    started, requested, completed = events[1], events[2], events[5]
    assert _only_run(fold_batch([*events, requested, started])).state == "completed"
    assert _only_run(fold_batch([completed, requested, started])).state == "completed"
    # Another event id with an older stream_seq: a new timeline row, no state change.
    late = requested.model_copy(update={"event_id": new_event_id()})
    rows = fold_batch([*events, late])
    assert (_only_run(rows).state, _only_run(rows).last_stream_seq) == ("completed", 4)
    assert len(rows.timeline) == 7


def test_message_rejected_and_gateway_events_are_timeline_only(run_events: RunEvents) -> None:
    events = run_events()
    started, succeeded = events[1], events[3]
    rejected = new_envelope(
        MessageRejected(
            message_event_id=uuid.UUID(int=7, version=4),
            platform_subject_id="acme:telegram:42",
            code="E-RUN-BUSY",
        ),
        occurred_at=BASE,
        project_id="acme",
        stream_type="run",
        stream_id=started.stream_id,
        stream_seq=9,
        trace_id=started.trace_id,
        correlation_id=started.correlation_id,
        actor="service:runtime",
        producer="runtime",
    )
    rows = fold_batch([started, succeeded, rejected])
    run = _only_run(rows)
    assert (run.state, run.last_stream_seq) == ("pending", 1)
    assert len(rows.timeline) == 3
    assert fold_batch([succeeded, rejected]).runs == []


def test_an_ingress_message_alone_makes_a_run_row_with_only_its_text(
    run_events: RunEvents,
) -> None:
    run = _only_run(fold_batch(run_events()[:1]))
    assert (run.trigger_text, run.state, run.last_stream_seq, run.started_at) == (
        MESSAGE,
        None,
        0,
        None,
    )


@pytest.mark.parametrize(
    ("payload", "state"),
    [
        (RunFailed(code="E-RUN-ATTEMPTS", reason="died; host db-secret-host"), "failed"),
        (RunTimedOut(code="E-RUN-TIMEOUT", reason="took too long; host db-secret-host"), "timeout"),
        # Written before `run.timed_out` existed: a rebuild reads it as the live model did.
        (RunFailed(code="E-RUN-TIMEOUT", reason="took too long; host db-secret-host"), "timeout"),
    ],
)
def test_an_ended_run_records_its_state_and_code(
    run_events: RunEvents, payload: Any, state: str
) -> None:
    started = run_events()[1]
    ended = new_envelope(
        payload,
        occurred_at=BASE + timedelta(seconds=9),
        project_id="acme",
        stream_type="run",
        stream_id=started.stream_id,
        stream_seq=2,
        trace_id=started.trace_id,
        correlation_id=started.correlation_id,
        actor="service:runtime",
        producer="runtime",
    )
    rows = fold_batch([ended, started])
    run = _only_run(rows)
    assert (run.state, run.error_code, run.completed_at) == (
        state,
        payload.code,
        BASE + timedelta(seconds=9),
    )
    assert "db-secret-host" not in json.dumps([t.summary for t in rows.timeline])
    assert rows.timeline[0].summary["code"] == payload.code


def test_summaries_carry_no_message_text_arguments_or_results(run_events: RunEvents) -> None:
    events = run_events()
    rows = fold_batch(events)
    dumped = json.dumps([t.summary for t in rows.timeline])
    for secret in ("hunter2", "db-secret-host", "green", "all green"):
        assert secret not in dumped
    by_type = {t.event_type: t.summary for t in rows.timeline}
    assert by_type["run.tool_call_requested"]["argument_names"] == ["host"]
    message = by_type["ingress.message_received"]
    assert message["display_text_length"] == len(events[0].payload.display_text)
    assert all(isinstance(s["text"], str) and s["text"] for s in by_type.values())


def test_an_event_of_no_run_is_refused(run_events: RunEvents) -> None:
    stray: Envelope[Any] = run_events()[5].model_copy(update={"correlation_id": "not-a-run"})
    with pytest.raises(NotARunId, match="not-a-run"):
        fold_batch([stray])


def test_two_runs_of_two_tenants_stay_apart() -> None:
    rows = fold_batch([*build_run("acme"), *build_run("globex")])
    assert sorted(r.project_id for r in rows.runs) == ["acme", "globex"]
    assert len(rows.timeline) == 12
