"""The approval request of a held call as a message in its run's chat, edited in place.

The approval service asks (`approval.requested`): the runtime posts the request into
the run's chat with two buttons whose values name the vote and the approval
(`button_value`), and keeps which outbound event posted it (`ApprovalMessage`, a row of
`approval_messages`), so each later event of the approval edits that very message: the
votes so far (buttons kept), then who granted it or why it was denied (buttons gone).

Texts show the tool, its arguments as the approval event carries them (redacted by the
gateway), compact and bounded, and never a token.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal

from awooop.contracts.events.payloads.approval import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    VoteRecorded,
    button_value,
)
from awooop.contracts.events.payloads.channel import Button, OutboundRequested
from awooop.contracts.registries.errors import E_APPROVAL_EXPIRED, E_APPROVAL_REJECTED
from awooop.runtime.domain.outbound import OUTBOUND_TTL, message_in_chat
from awooop.runtime.domain.run import Run

ARGUMENTS_SHOWN = 1024
"""The most characters of a request's arguments its message shows (the rest cut, `…`)."""
REASON_SHOWN = 512
"""The most characters of a denial's reason its message shows."""

Outcome = Literal["granted", "denied"]


@dataclass(frozen=True)
class ApprovalMessage:
    """What the runtime keeps of one approval: the outbound event that posted its request
    (None when nothing was posted: a shadow run, or a request the run did not wait for),
    the request's text, the votes so far, and the decision once it came.

    `last_seq` is the position on the approval's stream taken in last: an event at or
    below it (a redelivery past the inbox horizon) is not taken again, so nothing is
    said or decided twice."""

    approval_id: uuid.UUID
    project_id: str
    run_id: uuid.UUID
    call_id: str
    last_seq: int
    outcome: Outcome | None = None
    request_event_id: uuid.UUID | None = None
    request_text: str = ""
    expires_at: dt.datetime | None = None
    approvals_required: int = 1
    rejections_required: int = 1
    approved_by: tuple[str, ...] = ()
    rejected_by: tuple[str, ...] = ()

    @property
    def editable(self) -> bool:
        """Whether a request message was posted and is still pending (it has buttons)."""
        return self.request_event_id is not None and self.outcome is None

    def took(self, seq: int) -> bool:
        """Whether the approval event at `seq` of its stream was already taken in."""
        return seq <= self.last_seq


def vote_buttons(approval_id: uuid.UUID) -> tuple[Button, Button]:
    """Approve and Reject, their values naming the vote and the approval."""
    return (
        Button(label="Approve", value=button_value("approve", approval_id)),
        Button(label="Reject", value=button_value("reject", approval_id)),
    )


def compact_arguments(arguments: dict[str, Any]) -> str:
    """The arguments as one line of JSON, cut to `ARGUMENTS_SHOWN` characters."""
    text = json.dumps(
        arguments, separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str
    )
    return _cut(text, ARGUMENTS_SHOWN)


def request_text(request: ApprovalRequested) -> str:
    """What the request message says: which tool with which arguments, who asked, how many
    approvals of how many approvers it needs, and until when."""
    needed = request.approvals_required
    approvers = len(request.approvers)
    return "\n".join(
        (
            f"Approval needed: the agent wants to run {request.tool}.",
            f"Arguments: {compact_arguments(request.arguments)}",
            f"Asked by: {request.requester or 'unknown'}",
            f"Needs {needed} {_plural(needed, 'approval')} of {approvers} "
            f"{_plural(approvers, 'approver')}, until {_when(request.expires_at)}.",
        )
    )


def requested(
    run: Run, request: ApprovalRequested, seq: int
) -> tuple[ApprovalMessage, OutboundRequested]:
    """The kept approval of a new request and the message that asks for it (to deliver
    before the request expires); its `request_event_id` is set once the message is
    recorded as an event."""
    text = request_text(request)
    kept = ApprovalMessage(
        approval_id=request.approval_id,
        project_id=run.project_id,
        run_id=run.run_id,
        call_id=request.call_id,
        last_seq=seq,
        request_text=text,
        expires_at=request.expires_at,
        approvals_required=request.approvals_required,
        rejections_required=request.rejections_required,
    )
    message = message_in_chat(
        run,
        "approval_request",
        text,
        request.expires_at,
        buttons=vote_buttons(request.approval_id),
    )
    return kept, message


