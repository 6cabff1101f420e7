"""Every approval request of a held tool call, as the read side shows it: one `approvals`
row per `approval_id`, with its votes and how it ended.

One stream feeds a row: the approval service's events of that request (stream `approval`,
`awooop.approval.events.v1`, keyed by its run). Redelivery, a rebuild and a batch that
holds part of the stream must all give the same row, so each group of columns has a rule
that does not depend on the order the events arrive in:

* the request's columns (`REQUEST_COLUMNS`: tool, redacted arguments and their hash, the
  action hash, the policy revision, approvers, k and the rejections needed, requester,
  expiry) are the same on every copy of `approval.requested`: the first non-null value
  is kept. `run_id` and `call_id` are on every event, equal on all of them;
* the votes are a set keyed by the vote's `event_id`, sorted by `(at, event_id)`:
  counted ones (`approval.vote_recorded`) and refused ones (`approval.vote_refused`,
  with their code and redacted reason);
* `approvals` and `rejections` are the distinct approvers on each side: counts that
  only grow, so the highest any vote reported is kept;
* the decision columns (`DECISION_COLUMNS`: state, outcome code and reason, who
  decided, when, and the token's id and expiry) are owned together by one event: the
  one with the highest `(rank of its state, occurred_at, event_id)`, where `granted`
  and `denied` outrank `pending`. A row no decision has reached is `pending`.

The grant's `token` is a one-time bearer credential: no column holds it, only its id
(the `jti`, derived from the approval) and its expiry. Arguments are the gateway's
display form, already redacted; refusal and denial reasons are redacted here.
The SQL merge (adapters/approval_writer.py) applies the same rules between a staged row
and the stored one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal

from awooop.contracts.records.envelope import Envelope
from awooop.security.redaction import redact_text

ApprovalState = Literal["pending", "granted", "denied"]
APPROVAL_STATES: tuple[ApprovalState, ...] = ("pending", "granted", "denied")
STATE_RANKS: dict[str, int] = {"pending": 0, "granted": 1, "denied": 1}
"""How far along a request a state is: a higher rank wins the decision columns."""

REQUESTED = "approval.requested"
VOTE_RECORDED = "approval.vote_recorded"
VOTE_REFUSED = "approval.vote_refused"
GRANTED = "approval.granted"
DENIED = "approval.denied"
APPROVAL_EVENT_TYPES = frozenset({REQUESTED, VOTE_RECORDED, VOTE_REFUSED, GRANTED, DENIED})

REQUEST_COLUMNS = (
    "run_id",
    "call_id",
    "tool",
    "arguments",
    "argument_hash",
    "action_hash",
    "scope",
    "mode",
    "policy_revision",
    "approvers",
    "approvals_required",
    "rejections_required",
    "requester",
    "expires_at",
    "requested_at",
)
"""Each the same on every event that names it: the first non-null value is kept."""

COUNT_COLUMNS = ("approvals", "rejections")
"""Distinct approvers on each side: the highest count any vote reported."""

DECISION_COLUMNS = (
    "state",
    "outcome_code",
    "outcome_reason",
    "decided_by",
    "decided_at",
    "decided_event_id",
    "token_id",
    "token_expires_at",
)
"""Owned together by the winning decision event (`decision_key`)."""

APPROVAL_COLUMNS = (
    "project_id",
    "approval_id",
    *REQUEST_COLUMNS,
    *COUNT_COLUMNS,
    "votes",
    *DECISION_COLUMNS,
)

ApprovalKey = tuple[str, uuid.UUID]
DecisionKey = tuple[int, dt.datetime, uuid.UUID]
Vote = dict[str, Any]
"""One vote as the row keeps it: `event_id`, `at`, `vote`, `via`, `approver_id`,
`subject`, `counted`, `code`, `reason` (the last two for a refused vote)."""


def vote_at(at: dt.datetime) -> str:
    """A vote's time as the row keeps it: UTC, microseconds, `Z`; sorts as it orders."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def vote_order(vote: Vote) -> tuple[str, uuid.UUID]:
    return (vote["at"], uuid.UUID(vote["event_id"]))


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    """What some events say about one approval request; None where they say nothing."""

    project_id: str
    approval_id: uuid.UUID
    run_id: uuid.UUID | None = None
    call_id: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    argument_hash: str | None = None
    action_hash: str | None = None
    scope: str | None = None
    mode: str | None = None
    policy_revision: str | None = None
    approvers: list[str] | None = None
    approvals_required: int | None = None
    rejections_required: int | None = None
    requester: str | None = None
    expires_at: dt.datetime | None = None
    requested_at: dt.datetime | None = None
    approvals: int = 0
    rejections: int = 0
    votes: tuple[Vote, ...] = ()
    state: ApprovalState = "pending"
    outcome_code: str | None = None
    outcome_reason: str | None = None
    decided_by: list[str] | None = None
    decided_at: dt.datetime | None = None
    decided_event_id: uuid.UUID | None = None
    token_id: str | None = None
    token_expires_at: dt.datetime | None = None

    def values(self) -> tuple[Any, ...]:
        return tuple(
            list(self.votes) if column == "votes" else getattr(self, column)
            for column in APPROVAL_COLUMNS
        )

    @property
    def decision_key(self) -> DecisionKey | None:
        """The order in which decision events win; None for a row no decision reached."""
        if self.decided_event_id is None or self.decided_at is None:
            return None
        return (STATE_RANKS[self.state], self.decided_at, self.decided_event_id)

    def merged(self, other: ApprovalRow) -> ApprovalRow:
        """The row both say, by the rules of the module docstring."""
        changes: dict[str, Any] = {
            c: getattr(other, c)
            for c in REQUEST_COLUMNS
            if getattr(self, c) is None and getattr(other, c) is not None
        }
        changes |= {c: max(getattr(self, c), getattr(other, c)) for c in COUNT_COLUMNS}
        if other.votes:
            every = {vote["event_id"]: vote for vote in (*self.votes, *other.votes)}
            changes["votes"] = tuple(sorted(every.values(), key=vote_order))
        mine, theirs = self.decision_key, other.decision_key
        if theirs is not None and (mine is None or theirs > mine):
            changes |= {c: getattr(other, c) for c in DECISION_COLUMNS}
        return replace(self, **changes)


