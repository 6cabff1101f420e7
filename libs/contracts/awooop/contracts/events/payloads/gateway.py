"""Payloads produced by the MCP gateway on ``awooop.gateway.events.v1``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from awooop.contracts.events.payloads.fields import (
    CallId,
    ErrorCodeText,
    Revisions,
    revisions_from_v1,
)
from awooop.contracts.events.registry import register_payload, register_upcaster
from awooop.contracts.records.envelope import EventPayload

MCP_GATE_CODE_PATTERN = r"^E-MCP-GATE-[0-9]{3}$"


@register_payload("gateway.tool_call_succeeded", 2)
class ToolCallSucceeded(EventPayload):
    """The tool call ran; ``result`` is already redacted and truncated."""

    call_id: CallId
    result: dict[str, Any] | str
    revisions: Revisions
    """The tool revision that admitted the call."""


@register_payload("gateway.tool_call_blocked", 2)
class ToolCallBlocked(EventPayload):
    """A gate refused the tool call: which gate (1..5) and its ``E-MCP-GATE-*`` code."""

    call_id: CallId
    gate: Annotated[int, Field(strict=True, ge=1, le=5)]
    code: Annotated[str, Field(pattern=MCP_GATE_CODE_PATTERN)]
    revisions: Revisions
    """The tool revision the gates read; empty when the tool has no active revision."""


@register_payload("gateway.tool_call_failed", 1)
class ToolCallFailed(EventPayload):
    """The call was admitted but did not produce a result: an error, or its deadline passed."""

    call_id: CallId
    code: ErrorCodeText
    reason: Annotated[str, Field(max_length=4096)]


@register_payload("gateway.approval_required", 1)
class ApprovalRequired(EventPayload):
    """Gate 5 holds the call back until an approval bound to exactly this call is granted:
    ``action_hash`` is the SHA-256 (hex) of the canonical JSON of the action the approval
    must name. The run waits for the call's later outcome."""

    call_id: CallId
    tool: Annotated[str, Field(min_length=1, max_length=128)]
    action_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    revisions: Revisions
    """The tool and policy revisions the gates read."""


register_upcaster("gateway.tool_call_succeeded", 1)(revisions_from_v1)
register_upcaster("gateway.tool_call_blocked", 1)(revisions_from_v1)
