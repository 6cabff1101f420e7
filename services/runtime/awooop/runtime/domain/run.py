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
from dataclasses import dataclass, replace
from typing import Any

from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.events.payloads.run import (
    MessageRejected,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunTimedOut,
    ToolCallRequested,
    ToolResultAccepted,
)
from awooop.contracts.families.agent import Agent, CallToolStep, ReplyStep, ScriptedProvider
from awooop.contracts.families.policy import Policy
from awooop.contracts.families.run_state_machine import RunStateMachine
from awooop.contracts.records.envelope import EventPayload
from awooop.contracts.registries.errors import (
    E_AGENT_PROVIDER,
    E_AGENT_UNKNOWN,
    E_RUN_ATTEMPTS,
    E_RUN_BUSY,
    E_RUN_TIMEOUT,
)
from awooop.runtime.domain.contracts import Revisioned

FSM = RunStateMachine.standard()
MODE_WITHOUT_POLICY = "shadow"
"""A project with no active policy is in shadow mode (ARCHITECTURE §5)."""
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

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def moved(self, state: str, **changes: Any) -> Run:
        """The run in `state` (checked against the state machine)."""
        if state != self.state:
            FSM.transition(self.state, state)
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
    )
    started = RunStarted(
        agent_id=message.agent_id,
        channel_type=message.channel_type,
        chat_id=message.chat_id,
        platform_subject_id=message.platform_subject_id,
        trigger_event_id=message_event_id,
        mode=mode,
        revisions=revisions,
        agent_revision=agent.ref if agent is not None else None,
    )
    if agent is None:
        reason = f"agent {message.agent_id!r} has no active revision in {project_id!r}"
        failed = RunFailed(code=E_AGENT_UNKNOWN.code, reason=reason)
        return Decision(run.moved("failed"), (started, failed))
    return Decision(run, (started,), step_due=True)


def reject_double_text(active: Run, message_event_id: uuid.UUID) -> Decision:
    """The agent's double-texting rule is `reject`: recorded on the active run."""
    rejected = MessageRejected(
        message_event_id=message_event_id,
        platform_subject_id=active.platform_subject_id,
        code=E_RUN_BUSY.code,
    )
    return Decision(active, (rejected,))


def take_step(run: Run, agent: Agent | None, now: dt.datetime) -> Decision:
    """Run the next step of the run's pinned agent revision: ask for a tool, or answer.

    `agent` is None when that revision is unknown here (`E-AGENT-UNKNOWN`); an agent
    whose provider is not the scripted one fails with `E-AGENT-PROVIDER`.
    """
    running = run.moved("running") if run.state == "pending" else run
    if agent is None:
        reason = f"agent revision {run.revision!r} of {run.agent_id!r} is not known"
        return Decision(
            running.moved("failed"), (RunFailed(code=E_AGENT_UNKNOWN.code, reason=reason),)
        )
    provider = agent.provider
    if not isinstance(provider, ScriptedProvider):
        reason = f"provider {provider.kind!r} of agent {agent.agent_id!r} is not served yet"
        return Decision(
            running.moved("failed"), (RunFailed(code=E_AGENT_PROVIDER.code, reason=reason),)
        )
    step = provider.script[min(run.step, len(provider.script) - 1)]
    if isinstance(step, CallToolStep):
        call_id = f"{run.run_id}:{run.step}"  # a retried step asks with the same id
        request = ToolCallRequested(
            call_id=call_id,
            tool=step.call_tool,
            arguments=dict(step.arguments),
            execute_before=now + dt.timedelta(seconds=agent.step_timeout_seconds),
            revisions=(run.revision,),
        )
        waiting = running.moved("waiting_tool", step=run.step + 1, pending_call_id=call_id)
        return Decision(waiting, (request,))
    assert isinstance(step, ReplyStep)
    reply = step.reply.replace("{result}", _describe(run.last_result))
    done = running.moved("completed", step=run.step + 1)
    return Decision(done, (RunCompleted(reply=reply, suppressed=run.mode == "shadow"),))


def accept_tool_result(run: Run, call_id: str, outcome: str, result: Any) -> Decision | None:
    """The answer to the call the run waits for resumes it; any other answer is ignored."""
    if run.state != "waiting_tool" or run.pending_call_id != call_id:
        return None
    accepted = ToolResultAccepted(call_id=call_id, outcome=outcome, result=result)
    resumed = run.moved("running", pending_call_id=None, last_result=result)
    return Decision(resumed, (accepted,), step_due=True)


def give_up(run: Run, *, timed_out: bool) -> Decision:
    """A run past its timeout, or whose steps kept dying past max_attempts."""
    if timed_out:
        ended = RunTimedOut(code=E_RUN_TIMEOUT.code, reason=E_RUN_TIMEOUT.meaning)
        return Decision(run.moved("timeout"), (ended,))
    failed = RunFailed(code=E_RUN_ATTEMPTS.code, reason=E_RUN_ATTEMPTS.meaning)
    return Decision(run.moved("failed"), (failed,))


def _failed(run: Run, code: str, reason: str) -> Decision:
    return Decision(run.moved("failed"), (RunFailed(code=code, reason=reason),))


def _describe(result: Any) -> str:
    if isinstance(result, dict):
        return ", ".join(f"{k}: {v}" for k, v in result.items())
    return str(result)
