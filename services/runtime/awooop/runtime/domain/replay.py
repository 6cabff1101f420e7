"""A run's state as the fold of its own stream: what the `runs` row must equal.

The runtime writes each decision's events and the run's row in one transaction. Folding
the stored events again, in `stream_seq` order, gives the same state: the check of
that (the tests', and an auditor's) needs nothing but the run's stream, because every
event carries what its decision changed (the result a run resumed with included).
Every state change goes through the run state machine, so a stream that would move a
run along a transition its table lacks is refused (``IllegalTransition``), never folded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from awooop.contracts.events.payloads.run import (
    ApprovalAwaited,
    MessageQueued,
    MessageRejected,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunTimedOut,
    ToolCallApproved,
    ToolCallRequested,
    ToolResultAccepted,
    TransitionRefused,
)
from awooop.contracts.families.run_state_machine import RunStateMachine
from awooop.contracts.records.envelope import Envelope
from awooop.runtime.domain.run import FSM, Run


class NotARunStream(ValueError):
    """Events that are not one run's stream from its first event on, in order."""


def replay_run(events: Iterable[Envelope[Any]], machine: RunStateMachine = FSM) -> Run:
    """The run after its stream `events` (from `run.started`, in `stream_seq` order),
    every move checked against `machine` (its project's table; the standard one by
    default)."""
    run: Run | None = None
    for env in events:
        payload = env.payload
        if run is None:
            if not isinstance(payload, RunStarted) or env.stream_seq != 1:
                raise NotARunStream(f"a run's stream starts with run.started, not {env.event_type}")
            run = replace(_started(env, payload), machine=machine)
            continue
        if env.stream_seq != run.version + 1 or env.stream_id != str(run.run_id):
            msg = f"{env.event_type} at {env.stream_id}#{env.stream_seq} after #{run.version}"
            raise NotARunStream(msg)
        run = _apply(run, payload).moved(_state_after(run, payload), version=env.stream_seq)
    if run is None:
        raise NotARunStream("no events")
    return run


def _started(env: Envelope[Any], payload: RunStarted) -> Run:
    return Run(
        run_id=uuid.UUID(env.stream_id),
        project_id=env.project_id,
        platform_subject_id=payload.platform_subject_id,
        agent_id=payload.agent_id,
        channel_type=payload.channel_type,
        chat_id=payload.chat_id,
        mode=payload.mode,
        revision=payload.agent_revision or "",
        trace_id=env.trace_id,
        state="pending",
        version=1,
        thread_id=payload.thread_id,
        reply_to=payload.reply_to,
    )


def _state_after(run: Run, payload: Any) -> str:
    if isinstance(payload, ToolCallRequested):
        return "waiting_tool"
    if isinstance(payload, ToolResultAccepted):
        return "running"
    if isinstance(payload, ApprovalAwaited):
        return "waiting_approval"
    if isinstance(payload, RunCompleted):
        return "completed"
    if isinstance(payload, RunFailed):
        return "failed"
    if isinstance(payload, RunTimedOut):
        return "timeout"
    if isinstance(payload, RunCancelled):
        return "cancelled"
    if isinstance(payload, MessageRejected | MessageQueued | TransitionRefused):
        return run.state  # recorded on the run, which it leaves as it was
    if isinstance(payload, ToolCallApproved):
        return run.state  # the run waits on for the approved call's outcome
    raise NotARunStream(f"{type(payload).__name__} is not a run event")


def _apply(run: Run, payload: Any) -> Run:
    """The fields an event changes besides the state (which `moved` checks)."""
    if isinstance(payload, ToolCallRequested):
        # A step that asks for a tool moved the run through `running` first.
        through = run.moved("running") if run.state == "pending" else run
        return through.moved(through.state, step=run.step + 1, pending_call_id=payload.call_id)
    if isinstance(payload, ToolResultAccepted):
        return run.moved(run.state, pending_call_id=None, last_result=payload.result)
    if isinstance(payload, ApprovalAwaited):
        return run.moved("running")  # as `await_approval` decided it
    if isinstance(payload, RunCompleted):
        through = run.moved("running") if run.state == "pending" else run
        return through.moved(through.state, step=run.step + 1)
    return run
