"""The run aggregate: its state and the decisions taken on it.

Every decision takes the run as loaded under its row lock (or nothing) and an
input, and returns the events to append and the run's next state. The state
machine of the `runtime_run_state` contract refuses illegal moves.

A run is pinned to the agent revision it started with (`Run.revision`): every step
plays that revision's script, so activating a new revision changes the runs that
start afterwards and never one halfway through.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.events.payloads.run import (
    ApprovalAwaited,
    MessageQueued,
    MessageRejected,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunTimedOut,
    StepReport,
    ToolCallApproved,
    ToolCallRequested,
    ToolResultAccepted,
    TransitionRefused,
)
from awooop.contracts.families.agent import Agent, ScriptedProvider
from awooop.contracts.families.policy import Policy
from awooop.contracts.families.run_state_machine import IllegalTransition, RunStateMachine
from awooop.contracts.records.envelope import EventPayload
from awooop.contracts.registries.errors import (
    E_AGENT_UNKNOWN,
    E_BUDGET_KILLED,
    E_RUN_ATTEMPTS,
    E_RUN_BUSY,
    E_RUN_INTERRUPTED,
    E_RUN_TIMEOUT,
)
from awooop.runtime.domain.contracts import Revisioned
from awooop.runtime.domain.llm import StepOutput, StepRequest
from awooop.runtime.domain.scripted import SCRIPTED_MODEL, ScriptedChat

FSM = RunStateMachine.standard()
MODE_WITHOUT_POLICY = "shadow"
"""A project with no active policy is in shadow mode (ARCHITECTURE §5)."""
RUNTIME_ACTOR = "service:runtime"
ACTIVE_STATES = ("pending", "running", "waiting_approval", "waiting_tool")


@dataclass(frozen=True)
class Run:
    """What the runtime knows of one run (the `runs` row without its lease)."""

    run_id: uuid.UUID
    project_id: str
    platform_subject_id: str
    agent_id: str
    channel_type: str
    chat_id: str
    mode: str
    revision: str
    """The agent revision the run is pinned to."""
    trace_id: str
    state: str
    version: int
    step: int = 0
    pending_call_id: str | None = None
    last_result: Any = None
    thread_id: str | None = None
    """The forum topic or Slack thread of the message that started the run."""
    reply_to: str | None = None
    """The provider's id of that message: the run's messages answer it."""
    machine: RunStateMachine = field(default=FSM, compare=False, repr=False)
    """The project's state machine every move is checked against (not stored: the
    active `runtime_run_state` revision is looked up each time the run is decided)."""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def moved(self, state: str, **changes: Any) -> Run:
        """The run in `state`; `IllegalTransition` when the machine has no such move."""
        if state != self.state:
            self.machine.transition(self.state, state)
        return replace(self, state=state, **changes)


@dataclass(frozen=True)
class Decision:
    """Events to append to the run's stream (in order) and the run afterwards."""

    run: Run
    payloads: tuple[EventPayload, ...]
    step_due: bool = False


def start_run(
    message_event_id: uuid.UUID,
    project_id: str,
    message: MessageReceived,
    agent: Revisioned[Agent] | None,
    policy: Revisioned[Policy] | None,
    trace_id: str,
    *,
    killed: bool = False,
    machine: RunStateMachine = FSM,
) -> Decision:
    """A run for the message's agent, pinned to its active revision, in the mode of the
    project's policy; started and failed at once (`E-AGENT-UNKNOWN`) when the agent has
    no active revision any more (it was retired after ingress bound the message)."""
    mode = policy.document.mode if policy is not None else MODE_WITHOUT_POLICY
    revisions = tuple(found.ref for found in (agent, policy) if found is not None)
    run = Run(
        run_id=message_event_id,
        project_id=project_id,
        platform_subject_id=message.platform_subject_id,
        agent_id=message.agent_id,
        channel_type=message.channel_type,
        chat_id=message.chat_id,
        mode=mode,
        revision=agent.ref if agent is not None else "",
        trace_id=trace_id,
        state="pending",
        version=0,
        thread_id=message.thread_id,
        reply_to=message.message_id,
        machine=machine,
    )
    started = RunStarted(
        agent_id=message.agent_id,
        channel_type=message.channel_type,
        chat_id=message.chat_id,
        thread_id=message.thread_id,
        reply_to=message.message_id,
        platform_subject_id=message.platform_subject_id,
        trigger_event_id=message_event_id,
        mode=mode,
        revisions=revisions,
        agent_revision=agent.ref if agent is not None else None,
    )
    if agent is None:
        reason = f"agent {message.agent_id!r} has no active revision in {project_id!r}"
        failed = RunFailed(code=E_AGENT_UNKNOWN.code, reason=reason, step=None)
        return Decision(run.moved("failed"), (started, failed))
    if killed:
        refused = RunCancelled(
            code=E_BUDGET_KILLED.code,
            reason=f"the kill switch of {project_id!r} is tripped: no run starts until a reset",
            actor=RUNTIME_ACTOR,
        )
        return Decision(run.moved("cancelled"), (started, refused))
    return Decision(run, (started,), step_due=True)


