"""An approval request: made from a call gate 5 held, decided by distinct approvers.

A request names the policy revision the gateway read: its approvers (each one person,
with the chat subjects and the API subject that are theirs), how many must approve (k)
and its expiry. A vote counts when it comes from an approver who is not the requester
and has not voted on this request before, while the request is pending; every other
vote is refused with its code, and both are events. k approvals grant it (with a
token minted for exactly the held action); `rejections_required` rejections (one: the
policy's rule) deny it; so does its expiry or the end of its run.

Pure: the caller supplies the clock's time and the token minter.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from awooop.contracts.events.payloads.approval import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    Vote,
    VoteRecorded,
    VoteRefused,
    VoteVia,
)
from awooop.contracts.events.payloads.gateway import ApprovalRequired
from awooop.contracts.families.policy import Policy
from awooop.contracts.registries.errors import (
    E_APPROVAL_DECIDED,
    E_APPROVAL_DUPLICATE,
    E_APPROVAL_EXPIRED,
    E_APPROVAL_NOT_APPROVER,
    E_APPROVAL_POLICY,
    E_APPROVAL_REJECTED,
    E_APPROVAL_REQUESTER,
)

State = Literal["pending", "granted", "denied"]

REJECTIONS_REQUIRED = 1
"""One reject rejects: the `policy` family (schema version 1) has no other rule."""


@dataclass(frozen=True, slots=True)
class Approver:
    """One person who may decide, with every subject that is theirs."""

    approver_id: str
    chat_subjects: frozenset[str]
    api_subject: str

    def is_subject(self, via: VoteVia, subject: str) -> bool:
        return subject in self.chat_subjects if via == "button" else subject == self.api_subject


@dataclass(frozen=True, slots=True)
class CastVote:
    """A vote that counted."""

    approver_id: str
    vote: Vote
    via: VoteVia
    subject: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class MintedToken:
    token: str
    token_id: str
    kid: str
    expires_at: dt.datetime


class TokenMinter(Protocol):
    """Signs the token of a granted request, decided at `at` (the same grant, the same
    token: the minter derives everything from the request and `at`)."""

    def __call__(self, request: ApprovalRequest, at: dt.datetime) -> MintedToken: ...


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """The state of one request, as its events left it."""

    approval_id: uuid.UUID
    project_id: str
    run_id: str
    call_id: str
    action_hash: str
    policy_revision: str
    approvers: tuple[Approver, ...]
    approvals_required: int
    rejections_required: int
    requester: str | None
    expires_at: dt.datetime
    state: State = "pending"
    votes: tuple[CastVote, ...] = ()
    decided_at: dt.datetime | None = None

    def count(self, vote: Vote) -> int:
        return sum(1 for cast in self.votes if cast.vote == vote)

    def approver_of(self, via: VoteVia, subject: str) -> Approver | None:
        return next((a for a in self.approvers if a.is_subject(via, subject)), None)

    def is_requester(self, approver: Approver | None, via: VoteVia, subject: str) -> bool:
        """True when the voter is the person whose message started the run: the very
        subject, or an approver one of whose chat subjects asked."""
        if self.requester is None:
            return False
        if via == "button" and subject == self.requester:
            return True
        return approver is not None and self.requester in approver.chat_subjects


@dataclass(frozen=True, slots=True)
class Decision:
    """A request's next state and the payloads recording how it got there."""

    request: ApprovalRequest
    payloads: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class VoteAnswer:
    """What one vote did: its events, and whether it counted (else the refusal)."""

    decision: Decision
    counted: bool
    code: str | None = None
    reason: str | None = None


def approvers_of(policy: Policy) -> tuple[Approver, ...]:
    return tuple(
        Approver(a.approver_id, frozenset(a.chat_subjects), a.api_subject) for a in policy.approvers
    )


