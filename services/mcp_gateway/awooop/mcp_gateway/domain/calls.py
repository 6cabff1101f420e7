"""A tool call as the gateway tracks it, and the outcome events it answers with.

Every outcome is the one event of its `tool_call` stream (`stream_id` = the
call id, `stream_seq` 1): a call is blocked, succeeds or fails exactly once.
Outcomes name the run as correlation, the request as cause, and carry the
request's trace id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from awooop.contracts.events.payloads.gateway import (
    ToolCallBlocked,
    ToolCallFailed,
    ToolCallSucceeded,
)
from awooop.contracts.events.payloads.run import ToolCallRequested
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.service_names import MCP_GATEWAY
from awooop.mcp_gateway.domain.gate import GateRefusal

STREAM_TYPE = "tool_call"
OUTCOME_SEQ = 1
ACTOR = f"service:{MCP_GATEWAY}"

P = TypeVar("P", ToolCallBlocked, ToolCallSucceeded, ToolCallFailed)


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
    )


def blocked(call: ToolCall, refusal: GateRefusal, at: datetime) -> Envelope[ToolCallBlocked]:
    payload = ToolCallBlocked(
        call_id=call.call_id, gate=refusal.gate, code=refusal.code, revisions=refusal.revisions
    )
    return _outcome(call, payload, at)


def succeeded(
    call: ToolCall, result: dict[str, Any] | str, revision: str, at: datetime
) -> Envelope[ToolCallSucceeded]:
    payload = ToolCallSucceeded(call_id=call.call_id, result=result, revisions=(revision,))
    return _outcome(call, payload, at)


def failed(call: ToolCall, code: str, reason: str, at: datetime) -> Envelope[ToolCallFailed]:
    return _outcome(call, ToolCallFailed(call_id=call.call_id, code=code, reason=reason), at)


def _outcome(call: ToolCall, payload: P, at: datetime) -> Envelope[P]:
    return new_envelope(
        payload,
        occurred_at=at,
        project_id=call.project_id,
        stream_type=STREAM_TYPE,
        stream_id=call.call_id,
        stream_seq=OUTCOME_SEQ,
        trace_id=call.trace_id,
        correlation_id=call.run_id,
        causation_id=str(call.request_event_id),
        actor=ACTOR,
        producer=MCP_GATEWAY,
    )
