"""A tool call as the gateway tracks it, and the events it answers with.

A call's events form its `tool_call` stream (`stream_id` = the call id): a call
is blocked, succeeds or fails exactly once. A call never held has that outcome as
its one event (`stream_seq` 1). A call held for an approval says so first
(`gateway.approval_required`, `stream_seq` 1), and every later event of it
continues the sequence: the attempts of the approved call that are retried
(`gateway.tool_call_retried`), then its outcome, or gate 5's refusal. Events name
the run as correlation, the request as cause, and carry the request's trace id.
Each shows the call's arguments only redacted (`Shown`), with their hash and the
redaction counts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from awooop.contracts.events.payloads.gateway import (
    ApprovalRequired,
    ToolCallBlocked,
    ToolCallFailed,
    ToolCallRetried,
    ToolCallSucceeded,
)
from awooop.contracts.events.payloads.run import ToolCallRequested
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.service_names import MCP_GATEWAY
from awooop.mcp_gateway.domain.gates import GateRefusal
from awooop.mcp_gateway.domain.results import MAX_RESULT_BYTES
from awooop.security.canonical_json import NotCanonicalizable, canonical_sha256
from awooop.security.redaction import redact_counted

STREAM_TYPE = "tool_call"
OUTCOME_SEQ = 1
"""The `stream_seq` of a call's first event (its outcome, or the approval it waits for)."""
ACTOR = f"service:{MCP_GATEWAY}"

P = TypeVar(
    "P", ToolCallBlocked, ToolCallSucceeded, ToolCallFailed, ApprovalRequired, ToolCallRetried
)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One requested call: what to run, until when, and whom to answer."""

    call_id: str
    run_id: str
    project_id: str
    tool: str
    arguments: dict[str, Any]
    execute_before: datetime
    trace_id: str
    request_event_id: uuid.UUID
    agent_ref: str | None = None
    """The agent revision whose step asked for the call."""


@dataclass(frozen=True, slots=True)
class Shown:
    """What an event may show of a call's arguments: redacted, with their hash and the
    redaction counts (the hash is empty for arguments with no canonical JSON form)."""

    arguments: dict[str, Any]
    argument_hash: str
    redactions: dict[str, int]


def argument_hash(arguments: dict[str, Any]) -> str:
    """The SHA-256 of the arguments' RFC 8785 canonical JSON, or "" when they have none."""
    try:
        return canonical_sha256(arguments)
    except NotCanonicalizable:
        return ""


def shown(call: ToolCall) -> Shown:
    redacted = redact_counted(call.arguments, limit=MAX_RESULT_BYTES)
    value = redacted.value if isinstance(redacted.value, dict) else {"_": redacted.value}
    return Shown(value, argument_hash(call.arguments), dict(redacted.counts))


def merged(*counts: dict[str, int]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in counts:
        for kind, count in part.items():
            total[kind] = total.get(kind, 0) + count
    return total


def requested_call(request: Envelope[ToolCallRequested]) -> ToolCall:
    """The call a `run.tool_call_requested` asks for (the run is its correlation id)."""
    payload = request.payload
    return ToolCall(
        call_id=payload.call_id,
        run_id=request.correlation_id,
        project_id=request.project_id,
        tool=payload.tool,
        arguments=dict(payload.arguments),
        execute_before=payload.execute_before,
        trace_id=request.trace_id,
        request_event_id=request.event_id,
        agent_ref=payload.revisions[0] if payload.revisions else None,
    )


def _facts(call: ToolCall, show: Shown, extra: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "tool": call.tool,
        "argument_hash": show.argument_hash,
        "arguments": show.arguments,
        "redactions": merged(show.redactions, extra or {}),
    }


def blocked(
    call: ToolCall, refusal: GateRefusal, at: datetime, *, seq: int = OUTCOME_SEQ
) -> Envelope[ToolCallBlocked]:
    payload = ToolCallBlocked(
        **_facts(call, shown(call)),
        gate=refusal.gate,
        code=refusal.code,
        reason=refusal.reason,
        revisions=refusal.revisions,
        retry_after=refusal.retry_after,
        would_need=refusal.would_need,
    )
    return _outcome(call, payload, at, seq)


def approval_required(
    call: ToolCall,
    *,
    action_hash: str,
    revisions: tuple[str, ...],
    scope: Any,
    mode: Any,
    reason: str,
    at: datetime,
) -> Envelope[ApprovalRequired]:
    payload = ApprovalRequired(
        **_facts(call, shown(call)),
        action_hash=action_hash,
        revisions=revisions,
        scope=scope,
        mode=mode,
        reason=reason,
    )
    return _outcome(call, payload, at)


def succeeded(
    call: ToolCall,
    result: dict[str, Any] | str,
    revision: str,
    at: datetime,
    *,
    result_redactions: dict[str, int] | None = None,
    latency_ms: float | None = None,
    seq: int = OUTCOME_SEQ,
) -> Envelope[ToolCallSucceeded]:
    payload = ToolCallSucceeded(
        **_facts(call, shown(call), result_redactions),
        result=result,
        revisions=(revision,),
        latency_ms=latency_ms,
    )
    return _outcome(call, payload, at, seq)


def failed(
    call: ToolCall,
    code: str,
    reason: str,
    at: datetime,
    *,
    transient: bool | None = None,
    revisions: tuple[str, ...] = (),
    latency_ms: float | None = None,
    seq: int = OUTCOME_SEQ,
) -> Envelope[ToolCallFailed]:
    payload = ToolCallFailed(
        **_facts(call, shown(call)),
        code=code,
        reason=reason,
        transient=transient,
        revisions=revisions,
        latency_ms=latency_ms,
    )
    return _outcome(call, payload, at, seq)


def retried(
    call: ToolCall,
    *,
    attempt: int,
    code: str,
    reason: str,
    retry_in: float,
    latency_ms: float | None,
    at: datetime,
    seq: int,
) -> Envelope[ToolCallRetried]:
    """Attempt `attempt` of an approved call failed transiently; the next starts after
    `retry_in` seconds. `reason` is already redacted and bounded, as a failure's."""
    payload = ToolCallRetried(
        **_facts(call, shown(call)),
        attempt=attempt,
        code=code,
        reason=reason,
        retry_in=retry_in,
        latency_ms=latency_ms,
    )
    return _outcome(call, payload, at, seq)


def _outcome(call: ToolCall, payload: P, at: datetime, seq: int = OUTCOME_SEQ) -> Envelope[P]:
    return new_envelope(
        payload,
        occurred_at=at,
        project_id=call.project_id,
        stream_type=STREAM_TYPE,
        stream_id=call.call_id,
        stream_seq=seq,
        trace_id=call.trace_id,
        correlation_id=call.run_id,
        causation_id=str(call.request_event_id),
        actor=ACTOR,
        producer=MCP_GATEWAY,
    )