def policy_problem(policy: Policy | None, policy_ref: str) -> str | None:
    """Why the policy cannot decide a request (the family's rules JSON Schema cannot
    state), or None."""
    if policy is None:
        return f"the policy revision {policy_ref or '(none)'} the gateway read is not known"
    if policy.approvals_required > len(policy.approvers):
        return (
            f"the policy needs {policy.approvals_required} approvals of "
            f"{len(policy.approvers)} approvers"
        )
    seen: dict[str, str] = {}
    for approver in policy.approvers:
        for subject in (*approver.chat_subjects, approver.api_subject):
            owner = seen.setdefault(subject, approver.approver_id)
            if owner != approver.approver_id:
                return f"a subject belongs to both {owner!r} and {approver.approver_id!r}"
    return None


def request_for(
    held: ApprovalRequired,
    *,
    approval_id: uuid.UUID,
    project_id: str,
    run_id: str,
    policy: Policy | None,
    policy_ref: str,
    requester: str | None,
    run_deadline: dt.datetime | None,
    at: dt.datetime,
) -> Decision:
    """The request of a held call, or its denial when its policy cannot decide one (or
    could never grant it: the requester never counts). It expires the policy's expiry
    after `at` (the hold), never after `run_deadline` (by when the run must have its
    answer)."""
    facts: dict[str, Any] = {
        "approval_id": approval_id,
        "run_id": uuid.UUID(run_id),
        "call_id": held.call_id,
    }
    problem = policy_problem(policy, policy_ref)
    if problem is None and policy is not None and requester is not None:
        others = [a for a in policy.approvers if requester not in a.chat_subjects]
        if len(others) < policy.approvals_required:
            problem = (
                f"the policy needs {policy.approvals_required} approvals and only "
                f"{len(others)} approvers are not the person who asked"
            )
    if problem is not None or policy is None:
        # Kept as a decided request, so a second hold of the same call asks nothing again.
        refused = ApprovalRequest(
            approval_id=approval_id,
            project_id=project_id,
            run_id=run_id,
            call_id=held.call_id,
            action_hash=held.action_hash,
            policy_revision=policy_ref,
            approvers=(),
            approvals_required=1,
            rejections_required=REJECTIONS_REQUIRED,
            requester=requester,
            expires_at=at,
            state="denied",
            decided_at=at,
        )
        denied = ApprovalDenied(**facts, code=E_APPROVAL_POLICY.code, reason=problem or "")
        return Decision(refused, (denied,))
    expires_at = at + dt.timedelta(seconds=policy.approval_expiry_seconds)
    if run_deadline is not None:
        expires_at = min(expires_at, run_deadline)
    request = ApprovalRequest(
        approval_id=approval_id,
        project_id=project_id,
        run_id=run_id,
        call_id=held.call_id,
        action_hash=held.action_hash,
        policy_revision=policy_ref,
        approvers=approvers_of(policy),
        approvals_required=policy.approvals_required,
        rejections_required=REJECTIONS_REQUIRED,
        requester=requester,
        expires_at=expires_at,
    )
    requested = ApprovalRequested(
        **facts,
        tool=held.tool or "(unnamed)",
        arguments=held.arguments,
        argument_hash=held.argument_hash,
        action_hash=held.action_hash,
        scope=held.scope,
        mode=held.mode,
        revisions=(*held.revisions, policy_ref)[-16:],
        policy_revision=policy_ref,
        approvers=tuple(a.approver_id for a in request.approvers),
        approvals_required=request.approvals_required,
        rejections_required=request.rejections_required,
        requester=requester,
        expires_at=expires_at,
    )
    return Decision(request, (requested,))


def _facts(request: ApprovalRequest) -> dict[str, Any]:
    return {
        "approval_id": request.approval_id,
        "run_id": uuid.UUID(request.run_id),
        "call_id": request.call_id,
    }


