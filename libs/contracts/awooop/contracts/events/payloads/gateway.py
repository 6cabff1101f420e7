"""Payloads produced by the MCP gateway on ``awooop.gateway.events.v1``.

Every event of a call names the call (``call_id``, ``tool``), carries its arguments as
they may be shown (``arguments``: redacted and bounded, never as the agent produced
them; ``argument_hash`` is the SHA-256 of the RFC 8785 canonical JSON of the arguments
as produced, so two calls with the same arguments compare equal without showing them)
and how many values of each kind redaction replaced (``redactions``, kind → count,
never a value). Gate results are fields of these events, never events of their own.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from awooop.contracts.events.payloads.fields import (
    CallId,
    ErrorCodeText,
    Revisions,
    revisions_from_v1,
)
from awooop.contracts.events.registry import register_payload, register_upcaster
from awooop.contracts.records.envelope import EventPayload
from awooop.contracts.registries.errors import ERROR_CODES

MCP_GATE_CODE_PATTERN = r"^E-MCP-GATE-[0-9]{3}$"
SHA256_HEX_PATTERN = r"^[0-9a-f]{64}$"

Reason = Annotated[str, Field(max_length=4096)]
GatewayToolName = Annotated[str, Field(max_length=128)]
"""The tool asked for, as the agent named it (empty only on events upcast from versions
that did not name it)."""
ArgumentHash = Annotated[str, Field(pattern=r"^([0-9a-f]{64})?$")]
RedactionCounts = dict[
    Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")], Annotated[int, Field(ge=1)]
]
LatencyMs = Annotated[float, Field(ge=0)]


class CallFacts(EventPayload):
    """The fields every call event shares."""

    call_id: CallId
    tool: GatewayToolName = ""
    argument_hash: ArgumentHash = ""
    arguments: dict[str, Any] = Field(default_factory=dict)
    """The arguments, redacted and bounded for display."""
    redactions: RedactionCounts = Field(default_factory=dict)
    """Values replaced by redaction in the arguments and the result, per kind."""


@register_payload("gateway.tool_call_succeeded", 3)
class ToolCallSucceeded(CallFacts):
    """The tool call ran; ``result`` is already redacted and truncated."""

    result: dict[str, Any] | str
    revisions: Revisions
    """The tool revision that admitted the call."""
    latency_ms: LatencyMs | None = None
    """The MCP call alone, from sending it to its answer."""


@register_payload("gateway.tool_call_blocked", 3)
class ToolCallBlocked(CallFacts):
    """A gate refused the tool call: which gate (1..5), its ``E-MCP-GATE-*`` code and why.

    ``retry_after`` (seconds) comes with a rate limit (``E-MCP-GATE-007``);
    ``would_need`` says what a call refused in ``shadow`` mode would have needed
    elsewhere (``approval``)."""

    gate: Annotated[int, Field(strict=True, ge=1, le=5)]
    code: Annotated[str, Field(pattern=MCP_GATE_CODE_PATTERN)]
    reason: Reason = ""
    revisions: Revisions
    """The revisions the gates read; empty when the tool has no active revision."""
    retry_after: Annotated[float, Field(ge=0)] | None = None
    would_need: Literal["approval"] | None = None


@register_payload("gateway.tool_call_failed", 2)
class ToolCallFailed(CallFacts):
    """The call was admitted but did not produce a result: an error, or its deadline passed.

    ``transient`` says whether the cause could pass on its own (a connection refused or
    reset, a timeout, an unavailable server) or not (the tool's own error, invalid
    parameters); None when the call never reached a server to find out."""

    code: ErrorCodeText
    reason: Reason
    transient: bool | None = None
    revisions: Revisions = ()
    latency_ms: LatencyMs | None = None


@register_payload("gateway.approval_required", 2)
class ApprovalRequired(CallFacts):
    """Gate 5 holds the call back until an approval bound to exactly this call is granted:
    ``action_hash`` is the SHA-256 (hex) of the canonical JSON of the action the approval
    must name. The run waits for the call's later outcome."""

    action_hash: Annotated[str, Field(pattern=SHA256_HEX_PATTERN)]
    revisions: Revisions
    """The tool and policy revisions the gates read."""
    scope: Literal["read", "write", "admin"] | None = None
    mode: Literal["shadow", "suggest", "active"] | None = None
    reason: Reason = ""


@register_payload("gateway.tool_call_retried", 1)
class ToolCallRetried(CallFacts):
    """One attempt of an approved call failed for a cause that may pass on its own
    (``transient``): the gateway tries again after ``retry_in`` seconds. ``attempt``
    counts from 1; the call's outcome event follows the last attempt."""

    attempt: Annotated[int, Field(strict=True, ge=1, le=10)]
    code: ErrorCodeText
    reason: Reason
    retry_in: Annotated[float, Field(ge=0)]
    latency_ms: LatencyMs | None = None


register_upcaster("gateway.tool_call_succeeded", 1)(revisions_from_v1)
register_upcaster("gateway.tool_call_blocked", 1)(revisions_from_v1)


@register_upcaster("gateway.tool_call_succeeded", 2)
@register_upcaster("gateway.tool_call_failed", 1)
@register_upcaster("gateway.approval_required", 1)
def _facts_unknown(payload: dict[str, Any]) -> dict[str, Any]:
    """Versions before the call facts: the facts were not recorded (the defaults say so)."""
    return dict(payload)


@register_upcaster("gateway.tool_call_blocked", 2)
def _blocked_without_reason(payload: dict[str, Any]) -> dict[str, Any]:
    """v2 kept the code alone: the reason is the code's own description."""
    lifted = dict(payload)
    known = ERROR_CODES.get(str(payload.get("code")))
    lifted["reason"] = known.meaning if known is not None else ""
    return lifted
