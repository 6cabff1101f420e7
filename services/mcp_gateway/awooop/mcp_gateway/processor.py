"""The gateway's batch processor: every requested call of a batch through the five gates.

Inside the consumer's transaction, with no network call but the rate limiter's one
Redis round trip per batch:

1. the batch's kill-switch events (`budget.tenant_killed`, `budget.tenant_reset`) and
   requests are taken in order, so a request sees the kill switch as the events before
   it left it;
2. requests already decided (a redelivery, a retried step's same call id) are skipped
   with one `SELECT`; the others pass gates 1 to 3 and the kill switch
   (`domain.gates.first_gates`), then the rate limits of the survivors in one
   `RateLimiter.take`, then gate 5;
3. one `INSERT` records the decisions; only the calls that insert got recorded here
   are answered (`gateway.tool_call_blocked`, `gateway.approval_required`), and one
   upsert and one delete record the kill switches.

An admitted call is only recorded: the executor runs it after the commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from awooop.contracts.families.tool import Tool
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.errors import E_MCP_GATE_004, E_MCP_GATE_007
from awooop.infra.contracts.reader import ContractSource
from awooop.infra.kafka.records import DecodedRecord
from awooop.infra.postgres.event_store import NewEvent
from awooop.infra.processor import BatchContext, EventProcessor
from awooop.mcp_gateway.adapters import kill_switches, tool_calls
from awooop.mcp_gateway.adapters.kill_switches import KillChange
from awooop.mcp_gateway.adapters.rate_limits import BucketRequest, RateLimiter
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
from awooop.security.canonical_json import NotCanonicalizable

TOOL_CALL_REQUESTED = "run.tool_call_requested"
TENANT_KILLED = "budget.tenant_killed"
TENANT_RESET = "budget.tenant_reset"
HANDLED = (TOOL_CALL_REQUESTED, TENANT_KILLED, TENANT_RESET)

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

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        conn = context.conn
        envelopes: list[Envelope[Any]] = [item.body for item in records]
        requested = [requested_call(e) for e in envelopes if e.event_type == TOOL_CALL_REQUESTED]
        open_ids = await tool_calls.undecided(conn, [c.call_id for c in requested])
        projects = {e.project_id for e in envelopes}
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
            if call.call_id not in open_ids:
                continue
            open_ids.discard(call.call_id)  # a second request of it in this batch waits
            tool = view.tool(call.project_id, call.tool)
            decision = first_gates(
                view,
                GateInput(call.project_id, call.tool, call.arguments, call.agent_ref),
                listing=self._listing(call.project_id, tool.document) if tool else None,
                killed=call.project_id in killed,
                validators=self._validators,
            )
            pending.append(_Pending(call, decision))

        pending = await self._rate_limited(pending)
        decided, events = self._final(pending)
        recorded = await tool_calls.record_decisions(conn, decided)
        await context.append([e for call_id, e in events if call_id in recorded])
        await kill_switches.apply(conn, changes)
        if any(d.status == "admitted" and d.call.call_id in recorded for d in decided):
            context.after_commit(self._wake_executor)

    async def _rate_limited(self, pending: list[_Pending]) -> list[_Pending]:
        """Gate 4's rate limits, one `take` for every limited call of the batch."""
        limited = [
            (index, item.call, item.decision, item.decision.rate_limit)
            for index, item in enumerate(pending)
            if isinstance(item.decision, Passed) and item.decision.rate_limit is not None
        ]
        if not limited:
            return pending
        answers = await self._limiter.take(
            [
                BucketRequest(
                    call.project_id, passed.agent_id, call.tool, rate.per_minute, rate.burst
                )
                for _, call, passed, rate in limited
            ]
        )
        out = list(pending)
        for (index, call, passed, rate), answer in zip(limited, answers, strict=True):
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
            if isinstance(decision, Passed) and decision.approval is not None:
                held = self._held(call, decision, now)
                if isinstance(held, GateRefusal):
                    decision = held
                else:
                    decided.append(Decided(call, "awaiting_approval", decision.tool.ref, None))
                    events.append((call.call_id, outcome_event(held)))
                    continue
            if isinstance(decision, GateRefusal):
                read = ",".join(decision.revisions)
                decided.append(Decided(call, "blocked", read, decision.code))
                events.append((call.call_id, outcome_event(blocked(call, decision, now))))
                continue
            # The admitting revision is kept with the call: the executor runs that revision.
            decided.append(Decided(call, "admitted", decision.tool.ref, None))
        return decided, events

    @staticmethod
    def _held(call: ToolCall, passed: Passed, now: dt.datetime) -> Any:
        """Gate 5 without an approval yet: `gateway.approval_required` naming the action
        (a refusal when the arguments have no canonical form to hash)."""
        try:
            hashed = action_hash(
                project_id=call.project_id,
                run_id=call.run_id,
                call_id=call.call_id,
                tool=call.tool,
                arguments=call.arguments,
                policy_revision=passed.policy_ref,
            )
        except NotCanonicalizable:
            reason = "the arguments have no canonical JSON form, so no approval can name them"
            return refusal(E_MCP_GATE_004.code, reason, passed.revisions)
        return approval_required(
            call,
            action_hash=hashed,
            revisions=passed.revisions,
            scope=passed.tool.document.scope,
            mode=passed.mode,
            reason=passed.approval or "",
            at=now,
        )
