"""The in-memory fold of one consumed batch over the run rows it locked.

Pure: it takes the locked runs and the batch's new envelopes in
partition-offset order, decides through the run's decision functions exactly
as one event at a time would, and returns what to write: the runs to insert,
the runs to update and the run-stream envelopes to append, in order. The
service's handler table names which step each event type takes.

Approval events (`awooop.approval.events.v1`, keyed by run) are folded over the same
locked runs and over what the runtime keeps of each approval (`ApprovalMessage`): the
request posted into the run's chat, edited as votes come, and a grant or a denial of
the call the run waits for decided on the run. Relative to the gateway's events their
order is not guaranteed, so a run `waiting_tool` for the call counts as waiting for
it as much as one `waiting_approval`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from awooop.contracts.events.payloads.approval import ApprovalFacts
from awooop.contracts.events.payloads.channel import OutboundRequested
from awooop.contracts.families.agent import Agent
from awooop.contracts.records.envelope import Envelope
from awooop.runtime.domain import approval_messages
from awooop.runtime.domain.approval_messages import ApprovalMessage
from awooop.runtime.domain.contracts import RunContracts
from awooop.runtime.domain.machines import machine_for
from awooop.runtime.domain.outbound import messages_for, visible
from awooop.runtime.domain.prompt import NewTurn
from awooop.runtime.domain.recording import record, record_outbound
from awooop.runtime.domain.run import (
    WAITING_FOR_CALL,
    Decision,
    Run,
    accept_tool_result,
    approve_call,
    await_approval,
    deny_call,
    interrupt,
    queue_double_text,
    refusing_illegal,
    reject_double_text,
    start_run,
    waits_for,
)

MESSAGE = "ingress.message_received"
DEFAULT_STEP_SECONDS = 30
"""An approved call's time when the run's agent revision is no longer known."""

Subject = tuple[str, str]


@dataclass
class Written:
    """A run's row after the batch: `last_event_id` set; `saved` when a decision moved it
    (its lease is then taken when `due`, released otherwise), else only its version moved."""

    run: Run
    last_event_id: uuid.UUID
    saved: bool = False
    due: bool = False
    max_attempts: int = 0
    timeout_seconds: int = 0
    progress_seconds: int = 30


@dataclass(frozen=True)
class Queued:
    """A message of the `enqueue` rule waiting in its subject's queue (`seq` once stored)."""

    envelope: Envelope[Any]
    seq: int | None = None

    @property
    def subject(self) -> Subject:
        return (self.envelope.project_id, self.envelope.payload.platform_subject_id)


@dataclass
class BatchWrites:
    """What one batch writes: runs to insert, runs to update, envelopes to append (in order)."""

    inserts: dict[uuid.UUID, Written] = field(default_factory=dict)
    updates: dict[uuid.UUID, Written] = field(default_factory=dict)
    events: list[Envelope[Any]] = field(default_factory=list)
    turns: list[NewTurn] = field(default_factory=list)
    """The messages of the runs started, to keep as their chats' turns."""
    enqueued: list[Queued] = field(default_factory=list)
    """Messages to add to their subjects' queues, in order."""
    dequeued: list[int] = field(default_factory=list)
    """Queued messages (by `seq`) whose runs this batch started."""
    cancelled: list[uuid.UUID] = field(default_factory=list)
    """Runs this batch cancelled: their outstanding reservations are settled."""
    approvals: dict[uuid.UUID, ApprovalMessage] = field(default_factory=dict)
    """What is kept of each approval the batch took an event of, as it is afterwards."""


def run_id_of(env: Envelope[Any]) -> uuid.UUID:
    """The run an envelope belongs to: a message's own id, the run an approval event
    names, an outcome's correlation id."""
    if env.event_type == MESSAGE:
        return env.event_id
    if isinstance(env.payload, ApprovalFacts):
        return env.payload.run_id
    return uuid.UUID(env.correlation_id)


def approval_ids_of(envelopes: Iterable[Envelope[Any]]) -> list[uuid.UUID]:
    """The approvals whose kept messages the batch must read, in id order."""
    return sorted({env.payload.approval_id for env in envelopes if is_approval_event(env)})


def is_approval_event(env: Envelope[Any]) -> bool:
    return isinstance(env.payload, ApprovalFacts)


