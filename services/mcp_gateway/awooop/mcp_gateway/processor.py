"""The gateway's batch processor: every requested call of a batch through the five gates.

Inside the consumer's transaction, with no network call but the rate limiter's one
Redis round trip per batch:

1. the batch's kill-switch events (`budget.tenant_killed`, `budget.tenant_reset`) and
   requests are taken in order, so a request sees the kill switch as the events before
   it left it;
2. every request passes gates 1 to 3 and the kill switch (`domain.gates.first_gates`),
   then the rate limits of the survivors in one `RateLimiter.take` (for the limited
   calls no earlier batch decided: one `SELECT`, only when a call is limited), then
   gate 5;
3. one `INSERT` records the decisions; only the calls that insert got recorded here
   are answered (`gateway.tool_call_blocked`, `gateway.approval_required`), and one
   upsert and one delete record the kill switches.

An admitted call is only recorded: the executor runs it after the commit.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
from awooop.mcp_gateway.domain.calls import ToolCall, approval_required, blocked, requested_call
from awooop.mcp_gateway.domain.gates import (
    GateInput,
    GateRefusal,
    Passed,
    Validators,
    first_gates,
    refusal,
)
from awooop.security.action_hash import action_hash

TOOL_CALL_REQUESTED = "run.tool_call_requested"
TENANT_KILLED = "budget.tenant_killed"
TENANT_RESET = "budget.tenant_reset"
HANDLED = (TOOL_CALL_REQUESTED, TENANT_KILLED, TENANT_RESET)

REMEMBERED_RATE_ANSWERS = 4096
"""Rate answers kept by call id for retries of a batch (a batch holds far fewer calls)."""

Clock = Callable[[], dt.datetime]
Listing = Callable[[str, Tool], Mapping[str, str] | None]
"""The live listing of a tool's server (server-side name → pin), None before one."""


@dataclass(frozen=True, slots=True)
class _Pending:
    call: ToolCall
    decision: Passed | GateRefusal