def cast_vote(
    request: ApprovalRequest,
    *,
    vote: Vote,
    via: VoteVia,
    subject: str,
    at: dt.datetime,
    mint: TokenMinter,
) -> VoteAnswer:
    """One vote on `request` at `at`: counted (and perhaps deciding it) or refused."""
    approver = request.approver_of(via, subject)
    refusal = _refusal(request, approver, via, subject, at)
    if refusal is not None:
        code, reason = refusal
        refused = VoteRefused(
            **_facts(request),
            vote=vote,
            via=via,
            subject=subject,
            approver_id=approver.approver_id if approver else None,
            code=code,
            reason=reason,
        )
        return VoteAnswer(Decision(request, (refused,)), counted=False, code=code, reason=reason)
    assert approver is not None  # _refusal refuses every vote of someone else
    cast = CastVote(approver.approver_id, vote, via, subject, at)
    voted = replace(request, votes=(*request.votes, cast))
    recorded = VoteRecorded(
        **_facts(request),
        approver_id=approver.approver_id,
        vote=vote,
        via=via,
        subject=subject,
        approvals=voted.count("approve"),
        rejections=voted.count("reject"),
    )
    decided = _decide(voted, at, mint)
    return VoteAnswer(Decision(decided.request, (recorded, *decided.payloads)), counted=True)


def _refusal(
    request: ApprovalRequest,
    approver: Approver | None,
    via: VoteVia,
    subject: str,
    at: dt.datetime,
) -> tuple[str, str] | None:
    if request.state != "pending":
        return E_APPROVAL_DECIDED.code, f"the request is already {request.state}"
    if at >= request.expires_at:
        return E_APPROVAL_DECIDED.code, f"the request expired at {request.expires_at.isoformat()}"
    if request.is_requester(approver, via, subject):
        return E_APPROVAL_REQUESTER.code, "the person who asked cannot decide their own request"
    if approver is None:
        where = "chat subject" if via == "button" else "API subject"
        return E_APPROVAL_NOT_APPROVER.code, f"this {where} is not an approver of the request"
    earlier = next((v for v in request.votes if v.approver_id == approver.approver_id), None)
    if earlier is not None:
        return (
            E_APPROVAL_DUPLICATE.code,
            f"approver {approver.approver_id!r} already voted {earlier.vote} "
            f"(by {earlier.via}); one person counts once",
        )
    return None


def _decide(request: ApprovalRequest, at: dt.datetime, mint: TokenMinter) -> Decision:
    if request.count("approve") >= request.approvals_required:
        granted = replace(request, state="granted", decided_at=at)
        token = mint(granted, at)
        approvers = tuple(v.approver_id for v in request.votes if v.vote == "approve")
        granted_payload = ApprovalGranted(
            **_facts(request),
            approvers=approvers,
            action_hash=request.action_hash,
            token=token.token,
            token_id=token.token_id,
            token_kid=token.kid,
            token_expires_at=token.expires_at,
        )
        return Decision(granted, (granted_payload,))
    if request.count("reject") >= request.rejections_required:
        rejecters = tuple(v.approver_id for v in request.votes if v.vote == "reject")
        denied = replace(request, state="denied", decided_at=at)
        reason = f"rejected by {', '.join(rejecters)}"
        payload = ApprovalDenied(
            **_facts(request), code=E_APPROVAL_REJECTED.code, reason=reason, approvers=rejecters
        )
        return Decision(denied, (payload,))
    return Decision(request, ())


def expire(request: ApprovalRequest, at: dt.datetime, reason: str | None = None) -> Decision:
    """A pending request past its expiry (or whose run ended: `reason`) ends `denied`."""
    if request.state != "pending":
        return Decision(request, ())
    why = reason or (
        f"no decision before {request.expires_at.isoformat()}: "
        f"{request.count('approve')} of {request.approvals_required} approvals"
    )
    denied = replace(request, state="denied", decided_at=at)
    payload = ApprovalDenied(**_facts(request), code=E_APPROVAL_EXPIRED.code, reason=why)
    return Decision(denied, (payload,))
