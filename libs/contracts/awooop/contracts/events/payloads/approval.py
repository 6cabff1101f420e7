"""Payloads produced by the approval service on ``awooop.approval.events.v1``.

Every event is of one request's ``approval`` stream (``stream_id`` = the approval id, a
UUID derived from the project and the call, so a redelivered
``gateway.approval_required`` names the same request) and keyed by its run, like the
gateway's events it answers. A request is ``pending`` until ``approvals_required``
distinct approvers approve (``approval.granted``, with the token) or enough reject, it
expires, or its run ends (``approval.denied``). Each vote is one event: counted
(``approval.vote_recorded``) or refused with its code (``approval.vote_refused``).

The token of a grant is a bearer credential for one action, accepted once, ever, for
minutes: it travels to the runtime (which hands it to the gateway in
``run.tool_call_approved``) and no read model or log ever shows it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field

from awooop.contracts.events.payloads.fields import (
    CallId,
    ErrorCodeText,
    PlatformSubjectId,
    Revision,
    Revisions,
)
from awooop.contracts.events.registry import register_payload
from awooop.contracts.records.envelope import EventPayload

Vote = Literal["approve", "reject"]

APPROVAL_NAMESPACE = uuid.UUID("5d0a2c8e-7f4b-4c41-9a57-3b1f0e6a9c21")
"""The UUIDv5 namespace of approval ids."""


def approval_id_of(project_id: str, call_id: str) -> uuid.UUID:
    """The one approval request of a held call: the same for every redelivery."""
    return uuid.uuid5(APPROVAL_NAMESPACE, f"{project_id}:{call_id}")


def button_value(vote: Vote, approval_id: uuid.UUID) -> str:
    """The data of an approval request's button (at most 44 bytes: Telegram allows 64)."""
    return f"{vote}:{approval_id}"


def vote_of_button(value: str) -> tuple[Vote, uuid.UUID] | None:
    """The vote and approval a button's data names, or None for any other button."""
    vote, _, rest = value.partition(":")
    if vote not in ("approve", "reject"):
        return None
    try:
        approval_id = uuid.UUID(rest)
    except ValueError:
        return None
    if str(approval_id) != rest:
        return None
    return ("approve" if vote == "approve" else "reject"), approval_id


APPROVER_ID = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")]
SHA256_HEX = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Reason = Annotated[str, Field(max_length=4096)]
VoteVia = Literal["button", "api"]
"""How a vote came: a chat button (``ingress.button_pressed``) or the decision endpoint."""
ApprovalToken = Annotated[str, Field(min_length=16, max_length=4096)]
"""A compact JWS (``header.payload.signature``)."""


class ApprovalFacts(EventPayload):
    """The fields every approval event shares."""

    approval_id: uuid.UUID
    run_id: uuid.UUID
    call_id: CallId


@register_payload("approval.requested", 1)
class ApprovalRequested(ApprovalFacts):
    """Gate 5 held a call: who may approve it, how many must, and until when.

    ``arguments`` are as the gateway showed them (redacted), ``argument_hash`` and
    ``action_hash`` as it computed them; ``approvers`` are the policy's approver ids and
    ``requester`` the person whose message started the run (never counted). The request
    ``expires_at`` the policy's expiry after it was made, never past its run's timeout.
    """

    tool: Annotated[str, Field(min_length=1, max_length=128)]
    arguments: dict[str, Any]
    argument_hash: Annotated[str, Field(pattern=r"^([0-9a-f]{64})?$")]
    action_hash: SHA256_HEX
    scope: Literal["read", "write", "admin"] | None
    mode: Literal["shadow", "suggest", "active"] | None
    revisions: Revisions
    """The revisions the gateway's gates read, then the policy revision of the request."""
    policy_revision: Revision
    approvers: Annotated[tuple[APPROVER_ID, ...], Field(min_length=1, max_length=100)]
    approvals_required: Annotated[int, Field(ge=1, le=100)]
    rejections_required: Annotated[int, Field(ge=1, le=100)]
    requester: PlatformSubjectId | None
    expires_at: AwareDatetime


@register_payload("approval.vote_recorded", 1)
class VoteRecorded(ApprovalFacts):
    """One approver's vote, counted: ``approvals`` and ``rejections`` are the distinct
    approvers on each side after it."""

    approver_id: APPROVER_ID
    vote: Vote
    via: VoteVia
    subject: Annotated[str, Field(min_length=1, max_length=256)]
    """The chat subject or API subject that voted."""
    approvals: Annotated[int, Field(ge=0)]
    rejections: Annotated[int, Field(ge=0)]


@register_payload("approval.vote_refused", 1)
class VoteRefused(ApprovalFacts):
    """A vote that does not count, and why (``E-APPROVAL-*``): not an approver, the
    requester, a second vote of one person, or a request already decided."""

    vote: Vote
    via: VoteVia
    subject: Annotated[str, Field(min_length=1, max_length=256)]
    approver_id: APPROVER_ID | None
    code: ErrorCodeText
    reason: Reason


@register_payload("approval.granted", 1)
class ApprovalGranted(ApprovalFacts):
    """Enough distinct approvers approved: ``token`` lets the gateway run exactly this
    call, once (``token_id`` is its ``jti``, derived from the approval, so a retried
    grant yields the same token), until ``token_expires_at``."""

    approvers: Annotated[tuple[APPROVER_ID, ...], Field(min_length=1, max_length=100)]
    action_hash: SHA256_HEX
    token: ApprovalToken
    token_id: Annotated[str, Field(min_length=1, max_length=128)]
    token_kid: Annotated[str, Field(min_length=1, max_length=64)]
    token_expires_at: AwareDatetime


@register_payload("approval.denied", 1)
class ApprovalDenied(ApprovalFacts):
    """The call never runs: rejected (``approvers`` who rejected), expired, its run ended,
    or no request could be built (``E-APPROVAL-*``). The agent gets it as the error
    result of its call."""

    code: ErrorCodeText
    reason: Reason
    approvers: Annotated[tuple[APPROVER_ID, ...], Field(max_length=100)] = ()
