"""The gateway's batch processor: every requested or approved call of a batch through
the five gates.

Inside the consumer's transaction, with no network call but Redis (the rate limiter's
one round trip per batch, and the approval tokens' early replay check):

1. the held calls the batch's `run.tool_call_approved` name are loaded (one `SELECT`);
   an approval for a call no longer `awaiting_approval` (granted before, decided
   otherwise, unknown) is left alone: a redelivery changes nothing and says nothing;
2. the batch's kill-switch events (`budget.tenant_killed`, `budget.tenant_reset`),
   requests and approvals are taken in order, so a call sees the kill switch as the
   events before it left it;
3. every request, and every approved call as stored, passes gates 1 to 3 and the kill
   switch (`domain.gates.first_gates`), then the rate limits of the survivors in one
   `RateLimiter.take` (for the limited requests no earlier batch decided: one
   `SELECT`, only when a request is limited), then gate 5: a request the mode table
   asks an approval for is held; an approved call's token must verify, be bound to
   the call as held now and never have been used (`approval_gate`);
4. one upsert records the decisions (new rows for requests, `awaiting_approval →
   admitted | blocked` for approved calls); only the calls it recorded are answered
   (`gateway.tool_call_blocked`, `gateway.approval_required`), and one upsert and
   one delete record the kill switches.

An admitted call is only recorded: the executor runs it after the commit.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from awooop.contracts.families.tool import Tool
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.errors import E_MCP_GATE_007
from awooop.infra.contracts.reader import ContractSource
from awooop.infra.kafka.records import DecodedRecord
from awooop.infra.postgres.event_store import NewEvent
from awooop.infra.processor import BatchContext, EventProcessor
from awooop.mcp_gateway.adapters import kill_switches, tool_calls
from awooop.mcp_gateway.adapters.kill_switches import KillChange
from awooop.mcp_gateway.adapters.rate_limits import BucketRequest, RateDecision, RateLimiter
from awooop.mcp_gateway.adapters.tool_calls import Decided, outcome_event
from awooop.mcp_gateway.adapters.used_tokens import EarlyReplayCheck
from awooop.mcp_gateway.approval_gate import ApprovalGate
from awooop.mcp_gateway.domain.approvals import HeldCall, Presented, held_action_hash
from awooop.mcp_gateway.domain.calls import (
    OUTCOME_SEQ,
    ToolCall,
    approval_required,
    blocked,
    requested_call,
)
from awooop.mcp_gateway.domain.gates import (
    GateInput,
    GateRefusal,
    Passed,
    Validators,
    first_gates,
    refusal,
)
from awooop.security.approval_tokens import ApprovalTokenVerifier

TOOL_CALL_REQUESTED = "run.tool_call_requested"
TOOL_CALL_APPROVED = "run.tool_call_approved"
TENANT_KILLED = "budget.tenant_killed"
TENANT_RESET = "budget.tenant_reset"
HANDLED = (TOOL_CALL_REQUESTED, TOOL_CALL_APPROVED, TENANT_KILLED, TENANT_RESET)

REMEMBERED_RATE_ANSWERS = 4096
"""Rate answers kept by call id for retries of a batch (a batch holds far fewer calls)."""

Clock = Callable[[], dt.datetime]
Listing = Callable[[str, Tool], Mapping[str, str] | None]
"""The live listing of a tool's server (server-side name → pin), None before one."""


@dataclass(frozen=True, slots=True)
class _Pending:
    call: ToolCall
    decision: Passed | GateRefusal
    approval: Presented | None = None
    """The approval presented, for a held call; None for a new request."""