def voted(
    run: Run, kept: ApprovalMessage, vote: VoteRecorded, seq: int, now: dt.datetime
) -> tuple[ApprovalMessage, OutboundRequested]:
    """The approval after one more counted vote, and the edit showing the votes so far
    (its buttons kept: the request is still pending)."""
    approved, rejected = kept.approved_by, kept.rejected_by
    if vote.vote == "approve" and vote.approver_id not in approved:
        approved += (vote.approver_id,)
    if vote.vote == "reject" and vote.approver_id not in rejected:
        rejected += (vote.approver_id,)
    after = replace(kept, last_seq=seq, approved_by=approved, rejected_by=rejected)
    lines = [kept.request_text, ""]
    lines.append(
        f"Approvals: {vote.approvals} of {kept.approvals_required} needed"
        + (f" ({', '.join(approved)})." if approved else ".")
    )
    if vote.rejections or rejected:
        lines.append(
            f"Rejections: {vote.rejections} of {kept.rejections_required} to reject it"
            + (f" ({', '.join(rejected)})." if rejected else ".")
        )
    before = kept.expires_at if kept.expires_at is not None else now + OUTBOUND_TTL
    return after, _edit(run, kept, "\n".join(lines), before, buttons=True)


def granted(
    run: Run, kept: ApprovalMessage, grant: ApprovalGranted, seq: int, now: dt.datetime
) -> tuple[ApprovalMessage, OutboundRequested]:
    """The approval granted, and the edit saying who approved it and that it runs now."""
    approvers = grant.approvers or kept.approved_by
    after = replace(kept, last_seq=seq, outcome="granted", approved_by=tuple(approvers))
    text = f"{kept.request_text}\n\nApproved by {', '.join(approvers)}: running it now."
    return after, _edit(run, kept, text, now + OUTBOUND_TTL, buttons=False)


def denied(
    run: Run, kept: ApprovalMessage, denial: ApprovalDenied, seq: int, now: dt.datetime
) -> tuple[ApprovalMessage, OutboundRequested]:
    """The approval denied, and the edit saying who rejected it, that it expired, or why
    else it will not run."""
    after = replace(kept, last_seq=seq, outcome="denied")
    rejecters = denial.approvers or kept.rejected_by
    if denial.code == E_APPROVAL_REJECTED.code and rejecters:
        said = f"Rejected by {', '.join(rejecters)}: it will not run."
    elif denial.code == E_APPROVAL_REJECTED.code:
        said = "Rejected: it will not run."
    elif denial.code == E_APPROVAL_EXPIRED.code:
        said = "Expired: not approved in time, it will not run."
    else:
        said = f"Not approved ({denial.code}): {_cut(denial.reason, REASON_SHOWN)}"
    text = f"{kept.request_text}\n\n{said}"
    return after, _edit(run, kept, text, now + OUTBOUND_TTL, buttons=False)


def decided_unshown(
    run: Run, approval_id: uuid.UUID, call_id: str, seq: int, outcome: Outcome
) -> ApprovalMessage:
    """A decision on an approval whose request was never posted (nothing to edit), kept so
    that its redelivery decides nothing again."""
    return ApprovalMessage(
        approval_id=approval_id,
        project_id=run.project_id,
        run_id=run.run_id,
        call_id=call_id,
        last_seq=seq,
        outcome=outcome,
    )


def _edit(
    run: Run, kept: ApprovalMessage, text: str, before: dt.datetime, *, buttons: bool
) -> OutboundRequested:
    assert kept.request_event_id is not None  # only a posted request is edited
    return message_in_chat(
        run,
        "approval_request",
        text,
        before,
        buttons=vote_buttons(kept.approval_id) if buttons else (),
        edit_of=kept.request_event_id,
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plural(n: int, noun: str) -> str:
    return noun if n == 1 else f"{noun}s"


def _when(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
