"""The query API's response shapes (published in its OpenAPI document)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from awooop.contracts.events.payloads.contract import ContractFamilyName
from awooop.contracts.families.runtime_run_state import RunState
from awooop.projector.api.approval_models import Approval
from awooop.projector.api.channel_models import ChannelEvent, OutboundMessage
from awooop.projector.api.mcp_call_models import McpCall
from awooop.projector.domain.contract_rows import RevisionLifecycle


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunSummary(_Frozen):
    """One run as the listing shows it. Fields are null until their event is projected."""

    run_id: uuid.UUID = Field(description="the event_id of the ingress message that started it")
    project_id: str
    state: RunState | None = Field(description="null while only the message is known")
    agent_id: str | None
    platform_subject_id: str | None
    chat_id: str | None
    channel_type: str | None
    mode: str | None
    started_at: datetime | None
    completed_at: datetime | None = Field(description="when the run completed or failed")
    suppressed: bool | None = Field(description="true when shadow mode kept the reply back")
    error_code: str | None


class Run(RunSummary):
    """One run with its message, reply and the contract revision it ran under."""

    revision: str | None
    trigger_text: str | None = Field(description="the message's redacted display text")
    reply: str | None
    last_stream_seq: int = Field(description="stream_seq of the last run event projected")


class TimelineEvent(_Frozen):
    """One event of a run, with a short redacted summary (no message text, no tool arguments
    or results)."""

    event_id: uuid.UUID
    occurred_at: datetime
    event_type: str
    stream_type: str
    stream_id: str
    stream_seq: int
    actor: str
    summary: dict[str, Any]


class RunStep(_Frozen):
    """One LLM step of a run: what it used, cost and took, and what it decided."""

    number: int
    model: str
    tokens_in: int
    tokens_out: int
    cost: str = Field(description="exact decimal, in the budget's currency ('0' unbudgeted)")
    latency_ms: int
    schema_retries: int
    reserved_tokens: int = Field(description="what the step reserved before the call")
    outcome: Literal["tool_call", "reply", "failed"]
    event_id: uuid.UUID = Field(description="the run event that carried the step's report")
    occurred_at: datetime


class RunPage(_Frozen):
    runs: list[RunSummary] = Field(description="newest first (started_at, then run_id)")
    next: str | None = Field(description="cursor of the next page; null on the last page")


class RunDetail(_Frozen):
    run: Run
    timeline: list[TimelineEvent] = Field(description="sorted by occurred_at, then event_id")
    steps: list[RunStep] = Field(description="its LLM steps, by number")
    mcp_calls: list[McpCall] = Field(
        description="the tool calls it asked for, in that order (requested_at, else "
        "decided_at, then call_id)"
    )
    approvals: list[Approval] = Field(
        description="the approval requests of its held calls, in the order they were made "
        "(requested_at, then approval_id)"
    )
    inbound: list[ChannelEvent] = Field(
        description="the message that started it, the messages queued on or refused by it, "
        "and repeats of its message, sorted by occurred_at, then event_id"
    )
    outbound: list[OutboundMessage] = Field(
        description="messages it asked to send, with their delivery, sorted by occurred_at "
        "(null last), then event_id"
    )


class ContractSummary(_Frozen):
    """One contract as the listing shows it."""

    contract_id: str
    project_id: str
    family: ContractFamilyName | None = Field(description="null until its draft is projected")
    lifecycle: RevisionLifecycle | None = Field(
        description="state of the active revision, else of the latest one"
    )
    active_revision: int | None = Field(description="null when no revision is active")
    latest_revision: int
    updated_at: datetime = Field(description="occurred_at of its latest event")


class PublicationCheck(_Frozen):
    """The publication signature of a revision and how it verified here."""

    kid: str | None
    alg: str | None
    check: str | None = Field(
        description="`valid`, or the refusal code (e.g. E-CONTRACT-SIG-KID) of verifying it "
        "with the projector's key ring; null when the body was never projected"
    )


class ContractRevision(_Frozen):
    """One revision: its body (credential references only, never secret values),
    lifecycle, signers and when each step happened."""

    revision: int
    lifecycle: RevisionLifecycle
    author: str | None
    body: dict[str, Any] | None
    body_sha256: str | None = Field(description="SHA-256 of the canonical body, once published")
    signature: PublicationCheck | None = Field(description="null until published")
    signers: list[str] = Field(description="who signed it, sorted")
    drafted_at: datetime | None
    published_at: datetime | None
    activated_at: datetime | None
    retired_at: datetime | None = Field(description="retired, or superseded by an activation")


class ContractPage(_Frozen):
    contracts: list[ContractSummary] = Field(description="sorted by contract_id")
    next: str | None = Field(description="cursor of the next page; null on the last page")


class ContractDetail(_Frozen):
    contract: ContractSummary
    revisions: list[ContractRevision] = Field(description="every revision, oldest first")


class Health(_Frozen):
    status: Literal["ok"]


class Problem(_Frozen):
    """Why a request was refused."""

    detail: str
