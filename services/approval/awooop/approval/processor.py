"""The approval service's consumer: requests from held calls, votes from chat buttons,
and the runs they belong to.

Per batch, inside the consumer's transaction: one statement takes a lock per run the
batch names (in a fixed order: the held call and its run's start come on different
topics, perhaps to different processes, and must not interleave), one takes the holds
that waited for runs starting in it, one reads the runs, one locks the requests it
touches (in id order, so a vote over HTTP and a batch never deadlock); the batch is
decided in memory in partition-offset order, then one statement per table writes it.

- `gateway.approval_required` makes a request from the policy revision the gateway read
  (`approval.requested`), once the runtime's `run.approval_awaited` for the same run
  said who asked and which agent revision the run is pinned to (they come on different
  topics: whichever is read first waits, the held call in `held_calls`);
- a run's end while it waits (`run.cancelled`, `run.timed_out`, `run.failed`: a run
  cannot complete while it waits for a call) denies its pending requests, and a call
  held for a run that ended before it said `run.approval_awaited`;
- `ingress.button_pressed` with an approval button's data is a vote (`approve:<id>`,
  `reject:<id>`); other buttons are not this service's.

Only those types are decoded: every other record of the three topics (every message,
every step of every run) is skipped by its header, and a batch of nothing but those
costs no transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from awooop.approval.adapters import approval_store
from awooop.approval.adapters.approval_store import HeldCall, RunFacts, StoredRequest
from awooop.approval.domain.requests import TokenMinter, cast_vote, expire, request_for
from awooop.approval.recording import recorded
from awooop.contracts.events.payloads.approval import approval_id_of, vote_of_button
from awooop.contracts.families.agent import Agent
from awooop.contracts.families.policy import Policy
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.infra.contracts.active import ContractView
from awooop.infra.contracts.reader import ContractSource
from awooop.infra.kafka.records import DecodedRecord
from awooop.infra.logging import get_logger
from awooop.infra.postgres.event_store import NewEvent
from awooop.infra.processor import BatchContext, EventProcessor

APPROVAL_REQUIRED = "gateway.approval_required"
RUN_STARTED = "run.approval_awaited"
"""The run event that says who asked (named for its role here: the run's facts)."""
RUN_ENDED = ("run.failed", "run.cancelled", "run.timed_out")
BUTTON_PRESSED = "ingress.button_pressed"
HANDLED = (APPROVAL_REQUIRED, RUN_STARTED, *RUN_ENDED, BUTTON_PRESSED)

_CODEC = EnvelopeCodec()
log = get_logger(__name__)


def run_began(run_id: str, otherwise: dt.datetime) -> dt.datetime:
    """When the run began: its id is the UUIDv7 event id of the message that started it,
    whose first 48 bits are that moment in Unix milliseconds (a run started later from a
    queued message began after this, so its requests expire no later than its run)."""
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        return otherwise
    if parsed.version != 7:
        return otherwise
    return dt.datetime.fromtimestamp((parsed.int >> 80) / 1000, dt.UTC)


def voter_actor(approver_id: str | None, subject: str) -> str:
    """Who a vote event names: the approver, or the subject that is none."""
    return f"approver:{approver_id}" if approver_id else subject


class _Batch:
    """The batch's requests and runs in memory, and what it appends."""

    def __init__(
        self,
        view: ContractView,
        mint: TokenMinter,
        runs: dict[str, RunFacts],
        requests: dict[uuid.UUID, StoredRequest],
    ) -> None:
        self.view = view
        self.mint = mint
        self.runs = runs
        self.requests = requests
        self.changed_runs: dict[str, RunFacts] = {}
        self.changed: dict[uuid.UUID, StoredRequest] = {}
        self.held: dict[uuid.UUID, tuple[HeldCall, Envelope[Any]]] = {}
        """Holds this batch read before their run's start."""
        self.events: list[NewEvent] = []

    def _keep(self, stored: StoredRequest, events: list[NewEvent]) -> None:
        approval_id = stored.request.approval_id
        self.requests[approval_id] = self.changed[approval_id] = stored
        self.events.extend(events)

    def started(self, env: Envelope[Any]) -> None:
        """`run.approval_awaited`: who asked, and by when the run must have its answer."""
        run_id = env.correlation_id
        payload = env.payload
        deadline = None
        if payload.agent_revision:
            agent = self.view.at(env.project_id, payload.agent_revision, Agent)
            if agent is not None:
                # Decided a step before the run's timeout: the agent can still go on.
                limits = agent.document
                seconds = limits.run_timeout_seconds - limits.step_timeout_seconds
                seconds = seconds if seconds > 0 else limits.run_timeout_seconds
                deadline = run_began(run_id, env.occurred_at) + dt.timedelta(seconds=seconds)
        known = self.runs.get(run_id)
        ended = known.ended if known is not None else None
        facts = RunFacts(run_id, env.project_id, payload.requester, deadline, ended)
        self.runs[run_id] = self.changed_runs[run_id] = facts
        self._release(run_id)

    def ended(self, env: Envelope[Any]) -> None:
        run_id = env.correlation_id
        state = env.event_type.removeprefix("run.")
        known = self.runs.get(run_id)
        facts = (
            RunFacts(run_id, env.project_id, None, None, state)
            if known is None
            else RunFacts(run_id, known.project_id, known.requester, known.deadline, state)
        )
        self.runs[run_id] = self.changed_runs[run_id] = facts
        for stored in list(self.requests.values()):
            if stored.request.run_id == run_id and stored.request.state == "pending":
                self._ended(stored, env, state)
        self._release(run_id)

    def _release(self, run_id: str) -> None:
        """The calls this batch held for `run_id`, decided now that the run is known."""
        for approval_id, (held, held_env) in list(self.held.items()):
            if held.run_id == run_id:
                del self.held[approval_id]
                self.approval_required(held_env, held.envelope)

    def _ended(self, stored: StoredRequest, env: Envelope[Any], state: str) -> None:
        reason = f"the run ended ({state}) before a decision"
        decision = expire(stored.request, env.occurred_at, reason)
        self._keep(*recorded(stored, decision, at=env.occurred_at, causation_id=str(env.event_id)))

    def approval_required(self, env: Envelope[Any], raw: bytes) -> None:
        run_id = env.correlation_id
        payload = env.payload
        approval_id = approval_id_of(env.project_id, payload.call_id)
        if approval_id in self.requests:
            return  # the call was asked about once already
        run = self.runs.get(run_id)
        if run is None:
            self.held[approval_id] = (HeldCall(approval_id, run_id, raw), env)
            return
        policy_ref, policy = self._policy(env.project_id, payload.revisions)
        decision = request_for(
            payload,
            approval_id=approval_id,
            project_id=env.project_id,
            run_id=run_id,
            policy=policy,
            policy_ref=policy_ref,
            requester=run.requester,
            run_deadline=run.deadline,
            at=env.occurred_at,
        )
        fresh = StoredRequest(decision.request, 0, env.trace_id)
        self._keep(*recorded(fresh, decision, at=env.occurred_at, causation_id=str(env.event_id)))
        if run.ended and self.requests[approval_id].request.state == "pending":
            self._ended(self.requests[approval_id], env, run.ended)

    def _policy(self, project_id: str, revisions: Sequence[str]) -> tuple[str, Policy | None]:
        """The policy revision among those the gateway's gates read."""
        for ref in revisions:
            found = self.view.at(project_id, ref, Policy)
            if found is not None:
                return ref, found.document
        return "", None

    def pressed(self, env: Envelope[Any]) -> None:
        named = vote_of_button(env.payload.value)
        if named is None:
            return
        vote, approval_id = named
        stored = self.requests.get(approval_id)
        if stored is None or stored.request.project_id != env.project_id:
            log.info("approval_vote_unknown", approval_id=str(approval_id), via="button")
            return
        subject = env.payload.platform_subject_id
        answer = cast_vote(
            stored.request,
            vote=vote,
            via="button",
            subject=subject,
            at=env.occurred_at,
            mint=self.mint,
        )
        approver = stored.request.approver_of("button", subject)
        actor = voter_actor(approver.approver_id if approver else None, subject)
        self._keep(
            *recorded(
                stored,
                answer.decision,
                at=env.occurred_at,
                causation_id=str(env.event_id),
                actor=actor,
            )
        )


class ApprovalProcessor(EventProcessor):
    """Requests, votes by button and run ends, idempotent on `event_id` (the inbox)."""

    def __init__(self, *, contracts: ContractSource, mint: TokenMinter, service: str) -> None:
        super().__init__(service, HANDLED)
        self.contracts = contracts
        self._mint = mint

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        conn = context.conn
        envelopes = [item.body for item in records]
        await approval_store.lock_runs(
            conn, {e.correlation_id for e in envelopes if e.event_type != BUTTON_PRESSED}
        )
        starting = {e.correlation_id for e in envelopes if e.event_type == RUN_STARTED}
        ending = {e.correlation_id for e in envelopes if e.event_type in RUN_ENDED}
        # A run that ends without waiting for its call (cancelled, timed out) never says
        # `run.approval_awaited`: its end releases the hold as a start would.
        released = await approval_store.held_for(conn, starting | ending)
        work: list[tuple[Envelope[Any], bytes]] = [
            (item.body, item.raw.value or b"") for item in records
        ]
        # A hold released by its run's start (or end) is decided right after it.
        work = _after_run_facts(work, released)
        run_ids = {e.correlation_id for e, _ in work if e.event_type != BUTTON_PRESSED}
        named: set[uuid.UUID] = set()
        for env, _ in work:
            if env.event_type == APPROVAL_REQUIRED:
                named.add(approval_id_of(env.project_id, env.payload.call_id))
            elif env.event_type == BUTTON_PRESSED and (vote := vote_of_button(env.payload.value)):
                named.add(vote[1])
        runs = await approval_store.runs(conn, run_ids)
        requests = await approval_store.lock_requests(conn, named, ending)
        batch = _Batch(self.contracts.view, self._mint, runs, requests)
        for env, raw in work:
            if env.event_type == RUN_STARTED:
                batch.started(env)
            elif env.event_type in RUN_ENDED:
                batch.ended(env)
            elif env.event_type == APPROVAL_REQUIRED:
                batch.approval_required(env, raw)
            elif env.event_type == BUTTON_PRESSED:
                batch.pressed(env)
        await approval_store.save_runs(conn, batch.changed_runs.values())
        await approval_store.hold(conn, [held for held, _ in batch.held.values()])
        await approval_store.save_requests(conn, list(batch.changed.values()))
        await context.append(batch.events)


def _after_run_facts(
    work: list[tuple[Envelope[Any], bytes]], released: Sequence[HeldCall]
) -> list[tuple[Envelope[Any], bytes]]:
    """`work` with each released hold placed right after the first event that made its
    run known: its `run.approval_awaited`, or its end. Placed after an end, the hold
    becomes a request that the end expires at once (its call is denied, not forgotten)."""
    if not released:
        return work
    by_run: dict[str, list[tuple[Envelope[Any], bytes]]] = {}
    for held in released:
        envelope = _CODEC.decode(held.envelope)
        by_run.setdefault(held.run_id, []).append((envelope, held.envelope))
    out: list[tuple[Envelope[Any], bytes]] = []
    for env, raw in work:
        out.append((env, raw))
        if env.event_type == RUN_STARTED or env.event_type in RUN_ENDED:
            out.extend(by_run.pop(env.correlation_id, []))
    return out