class GatewayProcessor(EventProcessor):
    """Gate decisions for `run.tool_call_requested` and `run.tool_call_approved`, kill
    switches from the budget events; `wake_executor` runs after a batch that admitted
    calls committed. `verifier` checks approval tokens (None: every one is refused
    `E-MCP-GATE-008`); `replay_check` is Redis's early word on used tokens (the
    limiter's client; none by default)."""

    def __init__(
        self,
        *,
        contracts: ContractSource,
        listing: Listing,
        limiter: RateLimiter,
        wake_executor: Callable[[], None],
        clock: Clock,
        service: str,
        verifier: ApprovalTokenVerifier | None = None,
        replay_check: EarlyReplayCheck | None = None,
    ) -> None:
        super().__init__(service, HANDLED)
        self._contracts = contracts
        self._listing = listing
        self._limiter = limiter
        self._wake_executor = wake_executor
        self._clock = clock
        self._validators = Validators()
        self._rate_answers: OrderedDict[str, RateDecision] = OrderedDict()
        self._approvals = ApprovalGate(verifier, replay_check or EarlyReplayCheck(None), clock)

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        conn = context.conn
        envelopes: list[Envelope[Any]] = [item.body for item in records]
        approved_ids = [e.payload.call_id for e in envelopes if e.event_type == TOOL_CALL_APPROVED]
        held = await tool_calls.held(conn, approved_ids)
        projects = {e.project_id for e in envelopes if e.event_type == TOOL_CALL_REQUESTED}
        projects |= {h.call.project_id for h in held.values()}
        killed = await kill_switches.killed(conn, projects)
        changes: dict[str, KillChange] = {}
        pending: list[_Pending] = []
        seen: set[str] = set()
        for envelope in envelopes:
            if envelope.event_type in (TENANT_KILLED, TENANT_RESET):
                change = KillChange(
                    envelope.event_type == TENANT_KILLED, envelope.occurred_at, envelope.event_id
                )
                changes[envelope.project_id] = change
                (killed.add if change.killed else killed.discard)(envelope.project_id)
                continue
            presented = None
            if envelope.event_type == TOOL_CALL_APPROVED:
                presented = _presented(envelope, held)
                if presented is None:
                    continue  # no longer awaiting approval: nothing to decide
                call = presented.held.call
            else:
                call = requested_call(envelope)
                if call.call_id in held:
                    continue  # a request redelivered for a call already held
            if call.call_id in seen:
                continue  # asked or approved twice in one batch: decided once
            seen.add(call.call_id)
            decision = self._first_gates(call, call.project_id in killed)
            pending.append(_Pending(call, decision, presented))

        pending = await self._rate_limited(conn, pending)
        decided, events = await self._final(conn, pending)
        recorded = await tool_calls.record_decisions(conn, decided)
        await context.append([e for call_id, e in events if call_id in recorded])
        await kill_switches.apply(conn, changes)
        if any(d.status == "admitted" and d.call.call_id in recorded for d in decided):
            context.after_commit(self._wake_executor)

    def _first_gates(self, call: ToolCall, killed: bool) -> Passed | GateRefusal:
        view = self._contracts.view
        tool = view.tool(call.project_id, call.tool)
        return first_gates(
            view,
            GateInput(call.project_id, call.tool, call.arguments, call.agent_ref),
            listing=self._listing(call.project_id, tool.document) if tool else None,
            killed=killed,
            validators=self._validators,
        )

    async def _rate_limited(
        self, conn: asyncpg.Connection, pending: list[_Pending]
    ) -> list[_Pending]:
        """Gate 4's rate limits: one `take` for the limited calls of the batch that no
        earlier batch decided (a redelivery spends no token; an approved call was loaded
        still held, so its approval is decided here and takes a token of its own) and
        that no earlier attempt of this batch already took for (Redis is outside the
        transaction a retry rolls back, so the answer is remembered by call id and kind)."""
        limited = [
            (index, item, item.decision, item.decision.rate_limit)
            for index, item in enumerate(pending)
            if isinstance(item.decision, Passed) and item.decision.rate_limit is not None
        ]
        if not limited:
            return pending
        requests = [item.call.call_id for _, item, _, _ in limited if item.approval is None]
        open_ids = await tool_calls.undecided(conn, requests) if requests else set()
        # An approved call was loaded still held: its approval is decided in this batch.
        asking = [
            entry for entry in limited if entry[1].approval or entry[1].call.call_id in open_ids
        ]
        unknown = [entry for entry in asking if _answer_key(entry[1]) not in self._rate_answers]
        answers = await self._limiter.take(
            [
                BucketRequest(
                    item.call.project_id,
                    passed.agent_id,
                    item.call.tool,
                    rate.per_minute,
                    rate.burst,
                )
                for _, item, passed, rate in unknown
            ]
        )
        for (_, item, _, _), answer in zip(unknown, answers, strict=True):
            self._rate_answers[_answer_key(item)] = answer
        while len(self._rate_answers) > REMEMBERED_RATE_ANSWERS:
            self._rate_answers.popitem(last=False)
        out = list(pending)
        for index, item, passed, rate in asking:
            call = item.call
            answer = self._rate_answers[_answer_key(item)]
            if answer.allowed:
                continue
            reason = (
                f"{call.tool!r} is limited to {rate.per_minute} calls a minute "
                f"(burst {rate.burst}) per agent; retry after {answer.retry_after:.3f} s"
            )
            refused = refusal(
                E_MCP_GATE_007.code, reason, passed.revisions, retry_after=answer.retry_after
            )
            out[index] = _Pending(call, refused, item.approval)
        return out

    async def _final(
        self, conn: asyncpg.Connection, pending: list[_Pending]
    ) -> tuple[list[Decided], list[tuple[str, NewEvent]]]:
        """Gate 5, and the rows and events of the batch's decisions, in batch order."""
        approved = [
            (item.approval, item.decision)
            for item in pending
            if item.approval is not None and isinstance(item.decision, Passed)
        ]
        gate_5 = iter(await self._approvals.decide(conn, approved))
        decided: list[Decided] = []
        events: list[tuple[str, NewEvent]] = []
        now = self._clock()
        for item in pending:
            call, decision, approval = item.call, item.decision, item.approval
            if approval is not None:
                answer = decision if isinstance(decision, GateRefusal) else next(gate_5)
                decided.append(_approval_decided(approval, decision, answer))
                if answer is not None:
                    refused = blocked(call, answer, now, seq=approval.held.next_seq)
                    events.append((call.call_id, outcome_event(refused)))
            elif isinstance(decision, GateRefusal):
                read = ",".join(decision.revisions)
                decided.append(Decided(call, "blocked", read, decision.code))
                events.append((call.call_id, outcome_event(blocked(call, decision, now))))
            elif decision.approval is not None:
                # gateway.approval_required takes the stream's first seq.
                holding = Decided(
                    call, "awaiting_approval", decision.tool.ref, None, next_seq=OUTCOME_SEQ + 1
                )
                decided.append(holding)
                events.append((call.call_id, outcome_event(_held(call, decision, now))))
            else:
                # The admitting revision is kept with the call: the executor runs that one.
                decided.append(Decided(call, "admitted", decision.tool.ref, None))
        return decided, events


