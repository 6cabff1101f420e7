"""The response shapes of `mcp_calls` (published in the OpenAPI document)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from awooop.projector.domain.mcp_calls import McpCallStatus


class McpCall(BaseModel):
    """One tool call a run asked for and what the gateway decided. Arguments are only ever
    the gateway's redacted display form, never what the agent produced."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    run_id: uuid.UUID | None = Field(description="the run that asked for the call")
    tool: str | None = Field(description="null while only a version without it is known")
    status: McpCallStatus = Field(
        description="requested (no word from the gateway yet), awaiting_approval (gate 5 "
        "holds it: action_hash), succeeded (latency_ms), blocked (gate, code, reason, "
        "retry_after, would_need; a denied approval is blocked at gate 5 with its "
        "E-APPROVAL-… code), failed (code, reason, transient, latency_ms)"
    )
    gate: int | None = Field(description="the gate (1..5) that refused a blocked call")
    code: str | None = Field(
        description="why it was blocked (E-MCP-GATE-…, E-APPROVAL-… for a denied approval) "
        "or failed"
    )
    reason: str | None = Field(
        description="the gateway's reason for the status (redacted); for awaiting_approval, "
        "why it needs one"
    )
    retry_after: float | None = Field(description="seconds to wait, with a rate limit")
    would_need: str | None = Field(
        description="what a call refused in shadow mode would need elsewhere (approval)"
    )
    argument_hash: str | None = Field(
        description="SHA-256 of the canonical arguments as produced: equal calls compare "
        "equal without showing them"
    )
    arguments: dict[str, Any] | None = Field(
        description="redacted and bounded for display; null until the gateway's word"
    )
    redactions: dict[str, int] | None = Field(
        description="values redaction replaced in the arguments and the result, per kind"
    )
    latency_ms: float | None = Field(description="the MCP call alone")
    transient: bool | None = Field(
        description="whether a failure's cause could pass on its own; null when unknown"
    )
    action_hash: str | None = Field(description="what an approval of this call must name")
    revisions: list[str] | None = Field(description="the contract revisions the gates read")
    requested_at: datetime | None = Field(description="when the run asked for it")
    decided_at: datetime | None = Field(description="occurred_at of the deciding event")
    decided_event_id: uuid.UUID | None = Field(
        description="the gateway event that decided the status (its timeline line)"
    )
    retries: int | None = Field(
        description="attempts of an approved call that failed and were tried again "
        "(gateway.tool_call_retried); null when none was"
    )


class McpCallPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[McpCall] = Field(
        description="newest first (requested_at, else decided_at, then call_id)"
    )