def lock_keys(envelopes: Iterable[Envelope[Any]]) -> tuple[list[uuid.UUID], list[Subject]]:
    """The run ids and the (project, subject) pairs whose rows the batch must lock."""
    run_ids: set[uuid.UUID] = set()
    subjects: set[Subject] = set()
    for env in envelopes:
        run_ids.add(run_id_of(env))
        if env.event_type == MESSAGE:
            subjects.add((env.project_id, env.payload.platform_subject_id))
    return sorted(run_ids), sorted(subjects)


class BatchFold:
    """The runs of one batch as the fold moves them; each step takes one envelope.

    `queued` holds the stored queue of every subject the batch touches (oldest first),
    `killed` the projects whose kill switch is tripped, `approvals` what is kept of the
    approvals the batch has events of."""

    def __init__(
        self,
        locked: Sequence[Run],
        contracts: RunContracts,
        now: dt.datetime,
        service: str,
        *,
        queued: Sequence[Queued] = (),
        killed: frozenset[str] = frozenset(),
        approvals: Iterable[ApprovalMessage] = (),
    ) -> None:
        self._runs = {
            run.run_id: replace(run, machine=machine_for(contracts, run.project_id).table)
            for run in locked
        }
        self._active = {(r.project_id, r.platform_subject_id): r.run_id for r in locked if r.active}
        self._queues: dict[Subject, list[Queued]] = {}
        for waiting in queued:
            self._queues.setdefault(waiting.subject, []).append(waiting)
        self._contracts = contracts
        self._killed = killed
        self._approvals = {kept.approval_id: kept for kept in approvals}
        self._now, self._service = now, service
        self.writes = BatchWrites()

    def message(self, env: Envelope[Any]) -> None:
        """A message starts a run for its subject, or meets the subject's active run and
        follows its agent's double-texting rule. A subject whose earlier messages still
        wait starts the oldest of them first, so its messages run in order."""
        subject = (env.project_id, env.payload.platform_subject_id)
        queue = self._queues.get(subject)
        if env.event_id in self._runs or any(
            w.envelope.event_id == env.event_id for w in queue or ()
        ):
            return  # started or queued long ago by this very message (past the inbox horizon)
        if queue and subject not in self._active:
            head = queue.pop(0)
            if head.seq is not None:
                self.writes.dequeued.append(head.seq)
            self.start(head.envelope)
        holder = self._active.get(subject)
        if holder is None:
            self.start(env)
            return
        current = self._runs[holder]
        agent = self._contracts.agent(env.project_id, env.payload.agent_id)
        rule = agent.document.double_texting if agent is not None else "reject"
        if rule == "enqueue":
            self._apply(queue_double_text(current, env.event_id), current, env, saved=False)
            waiting = Queued(env)
            self._queues.setdefault(subject, []).append(waiting)
            self.writes.enqueued.append(waiting)
        elif rule == "interrupt":
            self._apply(interrupt(current, env.event_id), current, env, saved=True)
            self.writes.cancelled.append(current.run_id)
            self.start(env)
        else:
            self._apply(reject_double_text(current, env.event_id), current, env, saved=False)

    def drain(self, subject: Subject) -> None:
        """Start the oldest waiting message of an idle subject (the claim loop's queue)."""
        queue = self._queues.get(subject)
        if queue and subject not in self._active:
            head = queue.pop(0)
            if head.seq is not None:
                self.writes.dequeued.append(head.seq)
            self.start(head.envelope)

    def start(self, env: Envelope[Any]) -> None:
        """A run for the message, pinned to its agent's active revision."""
        message = env.payload
        if env.event_id in self._runs:
            return  # started long ago by this very message (past the inbox horizon)
        agent = self._contracts.agent(env.project_id, message.agent_id)
        policy = self._contracts.policy(env.project_id)
        decision = start_run(
            env.event_id,
            env.project_id,
            message,
            agent,
            policy,
            env.trace_id,
            killed=env.project_id in self._killed,
            machine=machine_for(self._contracts, env.project_id).table,
        )
        limits = agent.document if agent is not None else None
        self.writes.inserts[decision.run.run_id] = Written(
            decision.run,
            env.event_id,
            max_attempts=limits.max_attempts if limits is not None else 1,
            timeout_seconds=limits.run_timeout_seconds if limits is not None else 1,
            progress_seconds=limits.progress_after_seconds if limits is not None else 30,
        )
        self._apply(decision, None, env, saved=True)
        run = decision.run
        self.writes.turns.append(
            NewTurn(run.project_id, run.channel_type, run.chat_id, run.run_id, "user", message.text)
        )

    def tool_outcome(self, env: Envelope[Any], outcome: str) -> None:
        """The gateway's answer resumes the run waiting for that call; any other is ignored."""
        known = self._runs.get(run_id_of(env))
        if known is None:
            return
        call_id, result = env.payload.call_id, result_of(env.payload)
        if known.state not in WAITING_FOR_CALL or known.pending_call_id != call_id:
            return

        def accept(run: Run) -> Decision:
            decision = accept_tool_result(run, call_id, outcome, result)
            assert decision is not None  # it waits for this very call
            return decision

        revision = machine_for(self._contracts, known.project_id).revision
        decision = refusing_illegal(known, revision, accept)
        # A refused move leaves the run as it was: only its version moves.
        self._apply(decision, known, env, saved=decision.run is not known)

    def _apply(
        self, decision: Decision, current: Run | None, cause: Envelope[Any], *, saved: bool
    ) -> None:
        base = current.version if current is not None else 0
        run, events = record(
            decision, base, causation_id=str(cause.event_id), now=self._now, service=self._service
        )
        self._runs[run.run_id] = run
        self.writes.events.extend(events)
        said = messages_for(run, decision.payloads, self._now)
        self.writes.events.extend(
            record_outbound(
                run,
                said,
                str(run.version),
                causation_id=str(cause.event_id),
                now=self._now,
                service=self._service,
            )
        )
        target = self.writes.inserts if run.run_id in self.writes.inserts else self.writes.updates
        written = target.get(run.run_id)
        if written is None:
            written = target[run.run_id] = Written(run, events[-1].event_id)
        written.run, written.last_event_id = run, events[-1].event_id
        if saved:
            written.saved, written.due = True, decision.step_due
        subject = (run.project_id, run.platform_subject_id)
        if run.active:
            self._active[subject] = run.run_id
        elif self._active.get(subject) == run.run_id:
            del self._active[subject]

    def approval_required(self, env: Envelope[Any]) -> None:
        """The gateway holds the run's call for an approval: the run waits for it."""
        known = self._runs.get(run_id_of(env))
        if known is None:
            return
        call_id, action_hash = env.payload.call_id, env.payload.action_hash
        if known.state != "waiting_tool" or known.pending_call_id != call_id:
            return

        def wait(run: Run) -> Decision:
            decision = await_approval(run, call_id, action_hash)
            assert decision is not None  # it waits for this very call
            return decision

        revision = machine_for(self._contracts, known.project_id).revision
        decision = refusing_illegal(known, revision, wait)
        self._apply(decision, known, env, saved=decision.run is not known)

    def approval_requested(self, env: Envelope[Any]) -> None:
        """An approval request for the call the run waits for: posted into the run's chat
        with Approve and Reject buttons (in a mode that shows messages), and kept."""
        found = self._approval_of(env)
        if found is None:
            return
        run, kept = found
        request = env.payload
        if kept is not None or not waits_for(run, request.call_id):
            return
        new, message = approval_messages.requested(run, request, env.stream_seq)
        if visible(run):
            (posted,) = self._say(run, message, env)
            new = replace(new, request_event_id=posted.event_id)
        self._keep(new)

    def vote_recorded(self, env: Envelope[Any]) -> None:
        """A counted vote: the pending request message shows the votes so far."""
        found = self._approval_of(env)
        if found is None:
            return
        run, kept = found
        if kept is None or not kept.editable:
            return
        after, edit = approval_messages.voted(run, kept, env.payload, env.stream_seq, self._now)
        self._say(run, edit, env)
        self._keep(after)

    def approval_granted(self, env: Envelope[Any]) -> None:
        """The grant of the call the run waits for: the gateway is told to run it (with the
        token), and the request message says who approved it. A grant for a call the
        run no longer waits for changes nothing."""
        found = self._approval_of(env)
        if found is None:
            return
        run, kept = found
        grant = env.payload
        if kept is not None and kept.outcome is not None:
            return
        # The request's deadline passed while people decided: the approved call gets a
        # fresh step's time, as the agent's revision sets it.
        agent = self._contracts.at(run.project_id, run.revision, Agent) if run.revision else None
        step = agent.document.step_timeout_seconds if agent is not None else DEFAULT_STEP_SECONDS
        execute_before = self._now + dt.timedelta(seconds=step)
        decision = approve_call(run, grant.call_id, grant.approval_id, grant.token, execute_before)
        if decision is None:
            return
        self._apply(decision, run, env, saved=False)
        if kept is not None and kept.editable:
            kept, edit = approval_messages.granted(run, kept, grant, env.stream_seq, self._now)
            self._say(run, edit, env)
        elif kept is not None:
            kept = replace(kept, last_seq=env.stream_seq, outcome="granted")
        else:
            kept = approval_messages.decided_unshown(
                run, grant.approval_id, grant.call_id, env.stream_seq, "granted"
            )
        self._keep(kept)

    def approval_denied(self, env: Envelope[Any]) -> None:
        """The denial of the call the run waits for: the agent gets it as the call's result
        and the run goes on; a pending request message says it was rejected, expired or
        why else it will not run."""
        found = self._approval_of(env)
        if found is None:
            return
        run, kept = found
        denial = env.payload
        if kept is not None and kept.outcome is not None:
            return
        waiting = waits_for(run, denial.call_id)
        if waiting:

            def deny(current: Run) -> Decision:
                decision = deny_call(current, denial.call_id, denial.code, denial.reason)
                assert decision is not None  # it waits for this very call
                return decision

            revision = machine_for(self._contracts, run.project_id).revision
            decision = refusing_illegal(run, revision, deny)
            self._apply(decision, run, env, saved=decision.run is not run)
        if kept is not None and kept.editable:
            kept, edit = approval_messages.denied(run, kept, denial, env.stream_seq, self._now)
            self._say(run, edit, env)
        elif kept is not None:
            kept = replace(kept, last_seq=env.stream_seq, outcome="denied")
        elif waiting:
            kept = approval_messages.decided_unshown(
                run, denial.approval_id, denial.call_id, env.stream_seq, "denied"
            )
        else:
            return
        self._keep(kept)

    def _approval_of(self, env: Envelope[Any]) -> tuple[Run, ApprovalMessage | None] | None:
        """The locked run an approval event is for and what is kept of its approval; None
        when the run is not of the event's project, or the event was taken in before
        (redelivered past the inbox horizon)."""
        facts = env.payload
        run = self._runs.get(facts.run_id)
        if run is None or run.project_id != env.project_id:
            return None
        kept = self._approvals.get(facts.approval_id)
        if kept is not None and (
            kept.took(env.stream_seq)
            or kept.project_id != env.project_id
            or kept.run_id != run.run_id
        ):
            return None
        return run, kept

    def _say(
        self, run: Run, message: OutboundRequested, cause: Envelope[Any]
    ) -> list[Envelope[Any]]:
        """Record one message of an approval: its own stream, named by the approval and the
        position of the approval event it answers (`outbound:<run>:<approval>:<seq>`)."""
        said = record_outbound(
            run,
            [message],
            f"{cause.payload.approval_id}:{cause.stream_seq}",
            causation_id=str(cause.event_id),
            now=self._now,
            service=self._service,
        )
        self.writes.events.extend(said)
        return said

    def _keep(self, kept: ApprovalMessage) -> None:
        self._approvals[kept.approval_id] = kept
        self.writes.approvals[kept.approval_id] = kept