class GatewayProcessor(EventProcessor):
    """Gate decisions for `run.tool_call_requested`, kill switches from the budget events;
    `wake_executor` runs after a batch that admitted calls committed."""

    def __init__(
        self,
        *,
        contracts: ContractSource,
        listing: Listing,
        limiter: RateLimiter,
        wake_executor: Callable[[], None],
        clock: Clock,
        service: str,
    ) -> None:
        super().__init__(service, HANDLED)
        self._contracts = contracts
        self._listing = listing
        self._limiter = limiter
        self._wake_executor = wake_executor
        self._clock = clock
        self._validators = Validators()
        self._rate_answers: OrderedDict[str, RateDecision] = OrderedDict()

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        conn = context.conn
        envelopes: list[Envelope[Any]] = [item.body for item in records]
        requested = [requested_call(e) for e in envelopes if e.event_type == TOOL_CALL_REQUESTED]
        seen: set[str] = set()
        projects = {call.project_id for call in requested}
        killed = await kill_switches.killed(conn, projects)
        changes: dict[str, KillChange] = {}
        pending: list[_Pending] = []
        view = self._contracts.view
        calls = iter(requested)
        for envelope in envelopes:
            if envelope.event_type in (TENANT_KILLED, TENANT_RESET):
                change = KillChange(
                    envelope.event_type == TENANT_KILLED, envelope.occurred_at, envelope.event_id
                )
                changes[envelope.project_id] = change
                (killed.add if change.killed else killed.discard)(envelope.project_id)
                continue
            call = next(calls)
            if call.call_id in seen:
                continue  # asked twice in one batch: decided once
            seen.add(call.call_id)
            tool = view.tool(call.project_id, call.tool)
            decision = first_gates(
                view,
                GateInput(call.project_id, call.tool, call.arguments, call.agent_ref),
                listing=self._listing(call.project_id, tool.document) if tool else None,
                killed=call.project_id in killed,
                validators=self._validators,
            )
            pending.append(_Pending(call, decision))

        pending = await self._rate_limited(conn, pending)
        decided, events = self._final(pending)
        recorded = await tool_calls.record_decisions(conn, decided)
        await context.append([e for call_id, e in events if call_id in recorded])
        await kill_switches.apply(conn, changes)
        if any(d.status == "admitted" and d.call.call_id in recorded for d in decided):
            context.after_commit(self._wake_executor)

    async def _rate_limited(
        self, conn: asyncpg.Connection, pending: list[_Pending]
    ) -> list[_Pending]:
        """Gate 4's rate limits: one `take` for the limited calls of the batch that no
        earlier batch decided (a redelivery spends no token) and that no earlier attempt
        of this batch already took for (Redis is outside the transaction a retry rolls
        back, so the answer is remembered by call id)."""
        limited = [
            (index, item.call, item.decision, item.decision.rate_limit)
            for index, item in enumerate(pending)
            if isinstance(item.decision, Passed) and item.decision.rate_limit is not None
        ]
        if not limited:
            return pending
        open_ids = await tool_calls.undecided(conn, [call.call_id for _, call, _, _ in limited])
        asking = [entry for entry in limited if entry[1].call_id in open_ids]
        unknown = [entry for entry in asking if entry[1].call_id not in self._rate_answers]
        answers = await self._limiter.take(
            [
                BucketRequest(
                    call.project_id, passed.agent_id, call.tool, rate.per_minute, rate.burst
                )
                for _, call, passed, rate in unknown
            ]
        )
        for (_, call, _, _), answer in zip(unknown, answers, strict=True):
            self._rate_answers[call.call_id] = answer
        while len(self._rate_answers) > REMEMBERED_RATE_ANSWERS:
            self._rate_answers.popitem(last=False)
        out = list(pending)
        for index, call, passed, rate in asking:
            answer = self._rate_answers[call.call_id]
            if answer.allowed:
                continue
            reason = (
                f"{call.tool!r} is limited to {rate.per_minute} calls a minute "
                f"(burst {rate.burst}) per agent; retry after {answer.retry_after:.3f} s"
            )
            refused = refusal(
                E_MCP_GATE_007.code, reason, passed.revisions, retry_after=answer.retry_after
            )
            out[index] = _Pending(call, refused)
        return out

    def _final(self, pending: list[_Pending]) -> tuple[list[Decided], list[tuple[str, NewEvent]]]:
        """Gate 5, and the rows and events of the batch's decisions."""
        decided: list[Decided] = []
        events: list[tuple[str, NewEvent]] = []
        now = self._clock()
        for item in pending:
            call, decision = item.call, item.decision
            if isinstance(decision, GateRefusal):
                read = ",".join(decision.revisions)
                decided.append(Decided(call, "blocked", read, decision.code))
                events.append((call.call_id, outcome_event(blocked(call, decision, now))))
            elif decision.approval is not None:
                decided.append(Decided(call, "awaiting_approval", decision.tool.ref, None))
                events.append((call.call_id, outcome_event(_held(call, decision, now))))
            else:
                # The admitting revision is kept with the call: the executor runs that one.
                decided.append(Decided(call, "admitted", decision.tool.ref, None))
        return decided, events


def _held(call: ToolCall, passed: Passed, now: dt.datetime) -> Any:
    """Gate 5 without an approval yet: `gateway.approval_required` naming the action (gate 3
    refused every call whose arguments have no canonical form to hash)."""
    hashed = action_hash(
        project_id=call.project_id,
        run_id=call.run_id,
        call_id=call.call_id,
        tool=call.tool,
        arguments=call.arguments,
        policy_revision=passed.policy_ref,
    )
    return approval_required(
        call,
        action_hash=hashed,
        revisions=passed.revisions,
        scope=passed.tool.document.scope,
        mode=passed.mode,
        reason=passed.approval or "",
        at=now,
    )
