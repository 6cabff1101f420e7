"""Every tool call a run asked for, as the read side shows it: one `mcp_calls` row per
`call_id`, with what the gateway decided about it.

The runtime's and the gateway's streams feed a row, on two topics, in no guaranteed
order (and a denied approval, below):

* the runtime's `run.tool_call_requested` (`awooop.run.events.v1`) owns `requested_at`
  and names the tool. Its `arguments` are the agent's own and never reach the row;
* the gateway's events (`awooop.gateway.events.v1`): `gateway.approval_required`, then
  one outcome, `gateway.tool_call_succeeded`, `…_blocked` or `…_failed`. Each names the
  call's display arguments (already redacted), their hash and the call's tool, the same
  on every event of one call, so those columns are written once (first non-null value);
  `action_hash` is the approval's alone.

The decision columns (`DECISION_COLUMNS`: status, gate, code, reason, …) are owned
together by one gateway event (or denial): the one with the highest `(rank of its status,
occurred_at, event_id)`, where an outcome outranks `awaiting_approval`. A row that only
the request has fed is `requested`. The same rule runs in memory (`McpCallRow.merged`)
and in the SQL merge, so the row is the same whatever order the events of a call arrive
in, and a redelivered event changes nothing.

An approved call runs after its `gateway.approval_required` (seq 1 of the call's
`tool_call` stream): its outcome (seq 2 or later) outranks the approval as any outcome
does. Each attempt of it that failed and was tried again is one
`gateway.tool_call_retried`; `retries` keeps the highest `attempt` they name (the
number of retried attempts, whatever order they arrive in), and owns no decision.

A call whose approval is denied never runs and the gateway says nothing more of it: the
approval service's `approval.denied` is its outcome, shown as a refusal at gate 5
(`blocked`, gate 5, the `E-APPROVAL-*` code and the redacted reason) and ranked as any
outcome.

The tool is the request's when the request is known (it names what the agent asked for),
else the gateway's. An event upcast from a version that recorded no call facts
(`argument_hash` empty) leaves the arguments, their hash and the redaction counts
unknown (null). Reasons are redacted here before they are kept.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal

from awooop.contracts.records.envelope import Envelope
from awooop.security.redaction import redact_text

McpCallStatus = Literal["requested", "awaiting_approval", "succeeded", "blocked", "failed"]
MCP_CALL_STATUSES: tuple[McpCallStatus, ...] = (
    "requested",
    "awaiting_approval",
    "succeeded",
    "blocked",
    "failed",
)
STATUS_RANKS: dict[str, int] = {
    "requested": 0,
    "awaiting_approval": 1,
    "succeeded": 2,
    "blocked": 2,
    "failed": 2,
}
"""How far along a call a status is: a higher rank wins the decision columns."""

TOOL_CALL_REQUESTED = "run.tool_call_requested"
APPROVAL_REQUIRED = "gateway.approval_required"
TOOL_CALL_RETRIED = "gateway.tool_call_retried"
APPROVAL_DENIED = "approval.denied"
APPROVAL_GATE = 5
_OUTCOMES: dict[str, McpCallStatus] = {
    "gateway.tool_call_succeeded": "succeeded",
    "gateway.tool_call_blocked": "blocked",
    "gateway.tool_call_failed": "failed",
}
MCP_CALL_EVENT_TYPES = frozenset(
    {TOOL_CALL_REQUESTED, APPROVAL_REQUIRED, TOOL_CALL_RETRIED, APPROVAL_DENIED, *_OUTCOMES}
)

WRITE_ONCE_COLUMNS = (
    "run_id",
    "tool",
    "argument_hash",
    "arguments",
    "action_hash",
    "requested_at",
)
"""Each the same on every event that names it: the first non-null value is kept (the
tool: the request's first, see the module docstring)."""

DECISION_COLUMNS = (
    "status",
    "gate",
    "code",
    "reason",
    "retry_after",
    "would_need",
    "redactions",
    "latency_ms",
    "transient",
    "revisions",
    "decided_at",
    "decided_event_id",
)
"""Owned together by the winning gateway event (`decision_key`)."""

MCP_CALL_COLUMNS = ("project_id", "call_id", *WRITE_ONCE_COLUMNS, *DECISION_COLUMNS, "retries")

McpCallKey = tuple[str, str]
DecisionKey = tuple[int, dt.datetime, uuid.UUID]


@dataclass(frozen=True, slots=True)
class McpCallRow:
    """What some events say about one tool call; None where they say nothing."""

    project_id: str
    call_id: str
    run_id: uuid.UUID | None = None
    tool: str | None = None
    argument_hash: str | None = None
    arguments: dict[str, Any] | None = None
    action_hash: str | None = None
    requested_at: dt.datetime | None = None
    status: McpCallStatus = "requested"
    gate: int | None = None
    code: str | None = None
    reason: str | None = None
    retry_after: float | None = None
    would_need: str | None = None
    redactions: dict[str, int] | None = None
    latency_ms: float | None = None
    transient: bool | None = None
    revisions: list[str] | None = None
    decided_at: dt.datetime | None = None
    decided_event_id: uuid.UUID | None = None
    retries: int | None = None

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, column) for column in MCP_CALL_COLUMNS)

    @property
    def decision_key(self) -> DecisionKey | None:
        """The order in which gateway events win the decision; None for the request's."""
        if self.decided_event_id is None or self.decided_at is None:
            return None
        return (STATUS_RANKS[self.status], self.decided_at, self.decided_event_id)

    def merged(self, other: McpCallRow) -> McpCallRow:
        """The row both say, by the rules of the module docstring."""
        changes = {
            c: getattr(other, c)
            for c in WRITE_ONCE_COLUMNS
            if getattr(self, c) is None and getattr(other, c) is not None
        }
        if self.requested_at is None and other.requested_at is not None:
            changes["tool"] = other.tool if other.tool is not None else self.tool
        mine, theirs = self.decision_key, other.decision_key
        if theirs is not None and (mine is None or theirs > mine):
            changes |= {c: getattr(other, c) for c in DECISION_COLUMNS}
        if other.retries is not None and (self.retries is None or other.retries > self.retries):
            changes["retries"] = other.retries
        return replace(self, **changes)