def _presented(envelope: Envelope[Any], held: dict[str, HeldCall]) -> Presented | None:
    """The approval `envelope` presents for a held call of its own project and run, or
    None when there is none to decide (the call is not held, or is another tenant's or
    another run's: never theirs to release)."""
    payload = envelope.payload
    found = held.get(payload.call_id)
    if found is None or (found.call.project_id, found.call.run_id) != (
        envelope.project_id,
        envelope.correlation_id,
    ):
        return None
    # The call runs by the approval's deadline: its request's passed while people decided.
    fresh = replace(found, call=replace(found.call, execute_before=payload.execute_before))
    return Presented(fresh, payload.approval_id, payload.token)


def _approval_decided(
    approval: Presented, decision: Passed | GateRefusal, answer: GateRefusal | None
) -> Decided:
    """The row of an approved call: admitted (the executor runs the revision that admitted
    it now), or blocked with its refusal's code, the refusal taking the next seq."""
    call, seq = approval.held.call, approval.held.next_seq
    if answer is None:
        assert isinstance(decision, Passed)
        return Decided(call, "admitted", decision.tool.ref, None, approval.approval_id, seq)
    read = ",".join(answer.revisions)
    return Decided(call, "blocked", read, answer.code, approval.approval_id, seq + 1)


def _answer_key(item: _Pending) -> str:
    """Rate answers are remembered per decision: an approved call takes its own token."""
    return item.call.call_id if item.approval is None else f"{item.call.call_id} approved"


def _held(call: ToolCall, passed: Passed, now: dt.datetime) -> Any:
    """Gate 5 without an approval yet: `gateway.approval_required` naming the action (gate 3
    refused every call whose arguments have no canonical form to hash)."""
    return approval_required(
        call,
        action_hash=held_action_hash(call, passed.policy_ref),
        revisions=passed.revisions,
        scope=passed.tool.document.scope,
        mode=passed.mode,
        reason=passed.approval or "",
        at=now,
    )