def reject_double_text(active: Run, message_event_id: uuid.UUID) -> Decision:
    """The agent's double-texting rule is `reject`: recorded on the active run."""
    rejected = MessageRejected(
        message_event_id=message_event_id,
        platform_subject_id=active.platform_subject_id,
        code=E_RUN_BUSY.code,
    )
    return Decision(active, (rejected,))


@dataclass(frozen=True)
class StepPlan:
    """An LLM step about to be taken: the run as the step sees it (`running`) and the agent
    revision it is pinned to. Its output is decided by `decide_output`."""

    run: Run
    agent: Agent

    @property
    def number(self) -> int:
        return self.run.step


def plan_step(run: Run, agent: Agent | None) -> StepPlan | Decision:
    """The next step of the run's pinned agent revision, or the decision that ends the run
    instead: `agent` is None when that revision is unknown here (`E-AGENT-UNKNOWN`)."""
    running = run.moved("running") if run.state == "pending" else run
    if agent is None:
        reason = f"agent revision {run.revision!r} of {run.agent_id!r} is not known"
        return fail(running, E_AGENT_UNKNOWN.code, reason)
    return StepPlan(running, agent)


def decide_output(
    plan: StepPlan, output: StepOutput, report: StepReport | None, now: dt.datetime
) -> Decision:
    """What the step's answer does: ask the gateway for a tool, or complete with the reply."""
    run, agent = plan.run, plan.agent
    if output.tool_call is not None:
        call_id = f"{run.run_id}:{run.step}"  # a retried step asks with the same id
        request = ToolCallRequested(
            call_id=call_id,
            tool=output.tool_call.tool,
            arguments=dict(output.tool_call.arguments),
            execute_before=now + dt.timedelta(seconds=agent.step_timeout_seconds),
            revisions=(run.revision,),
            step=report,
        )
        waiting = run.moved("waiting_tool", step=run.step + 1, pending_call_id=call_id)
        return Decision(waiting, (request,))
    done = run.moved("completed", step=run.step + 1)
    completed = RunCompleted(reply=output.reply or "", suppressed=run.mode == "shadow", step=report)
    return Decision(done, (completed,))


def queue_double_text(active: Run, message_event_id: uuid.UUID) -> Decision:
    """The agent's double-texting rule is `enqueue`: recorded on the active run; the
    message starts its own run when this one ends."""
    queued = MessageQueued(
        message_event_id=message_event_id, platform_subject_id=active.platform_subject_id
    )
    return Decision(active, (queued,))


def interrupt(active: Run, message_event_id: uuid.UUID) -> Decision:
    """The agent's double-texting rule is `interrupt`: the active run is cancelled (the
    newer message then starts a run of its own)."""
    cancelled = RunCancelled(
        code=E_RUN_INTERRUPTED.code,
        reason=f"interrupted by the newer message {message_event_id}",
        actor=RUNTIME_ACTOR,
    )
    return Decision(active.moved("cancelled"), (cancelled,))


def refusing_illegal(run: Run, revision: str, decide: Callable[[Run], Decision]) -> Decision:
    """`decide(run)`, or, when it would move the run along a transition the project's
    machine lacks, the refusal recorded on the run instead (the run stays as it was)."""
    try:
        return decide(run)
    except IllegalTransition as illegal:
        return refused(run, revision, illegal)