def merge_approval(rows: dict[ApprovalKey, ApprovalRow], row: ApprovalRow) -> None:
    """Fold `row` into the batch's rows by the merge rule of `ApprovalRow.merged`."""
    key = (row.project_id, row.approval_id)
    held = rows.get(key)
    rows[key] = row if held is None else held.merged(row)


def _reason(text: str) -> str | None:
    return redact_text(text) if text else None


def _row(e: Envelope[Any], **columns: Any) -> ApprovalRow:
    p = e.payload
    return ApprovalRow(e.project_id, p.approval_id, run_id=p.run_id, call_id=p.call_id, **columns)


def _requested(e: Envelope[Any]) -> ApprovalRow:
    p = e.payload
    return _row(
        e,
        tool=p.tool,
        arguments=dict(p.arguments),
        argument_hash=p.argument_hash or None,
        action_hash=p.action_hash,
        scope=p.scope,
        mode=p.mode,
        policy_revision=p.policy_revision,
        approvers=list(p.approvers),
        approvals_required=p.approvals_required,
        rejections_required=p.rejections_required,
        requester=p.requester,
        expires_at=p.expires_at,
        requested_at=e.occurred_at,
    )


def _vote(e: Envelope[Any], *, counted: bool) -> Vote:
    p = e.payload
    return {
        "event_id": str(e.event_id),
        "at": vote_at(e.occurred_at),
        "vote": p.vote,
        "via": p.via,
        "approver_id": p.approver_id,
        "subject": p.subject,
        "counted": counted,
        "code": None if counted else p.code,
        "reason": None if counted else _reason(p.reason),
    }


def _recorded(e: Envelope[Any]) -> ApprovalRow:
    p = e.payload
    return _row(
        e,
        approvals=p.approvals,
        rejections=p.rejections,
        votes=(_vote(e, counted=True),),
    )


def _refused(e: Envelope[Any]) -> ApprovalRow:
    return _row(e, votes=(_vote(e, counted=False),))


def _granted(e: Envelope[Any]) -> ApprovalRow:
    # The token itself is left on the event: only its id and expiry are shown.
    p = e.payload
    return _row(
        e,
        action_hash=p.action_hash,
        state="granted",
        decided_by=list(p.approvers),
        decided_at=e.occurred_at,
        decided_event_id=e.event_id,
        token_id=p.token_id,
        token_expires_at=p.token_expires_at,
    )


def _denied(e: Envelope[Any]) -> ApprovalRow:
    p = e.payload
    return _row(
        e,
        state="denied",
        outcome_code=p.code,
        outcome_reason=_reason(p.reason),
        decided_by=list(p.approvers),
        decided_at=e.occurred_at,
        decided_event_id=e.event_id,
    )


_ROWS = {
    REQUESTED: _requested,
    VOTE_RECORDED: _recorded,
    VOTE_REFUSED: _refused,
    GRANTED: _granted,
    DENIED: _denied,
}


def approval_row(envelope: Envelope[Any]) -> ApprovalRow | None:
    """What one event says about its request's row; None for an event of no request."""
    fold = _ROWS.get(envelope.event_type)
    return None if fold is None else fold(envelope)
