"""Timeline summaries of an approval, in words: the request (which tool, k of n
approvers, until when), each vote (who, how, counted or refused and why), the grant
(who approved, and the token's id), the denial (its code and reason), the runtime's
`run.tool_call_approved`, and the gateway's retried attempts of an approved call.

No summary ever names the token itself: a grant and `run.tool_call_approved` carry it,
and it is a bearer credential. Reasons are redacted and cut short as the gateway's are
(gateway_summaries.py); the arguments of the call are not repeated here (they are in
`approvals` and `mcp_calls`, redacted).
"""

from __future__ import annotations

from typing import Any

from awooop.projector.domain.gateway_summaries import because

Summary = dict[str, Any]


def _names(names: Any) -> str:
    return ", ".join(names) if names else "nobody"


def _at(moment: Any) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))


def _who(p: Any) -> str:
    return str(p.approver_id or p.subject)


def requested(p: Any) -> Summary:
    k, n = p.approvals_required, len(p.approvers)
    return {
        "text": f"approval requested for tool {p.tool}: {k} of {n} approvers "
        f"({_names(p.approvers)}) until {_at(p.expires_at)}",
        "approval_id": str(p.approval_id),
        "call_id": p.call_id,
        "tool": p.tool,
        "approvals_required": k,
        "rejections_required": p.rejections_required,
        "approvers": list(p.approvers),
        "expires_at": _at(p.expires_at),
        "policy_revision": p.policy_revision,
    }


def vote_recorded(p: Any) -> Summary:
    said = "approved" if p.vote == "approve" else "rejected"
    return {
        "text": f"{_who(p)} {said} via {p.via}: counted "
        f"({p.approvals} approving, {p.rejections} rejecting)",
        "approval_id": str(p.approval_id),
        "call_id": p.call_id,
        "approver_id": p.approver_id,
        "vote": p.vote,
        "via": p.via,
        "counted": True,
        "approvals": p.approvals,
        "rejections": p.rejections,
    }


def vote_refused(p: Any) -> Summary:
    return {
        "text": f"{p.vote} vote by {_who(p)} via {p.via} refused ({p.code}){because(p.reason)}",
        "approval_id": str(p.approval_id),
        "call_id": p.call_id,
        "approver_id": p.approver_id,
        "vote": p.vote,
        "via": p.via,
        "counted": False,
        "code": p.code,
    }


def granted(p: Any) -> Summary:
    return {
        "text": f"approval granted by {_names(p.approvers)}: token {p.token_id} "
        f"valid until {_at(p.token_expires_at)}",
        "approval_id": str(p.approval_id),
        "call_id": p.call_id,
        "approvers": list(p.approvers),
        "token_id": p.token_id,
        "token_expires_at": _at(p.token_expires_at),
    }


def denied(p: Any) -> Summary:
    by = f" by {_names(p.approvers)}" if p.approvers else ""
    return {
        "text": f"approval denied{by} ({p.code}){because(p.reason)}",
        "approval_id": str(p.approval_id),
        "call_id": p.call_id,
        "code": p.code,
        "approvers": list(p.approvers),
    }


def tool_call_approved(p: Any) -> Summary:
    return {
        "text": f"approved: the gateway runs {p.call_id}",
        "call_id": p.call_id,
        "approval_id": str(p.approval_id),
    }


def tool_call_retried(p: Any) -> Summary:
    tool = f"tool {p.tool}" if p.tool else "tool call"
    return {
        "text": f"{tool} attempt {p.attempt} failed ({p.code}){because(p.reason)}; "
        f"retry in {p.retry_in:g} s",
        "call_id": p.call_id,
        "tool": p.tool,
        "attempt": p.attempt,
        "code": p.code,
        "retry_in": p.retry_in,
        "latency_ms": p.latency_ms,
    }