def refused(run: Run, revision: str, illegal: IllegalTransition) -> Decision:
    """The record of a move the project's machine (`revision`) refused; the run stays."""
    refusal = TransitionRefused(
        code=illegal.code,
        from_state=illegal.from_state,
        to_state=illegal.to_state,
        revision=revision,
    )
    return Decision(run, (refusal,))


def take_step(run: Run, agent: Agent | None, now: dt.datetime) -> Decision:
    """A whole unbudgeted step of a scripted agent: plan, answer from its script, decide.

    The pure model of what the step executor does for a scripted agent (the tests' and
    the replay checks' oracle); an agent of another provider kind is refused here."""
    planned = plan_step(run, agent)
    if isinstance(planned, Decision):
        return planned
    chosen = planned.agent.provider
    if not isinstance(chosen, ScriptedProvider):
        raise TypeError(f"take_step plays scripted agents only, not {chosen.kind!r}")
    request = StepRequest(
        model=SCRIPTED_MODEL,
        messages=(),
        tools=(),
        max_tokens=0,
        timeout_seconds=planned.agent.step_timeout_seconds,
        step=planned.number,
        last_result=run.last_result,
    )
    return decide_output(planned, ScriptedChat(chosen).answer(request), None, now)


def fail(run: Run, code: str, reason: str, report: StepReport | None = None) -> Decision:
    """The run ends `failed` with `code` (a step's report when the step's output failed it)."""
    return Decision(run.moved("failed"), (RunFailed(code=code, reason=reason, step=report),))


WAITING_FOR_CALL = ("waiting_tool", "waiting_approval")


def await_approval(run: Run, call_id: str, action_hash: str) -> Decision | None:
    """The gateway holds the call the run waits for until it is approved: the run waits
    for approval; an approval asked for any other call is ignored."""
    if run.state != "waiting_tool" or run.pending_call_id != call_id:
        return None
    awaited = ApprovalAwaited(
        call_id=call_id,
        action_hash=action_hash,
        requester=run.platform_subject_id,
        agent_revision=run.revision or None,
    )
    # The table has no waiting_tool -> waiting_approval: the run takes the gateway's
    # answer (running) and waits for the approval it asks for.
    return Decision(run.moved("running").moved("waiting_approval"), (awaited,))


def accept_tool_result(run: Run, call_id: str, outcome: str, result: Any) -> Decision | None:
    """The answer to the call the run waits for (whether or not it waited for an approval)
    resumes it; any other answer is ignored."""
    if not waits_for(run, call_id):
        return None
    accepted = ToolResultAccepted(call_id=call_id, outcome=outcome, result=result)
    resumed = run.moved("running", pending_call_id=None, last_result=result)
    return Decision(resumed, (accepted,), step_due=True)


def waits_for(run: Run, call_id: str) -> bool:
    """Whether the run waits for the answer to `call_id` (held for an approval or not)."""
    return run.state in WAITING_FOR_CALL and run.pending_call_id == call_id


def approve_call(
    run: Run, call_id: str, approval_id: uuid.UUID, token: str, execute_before: dt.datetime
) -> Decision | None:
    """The approval of the call the run waits for was granted: the gateway is told to run
    it with `token` before `execute_before`. The run keeps waiting for the call's outcome;
    a grant for any other call is ignored."""
    if not waits_for(run, call_id):
        return None
    approved = ToolCallApproved(
        call_id=call_id, approval_id=approval_id, token=token, execute_before=execute_before
    )
    return Decision(run, (approved,))


def deny_call(run: Run, call_id: str, code: str, reason: str) -> Decision | None:
    """The approval of the call the run waits for was denied (rejected, expired, or no
    request could be made): the call never runs, and the agent gets the denial as the
    call's result; a denial for any other call is ignored."""
    return accept_tool_result(run, call_id, "denied", {"code": code, "reason": reason})


def give_up(run: Run, *, timed_out: bool) -> Decision:
    """A run past its timeout, or whose steps kept dying past max_attempts."""
    if timed_out:
        ended = RunTimedOut(code=E_RUN_TIMEOUT.code, reason=E_RUN_TIMEOUT.meaning)
        return Decision(run.moved("timeout"), (ended,))
    return fail(run, E_RUN_ATTEMPTS.code, E_RUN_ATTEMPTS.meaning)