def merge_mcp_call(rows: dict[McpCallKey, McpCallRow], row: McpCallRow) -> None:
    """Fold `row` into the batch's rows by the merge rule of `McpCallRow.merged`."""
    key = (row.project_id, row.call_id)
    held = rows.get(key)
    rows[key] = row if held is None else held.merged(row)


def _reason(text: str | None) -> str | None:
    return redact_text(text) if text else None


def _requested(e: Envelope[Any], run_id: uuid.UUID) -> McpCallRow:
    p = e.payload
    return McpCallRow(
        e.project_id, p.call_id, run_id=run_id, tool=p.tool, requested_at=e.occurred_at
    )


def _decided(e: Envelope[Any], run_id: uuid.UUID, status: McpCallStatus) -> McpCallRow:
    """The columns every gateway event of a call gives."""
    p = e.payload
    recorded = p.argument_hash != ""  # upcast from a version that recorded no call facts
    return McpCallRow(
        e.project_id,
        p.call_id,
        run_id=run_id,
        tool=p.tool or None,
        argument_hash=p.argument_hash if recorded else None,
        arguments=dict(p.arguments) if recorded else None,
        status=status,
        reason=_reason(getattr(p, "reason", None)),
        redactions=dict(p.redactions) if recorded else None,
        revisions=list(p.revisions),
        decided_at=e.occurred_at,
        decided_event_id=e.event_id,
    )


def _retried(e: Envelope[Any], run_id: uuid.UUID) -> McpCallRow:
    """A retried attempt: the call's facts and its attempt number, no decision."""
    p = e.payload
    recorded = p.argument_hash != ""
    return McpCallRow(
        e.project_id,
        p.call_id,
        run_id=run_id,
        tool=p.tool or None,
        argument_hash=p.argument_hash if recorded else None,
        arguments=dict(p.arguments) if recorded else None,
        retries=p.attempt,
    )


def _denied(e: Envelope[Any], run_id: uuid.UUID) -> McpCallRow:
    """A denied approval: the call's outcome, a refusal at gate 5 with the approval's code."""
    p = e.payload
    return McpCallRow(
        e.project_id,
        p.call_id,
        run_id=run_id,
        status="blocked",
        gate=APPROVAL_GATE,
        code=p.code,
        reason=_reason(p.reason),
        decided_at=e.occurred_at,
        decided_event_id=e.event_id,
    )


def mcp_call_row(envelope: Envelope[Any], run_id: uuid.UUID) -> McpCallRow | None:
    """What one event says about its call's row; None for an event about no tool call."""
    event_type, p = envelope.event_type, envelope.payload
    if event_type == TOOL_CALL_REQUESTED:
        return _requested(envelope, run_id)
    if event_type == APPROVAL_REQUIRED:
        row = _decided(envelope, run_id, "awaiting_approval")
        return replace(row, action_hash=p.action_hash)
    if event_type == TOOL_CALL_RETRIED:
        return _retried(envelope, run_id)
    if event_type == APPROVAL_DENIED:
        return _denied(envelope, run_id)
    status = _OUTCOMES.get(event_type)
    if status is None:
        return None
    row = _decided(envelope, run_id, status)
    if status == "succeeded":
        return replace(row, latency_ms=p.latency_ms)
    if status == "failed":
        return replace(row, code=p.code, transient=p.transient, latency_ms=p.latency_ms)
    return replace(
        row,
        gate=p.gate,
        code=p.code,
        retry_after=p.retry_after,
        would_need=p.would_need,
    )
