"""A short, redacted description of each projected event for the run timeline.

Built from an allow-list of fields per event type: identifiers, codes, names
and sizes. Free text (message text, replies, the runtime's failure reasons), tool
arguments and tool results never reach the timeline; the message's redacted
`display_text` lives in the run row and in `channel_events`, the reply in the run row,
the redacted text of each outbound message in `outbound_messages`, and a tool call's
display arguments in `mcp_calls`, where the tenant's operators expect them. The channel
events' summaries are in channel_summaries.py, the gateway's (which keep its reasons,
redacted and cut short) in gateway_summaries.py, an approval's (its request, votes,
grant or denial, the approved call and its retried attempts; never the token) in
approval_summaries.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from awooop.contracts.records.envelope import Envelope
from awooop.projector.domain import approval_summaries, channel_summaries, gateway_summaries

Summary = dict[str, Any]


def _run_started(p: Any) -> Summary:
    return {
        "text": f"run started for agent {p.agent_id} in {p.mode} mode",
        "agent_id": p.agent_id,
        "mode": p.mode,
        "revisions": list(p.revisions),
        "trigger_event_id": str(p.trigger_event_id),
        "thread_id": p.thread_id,
        "reply_to": p.reply_to,
    }


def _tool_call_requested(p: Any) -> Summary:
    return {
        "text": f"tool {p.tool} requested",
        "call_id": p.call_id,
        "tool": p.tool,
        "argument_names": sorted(p.arguments),
        "execute_before": p.execute_before.isoformat(),
        **_step(p),
    }


def _step(p: Any) -> Summary:
    """The LLM step an event's decision came from: what it used, cost and took."""
    step = getattr(p, "step", None)
    return {} if step is None else {"step": step.model_dump(mode="json")}


def _tool_result_accepted(p: Any) -> Summary:
    if p.outcome == "denied":
        said = f"tool call {p.call_id} denied: the agent is told it never ran"
    else:
        said = f"tool result accepted ({p.outcome})"
    return {
        "text": said,
        "call_id": p.call_id,
        "outcome": p.outcome,
    }


def _message_rejected(p: Any) -> Summary:
    return {
        "text": f"message rejected: {p.code}",
        "message_event_id": str(p.message_event_id),
        "platform_subject_id": p.platform_subject_id,
        "code": p.code,
    }


def _approval_awaited(p: Any) -> Summary:
    return {"text": "waiting for an approval", "call_id": p.call_id}


def _message_queued(p: Any) -> Summary:
    return {
        "text": "message queued behind the active run",
        "message_event_id": str(p.message_event_id),
        "platform_subject_id": p.platform_subject_id,
    }


def _transition_refused(p: Any) -> Summary:
    return {
        "text": f"transition {p.from_state} -> {p.to_state} refused: {p.code}",
        "code": p.code,
        "from_state": p.from_state,
        "to_state": p.to_state,
        "revision": p.revision,
    }


def _run_completed(p: Any) -> Summary:
    said = "reply kept back (shadow mode)" if p.suppressed else "reply sent"
    return {
        "text": f"run completed: {said}",
        "suppressed": p.suppressed,
        "reply_length": len(p.reply),
        **_step(p),
    }


def _run_failed(p: Any) -> Summary:
    return {"text": f"run failed: {p.code}", "code": p.code, **_step(p)}


def _run_cancelled(p: Any) -> Summary:
    return {"text": f"run cancelled: {p.code}", "code": p.code, "actor": p.actor}


def _run_timed_out(p: Any) -> Summary:
    return {"text": f"run timed out: {p.code}", "code": p.code}


SUMMARIES: dict[str, Callable[[Any], Summary]] = {
    "ingress.message_received": channel_summaries.message_received,
    "run.started": _run_started,
    "run.tool_call_requested": _tool_call_requested,
    "run.tool_result_accepted": _tool_result_accepted,
    "run.message_rejected": _message_rejected,
    "run.message_queued": _message_queued,
    "run.approval_awaited": _approval_awaited,
    "gateway.approval_required": gateway_summaries.approval_required,
    "run.transition_refused": _transition_refused,
    "run.completed": _run_completed,
    "run.failed": _run_failed,
    "run.timed_out": _run_timed_out,
    "run.cancelled": _run_cancelled,
    "gateway.tool_call_succeeded": gateway_summaries.tool_call_succeeded,
    "gateway.tool_call_blocked": gateway_summaries.tool_call_blocked,
    "gateway.tool_call_failed": gateway_summaries.tool_call_failed,
    "gateway.tool_call_retried": approval_summaries.tool_call_retried,
    "run.tool_call_approved": approval_summaries.tool_call_approved,
    "approval.requested": approval_summaries.requested,
    "approval.vote_recorded": approval_summaries.vote_recorded,
    "approval.vote_refused": approval_summaries.vote_refused,
    "approval.granted": approval_summaries.granted,
    "approval.denied": approval_summaries.denied,
    "channel.outbound_requested": channel_summaries.outbound_requested,
    "channel.delivery_reported": channel_summaries.delivery_reported,
}
"""Every run's event type the projector projects, with its timeline description (budget
and contract events, and the ingress events that are no message, belong to no run: they
have no timeline)."""


def summarize(envelope: Envelope[Any]) -> Summary:
    return SUMMARIES[envelope.event_type](envelope.payload)
