"""Properties of the run's decisions over random histories (hypothesis).

Whatever happens to a run, in whatever order (steps of a random script, answers to the
call it waits for or to another call, double texts, timeouts, steps dying past their
attempts), its state stays in the run-state table; a terminal state absorbs every later
decision; and folding the events the decisions recorded gives back the run itself.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.families.agent import Agent
from awooop.contracts.families.run_state_machine import IllegalTransition
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.runtime.domain.recording import record
from awooop.runtime.domain.replay import NotARunStream, replay_run
from awooop.runtime.domain.run import (
    FSM,
    Decision,
    Run,
    accept_tool_result,
    await_approval,
    give_up,
    interrupt,
    queue_double_text,
    reject_double_text,
    start_run,
    take_step,
)
from support.contracts import agent_body, view_of

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
PROJECT = "acme"

step = st.one_of(
    st.builds(
        lambda n: {"call_tool": "status__demo", "arguments": {"service": f"svc-{n}"}},
        st.integers(0, 3),
    ),
    st.just({"reply": "done: {result}"}),
)
scripts = st.lists(step, min_size=1, max_size=4)
actions = st.lists(
    st.one_of(
        st.just(("step",)),
        st.tuples(st.just("answer"), st.sampled_from(["succeeded", "blocked", "failed"])),
        st.just(("stray answer",)),
        st.just(("double text",)),
        st.just(("approval asked",)),
        st.just(("queued text",)),
        st.just(("interrupt",)),
        st.tuples(st.just("give up"), st.booleans()),
    ),
    max_size=12,
)


def started(script: list[dict[str, Any]]) -> tuple[Agent, list[Envelope[Any]], Run]:
    view = view_of((PROJECT, {"demo-agent": agent_body(script=script)}))
    agent = view.agent(PROJECT, "demo-agent")
    assert agent is not None
    message = MessageReceived(
        channel_type="telegram",
        provider_event_id="7:1",
        platform_subject_id=f"{PROJECT}:telegram:42",
        chat_id="42",
        text="is checkout healthy?",
        display_text="is checkout healthy?",
        received_at=NOW,
        agent_id="demo-agent",
        revisions=(),
    )
    decision = start_run(uuid.uuid4(), PROJECT, message, agent, None, new_trace_id())
    run, events = record(decision, 0, causation_id=None, now=NOW, service="rt")
    return agent.document, events, run


def decide(run: Run, agent: Agent, action: tuple[Any, ...]) -> Decision | None:
    """What the runtime would decide; None where it decides nothing."""
    kind = action[0]
    if kind == "step":  # the scheduler steps a run that is due: pending or running
        return take_step(run, agent, NOW) if run.state in ("pending", "running") else None
    if kind == "answer":
        return accept_tool_result(run, run.pending_call_id or "-", action[1], {"status": "ok"})
    if kind == "stray answer":
        return accept_tool_result(run, "another-call", "succeeded", {"status": "ok"})
    if kind == "double text":
        return reject_double_text(run, uuid.uuid4()) if run.active else None
    if kind == "approval asked":
        return await_approval(run, run.pending_call_id or "-", "a" * 64)
    if kind == "queued text":
        return queue_double_text(run, uuid.uuid4()) if run.active else None
    if kind == "interrupt":
        return interrupt(run, uuid.uuid4()) if run.active else None
    return give_up(run, timed_out=action[1]) if run.active else None


@settings(max_examples=300, deadline=None)
@given(scripts, actions)
def test_any_history_stays_in_the_table_and_replays_to_the_same_run(
    script: list[dict[str, Any]], history: list[tuple[Any, ...]]
) -> None:
    agent, events, run = started(script)
    for action in history:
        decision = decide(run, agent, action)
        if decision is None:
            continue
        run, more = record(decision, run.version, causation_id=None, now=NOW, service="rt")
        events += more
        assert run.state in FSM.states
    assert replay_run(events) == run


@settings(max_examples=200, deadline=None)
@given(scripts, actions, st.sampled_from(sorted(FSM.terminal)))
def test_a_terminal_state_absorbs_every_later_decision(
    script: list[dict[str, Any]], history: list[tuple[Any, ...]], terminal: str
) -> None:
    agent, _events, run = started(script)
    ended = Run(**{**run.__dict__, "state": terminal, "pending_call_id": "call-0"})
    movers = [
        lambda: take_step(ended, agent, NOW),
        lambda: give_up(ended, timed_out=True),
        lambda: give_up(ended, timed_out=False),
        lambda: accept_tool_result(ended, "call-0", "succeeded", {}),
    ]
    for mover in movers:
        outcome = _outcome(mover)
        assert outcome in ("refused: E-RUN-STATE-001", "nothing", terminal)


def _outcome(mover: Any) -> str:
    """What a decision did to a terminal run: refused, nothing, or the state it left."""
    try:
        decision = mover()
    except IllegalTransition as refused:
        return f"refused: {refused.code}"
    return "nothing" if decision is None else str(decision.run.state)


def test_a_stream_that_skips_an_event_is_not_replayed() -> None:
    agent, events, run = started([{"call_tool": "status__demo", "arguments": {}}])
    moved, more = record(take_step(run, agent, NOW), 1, causation_id=None, now=NOW, service="rt")
    assert replay_run([*events, *more]) == moved
    with pytest.raises(NotARunStream):
        replay_run(more)
    gap = more[0].model_copy(update={"stream_seq": 3})
    with pytest.raises(NotARunStream):
        replay_run([*events, gap])
