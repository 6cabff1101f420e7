"""The response shapes of `approvals` (published in the OpenAPI document)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from awooop.projector.domain.approvals import ApprovalState


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ApprovalVote(_Frozen):
    """One vote on a request: counted, or refused with its code and reason."""

    event_id: uuid.UUID = Field(description="the approval event that recorded the vote")
    at: datetime
    vote: Literal["approve", "reject"]
    via: Literal["button", "api"] = Field(description="a chat button or the decision API")
    approver_id: str | None = Field(description="the policy's approver; null when none matched")
    subject: str = Field(description="the chat or API subject that voted")
    counted: bool
    code: str | None = Field(description="why a refused vote did not count (E-APPROVAL-…)")
    reason: str | None = Field(description="the refusal's reason, redacted")


class Approval(_Frozen):
    """One approval request of a held tool call, its votes and how it ended. The grant's
    token is never shown: only its id (`token_id`, the JWT's `jti`) and expiry."""

    approval_id: uuid.UUID
    run_id: uuid.UUID | None = Field(description="the run whose call is held")
    call_id: str | None
    tool: str | None = Field(description="null until the request is projected")
    arguments: dict[str, Any] | None = Field(
        description="the call's arguments as the gateway shows them: redacted and bounded"
    )
    argument_hash: str | None = Field(description="SHA-256 of the canonical arguments")
    action_hash: str | None = Field(description="what the grant's token is bound to")
    scope: str | None
    mode: str | None
    policy_revision: str | None = Field(description="the policy revision the request used")
    approvers: list[str] | None = Field(description="who may approve (the policy's ids)")
    approvals_required: int | None = Field(description="k: distinct approvals that grant")
    rejections_required: int | None = Field(description="distinct rejections that deny")
    requester: str | None = Field(description="whose message started the run (never counted)")
    expires_at: datetime | None = Field(description="when an undecided request is denied")
    requested_at: datetime | None
    approvals: int = Field(description="distinct approvers who approved so far")
    rejections: int = Field(description="distinct approvers who rejected so far")
    votes: list[ApprovalVote] = Field(description="every vote, counted or refused, in time order")
    state: ApprovalState = Field(
        description="pending, granted (decided_by, token_id, token_expires_at) or denied "
        "(outcome_code, outcome_reason, decided_by: who rejected, if anyone)"
    )
    outcome_code: str | None = Field(description="why it was denied (E-APPROVAL-…)")
    outcome_reason: str | None = Field(description="the denial's reason, redacted")
    decided_by: list[str] | None = Field(description="who approved a grant or rejected a denial")
    decided_at: datetime | None
    decided_event_id: uuid.UUID | None = Field(description="the grant or denial event")
    token_id: str | None = Field(description="the grant's token id (jti), never the token")
    token_expires_at: datetime | None


class ApprovalPage(_Frozen):
    items: list[Approval] = Field(description="newest first (requested_at, then approval_id)")
    next: str | None = Field(description="cursor of the next page; null on the last page")