Step = Callable[[BatchFold, Envelope[Any]], None]
"""What one event type does to the batch's runs."""


def tool_outcome(outcome: str) -> Step:
    """The step of a gateway outcome event, `outcome` being what the run records."""
    return lambda fold, env: fold.tool_outcome(env, outcome)


def fold_batch(
    locked: Sequence[Run],
    envelopes: Sequence[Envelope[Any]],
    steps: Mapping[str, Step],
    *,
    contracts: RunContracts,
    now: dt.datetime,
    service: str,
    queued: Sequence[Queued] = (),
    killed: frozenset[str] = frozenset(),
    approvals: Iterable[ApprovalMessage] = (),
) -> BatchWrites:
    """Fold `envelopes` (new to this service, in order) over the `locked` runs, each by the
    step `steps` names for its event type, under the `contracts` of this batch (`queued`:
    the stored queues of the batch's subjects; `killed`: projects whose switch tripped;
    `approvals`: what is kept of the approvals the batch has events of)."""
    fold = BatchFold(
        locked, contracts, now, service, queued=queued, killed=killed, approvals=approvals
    )
    for env in envelopes:
        steps[env.event_type](fold, env)
    return fold.writes


REFUSAL_FIELDS = ("gate", "code", "reason", "retry_after", "would_need", "transient")
"""What a refusal or failure tells the agent (never the call's own facts again)."""


def result_of(payload: Any) -> Any:
    """What a gateway event gives the agent: the result, or the refusal."""
    data = payload.model_dump(mode="json")
    if "result" in data:
        return data["result"]
    return {key: data[key] for key in REFUSAL_FIELDS if data.get(key) is not None}
